/**
 * The closure copy against an in-process SSH peer that plays the target's nix-store: a failure on
 * either side of the `nix-store --export | ssh … nix-store --import` stream ends the other.
 */
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ServerChannel } from "ssh2";
import { copyClosure } from "../../../provider/nix/copy";
import { Target } from "../../../provider/ssh/target";
import { Peer, sshPeer } from "../ssh/peer";

/** A store path of 8 MiB: more than the pipe, stream and SSH window buffers hold together. */
let big: string;
beforeAll(() => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pnx-big-"));
    fs.writeFileSync(path.join(dir, "blob"), randomBytes(8 << 20));
    big = execFileSync("nix-store", ["--add", path.join(dir, "blob")], { encoding: "utf8" }).trim();
    fs.rmSync(dir, { recursive: true, force: true });
});
/** A store path of 12 MiB of hex text: compressible, as real closures are. */
let text: string;
beforeAll(() => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pnx-text-"));
    fs.writeFileSync(path.join(dir, "text"), Buffer.from(randomBytes(6 << 20).toString("hex")));
    text = execFileSync("nix-store", ["--add", path.join(dir, "text")], { encoding: "utf8" }).trim();
    fs.rmSync(dir, { recursive: true, force: true });
});

const peers: Peer[] = [];
afterAll(() => peers.forEach((p) => p.close()));

/** Answers the validity query with "all missing"; `onImport` plays the target's import. */
async function storePeer(onImport: (ch: ServerChannel) => void): Promise<Target> {
    const p = await sshPeer("pw", (command, ch) => {
        if (command.includes("--check-validity")) {
            let paths = "";
            ch.on("data", (d: Buffer) => (paths += d.toString()));
            ch.on("end", () => {
                ch.write(paths);
                ch.exit(0);
                ch.end();
            });
        } else if (command.includes("--import")) onImport(ch);
        else {
            ch.exit(0);
            ch.end();
        }
    });
    peers.push(p);
    return new Target({ host: "127.0.0.1", port: p.port, password: "pw", hostKey: p.hostKey });
}

/**
 * A target on a slow link with zstd: the link probe (`cat`) is read at about 1 MiB/s; the import
 * reads everything and, as nix-store does on a cut-off stream, fails.
 */
async function slowZstdPeer(): Promise<Target> {
    const p = await sshPeer("pw", (command, ch) => {
        const reply = (out: string, code = 0, err = "") => {
            if (out) ch.write(out);
            if (err) ch.stderr.write(err);
            ch.exit(code);
            ch.end();
        };
        let input = "";
        if (command.includes("--check-validity")) {
            ch.on("data", (d: Buffer) => (input += d.toString()));
            ch.on("end", () => reply(input));
        } else if (command.includes("for c in zstd gzip")) reply("zstd\n");
        else if (command.startsWith("cat")) {
            ch.on("data", () => {
                ch.pause();
                setTimeout(() => ch.resume(), 30);
            });
            ch.on("end", () => reply(""));
        } else if (command.includes("--import")) {
            ch.on("data", () => undefined);
            ch.on("end", () => reply("", 1, "error: unexpected end-of-file\n"));
        } else reply("");
    });
    peers.push(p);
    return new Target({ host: "127.0.0.1", port: p.port, password: "pw", hostKey: p.hostKey });
}

describe("copyClosure", () => {
    it("names the compressor when it fails mid-copy, and ends the export", async () => {
        // zstd on the deployer's PATH: the first call (measuring it) works, the copy's fails part-way.
        const bin = fs.mkdtempSync(path.join(os.tmpdir(), "pnx-zstd-"));
        const real = execFileSync("sh", ["-c", "command -v zstd"], { encoding: "utf8" }).trim();
        fs.writeFileSync(
            path.join(bin, "zstd"),
            `#!/bin/sh
if [ -e ${bin}/measured ]; then head -c 100000 >/dev/null; echo "zstd: error 11 : Allocation error : not enough memory" >&2; exit 1; fi
touch ${bin}/measured
exec ${real} "$@"
`,
            { mode: 0o755 },
        );
        const t = await slowZstdPeer();
        const lines: string[] = [];
        const err = await copyClosure(t, [text], { phase: "copy", timeoutS: 60, log: (l) => lines.push(l), env: { ...process.env, PATH: `${bin}:${process.env.PATH}` } }).catch((e) => e);
        t.close();
        expect(lines[0]).toMatch(/zstd-compressed \(link [\d.]+ MiB\/s, zstd [\d.]+ MiB\/s to \d+%\)/);
        expect(err.message).toMatch(/^copy on localhost failed: compressing the closure with zstd failed\n/);
        expect(err.message).toContain("not enough memory");
    });


    it("ends the export when the target's import fails part-way (disk full), naming the phase", async () => {
        const t = await storePeer((ch) => {
            // Reads a little, then fails without reading the rest, as an import on a full disk does.
            ch.once("data", () => {
                ch.stderr.write("error: writing to file: No space left on device\n");
                ch.exit(1);
                ch.close();
            });
        });
        const err = await copyClosure(t, [big], { phase: "copy", timeoutS: 60 }).catch((e) => e);
        t.close();
        expect(err.message).toMatch(/^copy on root@127\.0\.0\.1:\d+ failed: importing the closure on the target \(exit 1\)/);
        expect(err.message).toContain("No space left on device");
    });

    it("says that the import timed out, not that the connection failed, when the target stops reading", async () => {
        const t = await storePeer(() => undefined); // never reads, never exits
        const err = await copyClosure(t, [big], { phase: "copy", timeoutS: 2 }).catch((e) => e);
        t.close();
        expect(err.message).toMatch(/^copy on root@127\.0\.0\.1:\d+ failed: importing the closure on the target: timed out after 2 s/);
    });
});
