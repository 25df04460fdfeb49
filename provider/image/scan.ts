/**
 * Reading a raw disk image once: its length, its sha256, and where its data is. The image is cut
 * into 64 KiB blocks; a run of all-zero blocks of at least 1 MiB is a zero run, which the write
 * zeroes on the target instead of sending. Shorter zero stretches travel with the data around
 * them: one record (and one `dd`) per run keeps the target's work proportional to the runs, and
 * the compressor flattens those zeros anyway.
 */
import { createHash } from "node:crypto";
import * as fs from "node:fs";

export const BLOCK = 64 * 1024;
/** Zero stretches shorter than this are sent as data. */
export const MIN_ZERO_RUN = 1024 * 1024;
const READ = 4 * 1024 * 1024;

export interface Run {
    offset: number;
    length: number;
    zero: boolean;
}

export interface ImageScan {
    bytes: number;
    sha256: string;
    runs: Run[];
    /** Bytes in data runs: what the write sends before compression. */
    dataBytes: number;
}

const ZERO = Buffer.alloc(BLOCK);

/** Scans `file`; a length that is not a whole number of 512-byte sectors is refused by the caller. */
export async function scanImage(file: string): Promise<ImageScan> {
    const hash = createHash("sha256");
    const fd = await fs.promises.open(file, "r");
    const blocks: boolean[] = [];
    let bytes = 0;
    try {
        const buf = Buffer.alloc(READ);
        for (;;) {
            const { bytesRead } = await fd.read(buf, 0, READ, bytes);
            if (bytesRead === 0) break;
            const chunk = buf.subarray(0, bytesRead);
            hash.update(chunk);
            for (let o = 0; o < bytesRead; o += BLOCK) {
                const b = chunk.subarray(o, Math.min(o + BLOCK, bytesRead));
                blocks.push(b.length === BLOCK ? b.equals(ZERO) : b.every((x) => x === 0));
            }
            bytes += bytesRead;
        }
    } finally {
        await fd.close();
    }
    const runs = toRuns(blocks, bytes);
    return { bytes, sha256: hash.digest("hex"), runs, dataBytes: runs.filter((r) => !r.zero).reduce((n, r) => n + r.length, 0) };
}

/** Blocks (true: all zeros) to runs: zero runs of MIN_ZERO_RUN or more, data runs in between. */
export function toRuns(zeroBlocks: boolean[], bytes: number): Run[] {
    const minBlocks = MIN_ZERO_RUN / BLOCK;
    const runs: Run[] = [];
    const push = (zero: boolean, from: number, to: number) => {
        const offset = from * BLOCK;
        const length = Math.min(to * BLOCK, bytes) - offset;
        const last = runs[runs.length - 1];
        if (last && last.zero === zero) last.length += length;
        else runs.push({ offset, length, zero });
    };
    let i = 0;
    while (i < zeroBlocks.length) {
        let j = i;
        while (j < zeroBlocks.length && zeroBlocks[j] === zeroBlocks[i]) j++;
        push(zeroBlocks[i] && j - i >= minBlocks, i, j);
        i = j;
    }
    return runs;
}
