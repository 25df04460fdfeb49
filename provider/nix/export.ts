/**
 * `nix-store --export` of any number of paths as one export stream. nix-store takes the paths
 * only on argv, so a large closure is exported in argv-bounded chunks (argv.ts), one nix-store
 * after the other. The format (Nix's `exportPaths`, src/libstore/export-import.cc) is, per path,
 * the number 1 and the path's NAR and metadata, and at the end the number 0, each number 8 bytes:
 * every chunk but the last has its final 0 left out, so that `nix-store --import` reads one stream.
 */
import { PassThrough, Readable } from "node:stream";
import { drainedOrClosed } from "../wait";
import { argvChunks } from "./argv";
import { localProcess, LocalProcess } from "./pipe";

/** The export's end: the number 0 as Nix writes numbers (64-bit little-endian). */
const END = Buffer.alloc(8);

export interface Exporter {
    stdout: Readable;
    /** 0 once every chunk was exported; the first failing nix-store's code otherwise. */
    exited: Promise<number | null>;
    /** Ends the running nix-store and the stream; no further chunk starts. */
    stop(): void;
    stderr(): string;
}

export function exportPaths(paths: string[], env: NodeJS.ProcessEnv | undefined, maxArgvBytes?: number): Exporter {
    const out = new PassThrough();
    const chunks = argvChunks(paths, maxArgvBytes);
    const started: LocalProcess[] = [];
    let current: LocalProcess | undefined;
    let stopped = false;
    const run = async (): Promise<number | null> => {
        try {
            for (let i = 0; i < chunks.length && !stopped; i++) {
                current = localProcess("nix-store", ["--export", ...chunks[i]], env, "ignore");
                started.push(current);
                const last = i === chunks.length - 1;
                const [code] = await Promise.all([current.exited, forward(current.child.stdout!, out, last)]);
                if (code !== 0) return code;
            }
            return stopped ? null : 0;
        } finally {
            out.end();
        }
    };
    return {
        stdout: out,
        exited: run(),
        stop: () => {
            stopped = true;
            current?.stop();
            out.destroy();
        },
        stderr: () => started.map((p) => p.stderr()).join(""),
    };
}

/** Copies `from` into `to` (waiting when `to` is full); keeps back the final 8 bytes unless `last`. */
async function forward(from: Readable, to: PassThrough, last: boolean): Promise<void> {
    let held: Buffer = Buffer.alloc(0);
    try {
        for await (const data of from as AsyncIterable<Buffer>) {
            const all = held.length ? Buffer.concat([held, data]) : data;
            const cut = Math.max(0, all.length - END.length);
            held = all.subarray(cut);
            if (cut && !to.destroyed && !to.write(all.subarray(0, cut))) await drainedOrClosed(to);
        }
    } catch {
        return; // stopped: its output was dropped
    }
    // A chunk that does not end in 0 was cut off: it is passed on as it is, and the import fails on it.
    if (!to.destroyed && (last || !held.equals(END))) to.write(held);
}
