/**
 * Store paths beyond one command line: Linux refuses an exec whose argv passes ARG_MAX (E2BIG), and
 * nix-store takes the paths of `--export` and `--query --size` only on argv. 25,000 paths of
 * 200 characters are 5 MB, past the default 2 MiB.
 */
import { execFileSync, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ARGV_CHUNK_BYTES, argvChunks } from "../../../provider/nix/argv";
import { pathSizes } from "../../../provider/nix/copy";
import { copyWithinTargetScript } from "../../../provider/nix/deliver";
import { exportPaths } from "../../../provider/nix/export";
import { mustLocal } from "../../../provider/nix/local";

const MANY = 25_000;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "pnx-argv-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** A valid store path with a long name (Nix allows 211 characters), given 25,000 times. */
let long: string;
let many: string[];
beforeAll(() => {
    const file = path.join(tmp, `pnx-argv-${"x".repeat(150)}`);
    fs.writeFileSync(file, "a store path with a long name\n");
    long = execFileSync("nix-store", ["--add", file], { encoding: "utf8" }).trim();
    many = Array.from({ length: MANY }, () => long);
    expect(MANY * (long.length + 1)).toBeGreaterThan(4 << 20);
});

async function bytesOf(s: NodeJS.ReadableStream): Promise<number> {
    let n = 0;
    for await (const d of s as AsyncIterable<Buffer>) n += d.length;
    return n;
}

describe("argument lists of store paths", () => {
    it("splits 25,000 generated paths into chunks of at most 128 KiB of argv, in order", () => {
        const paths = Array.from({ length: MANY }, (_, i) => `/nix/store/${String(i).padStart(32, "0")}-${"p".repeat(100 + (i % 50))}`);
        const chunks = argvChunks(paths);
        expect(chunks.length).toBeGreaterThan(20);
        for (const c of chunks) expect(c.reduce((a, p) => a + Buffer.byteLength(p) + 1, 0)).toBeLessThanOrEqual(ARGV_CHUNK_BYTES);
        expect(chunks.flat()).toEqual(paths);
    });

    it("says a command line that is too long is too long, not that Nix is missing", async () => {
        const err = await mustLocal("copy", "cannot size the closure", "nix-store", ["--query", "--size", ...many]).catch((e) => e);
        expect(err.message).toMatch(/^copy on localhost failed: cannot size the closure: cannot run nix-store: its arguments are too long for one command line \(spawn E2BIG\)/);
        expect(err.message).not.toMatch(/install Nix/);
    });

    it("sizes 25,000 paths", async () => {
        const one = Number(execFileSync("nix-store", ["--query", "--size", long], { encoding: "utf8" }).trim());
        const sizes = await pathSizes(many, "copy");
        expect(sizes).toHaveLength(MANY);
        expect(sizes.every((s) => s === one)).toBe(true);
    });

    it("exports 25,000 paths as one stream of argv-bounded nix-store runs, with one end marker", async () => {
        const single = execFileSync("nix-store", ["--export", long]).length;
        const runs = argvChunks(many).length;
        expect(runs).toBeGreaterThan(30);
        const e = exportPaths(many, process.env);
        const [bytes, code] = await Promise.all([bytesOf(e.stdout), e.exited]);
        expect(code).toBe(0);
        // nix-store --export writes a path given twice once (its paths are a set): each run gives one
        // entry, the single export without its 8-byte end marker; the stream ends in one marker.
        expect(bytes).toBe(runs * (single - 8) + 8);
    });

    it("gives nix-store --import a chunked export it imports whole (one path per chunk)", async () => {
        const paths = [1, 2, 3].map((i) => {
            const f = path.join(tmp, `pnx-chunk-${i}`);
            fs.writeFileSync(f, `chunk ${i}\n`);
            return execFileSync("nix-store", ["--add", f], { encoding: "utf8" }).trim();
        });
        const root = path.join(tmp, "import-root");
        const e = exportPaths(paths, process.env, 1);
        const stream = Buffer.concat(await (async () => {
            const parts: Buffer[] = [];
            for await (const d of e.stdout as AsyncIterable<Buffer>) parts.push(d);
            return parts;
        })());
        expect(await e.exited).toBe(0);
        const r = spawnSync("nix-store", ["--store", root, "--import"], { input: stream, encoding: "utf8" });
        expect(r.status, r.stderr).toBe(0);
        expect(r.stdout.trim().split("\n")).toEqual(paths);
    });

    it("copies a closure within a store into another root through xargs, references first", () => {
        const top = execFileSync("nix-instantiate", ["--eval", "--read-write-mode", "-E", 'builtins.toFile "pnx-top" "${builtins.toFile "pnx-dep" "x"}"'], { encoding: "utf8" }).trim().replace(/"/g, "");
        const closure = execFileSync("nix-store", ["--query", "--requisites", top], { encoding: "utf8" }).trim().split("\n");
        expect(closure).toHaveLength(2);
        const root = path.join(tmp, "within-root");
        const r = spawnSync("sh", ["-c", copyWithinTargetScript(root).toString()], { input: `${top}\n`, encoding: "utf8" });
        expect(r.status, r.stderr).toBe(0);
        expect(spawnSync("nix-store", ["--store", root, "--check-validity", ...closure]).status).toBe(0);
        // The script names no path itself: they reach nix-store from files, through xargs.
        expect(copyWithinTargetScript(root).toString()).not.toMatch(/\$missing/);
    });
});
