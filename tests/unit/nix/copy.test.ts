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

describe("copyClosure", () => {
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
