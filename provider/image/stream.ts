/**
 * A raw image as the target's receiver reads it, made in one pass over the file. The image is read in 64 KiB blocks: a stretch of all-zero blocks of at least 1 MiB
 * becomes a zero record, which the target zeroes itself instead of receiving; shorter stretches
 * travel with the data around them (the compressor flattens them), which keeps the records, and
 * the target's `dd` runs, few.
 * Records: "D <bs> <seek> <count>\n" then count×bs bytes written at seek×bs; "Z <bs> <seek>
 * <count>\n" zeroes that range; "E\n" ends the stream. bs is 64 KiB, or 512 for an image's last,
 * partial block.
 */
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import { Readable } from "node:stream";

export const BLOCK = 64 * 1024;
/** Zero stretches shorter than this are sent as data. */
export const MIN_ZERO_RUN = 1024 * 1024;
const READ = 4 * 1024 * 1024;
const ZERO = Buffer.alloc(BLOCK);

export interface StreamStats {
    bytes: number;
    /** Bytes sent as data (before compression). */
    dataBytes: number;
    zeroBytes: number;
    records: number;
}

/** Builds records from blocks as they are read; `out` receives each record's bytes. */
class Recorder {
    readonly stats = { dataBytes: 0, zeroBytes: 0, records: 0 };
    private data: Buffer[] = [];
    private dataAt = 0;
    private dataLen = 0;
    private zeroAt = 0;
    private zeroLen = 0;

    constructor(private readonly out: (b: Buffer) => void) {}

    block(at: number, b: Buffer): void {
        const zero = b.length === BLOCK ? b.equals(ZERO) : b.every((x) => x === 0);
        if (zero && b.length === BLOCK) {
            if (this.zeroLen === 0) this.zeroAt = at;
            this.zeroLen += b.length;
            return;
        }
        this.settleZeros();
        if (this.dataLen === 0) this.dataAt = at;
        this.data.push(b);
        this.dataLen += b.length;
        if (this.dataLen >= READ) this.flushData();
    }

    end(): void {
        this.settleZeros();
        this.flushData();
        this.out(Buffer.from("E\n"));
    }

    /** A finished zero stretch: a zero record when long enough, else data. */
    private settleZeros(): void {
        if (this.zeroLen === 0) return;
        if (this.zeroLen >= MIN_ZERO_RUN) {
            this.flushData();
            this.record("Z", BLOCK, this.zeroAt / BLOCK, this.zeroLen / BLOCK);
            this.stats.zeroBytes += this.zeroLen;
        } else {
            if (this.dataLen === 0) this.dataAt = this.zeroAt;
            this.data.push(Buffer.alloc(this.zeroLen));
            this.dataLen += this.zeroLen;
        }
        this.zeroLen = 0;
    }

    private flushData(): void {
        if (this.dataLen === 0) return;
        const buf = Buffer.concat(this.data, this.dataLen);
        const whole = Math.floor(buf.length / BLOCK) * BLOCK;
        if (whole) {
            this.record("D", BLOCK, this.dataAt / BLOCK, whole / BLOCK);
            this.out(buf.subarray(0, whole));
        }
        if (whole < buf.length) {
            // Only the image's last block can be partial (its length is whole sectors).
            this.record("D", 512, (this.dataAt + whole) / 512, (buf.length - whole) / 512);
            this.out(buf.subarray(whole));
        }
        this.stats.dataBytes += buf.length;
        this.data = [];
        this.dataLen = 0;
    }

    private record(t: "D" | "Z", bs: number, seek: number, count: number): void {
        this.stats.records++;
        this.out(Buffer.from(`${t} ${bs} ${seek} ${count}\n`));
    }
}

/**
 * The record stream of `file`; `stats` settles with its length and what was sent once the stream
 * ends. (The image's sha256 is not taken here: the send is bound by this one thread, and the
 * hash is taken while the target reads the disk back.)
 */
export function imageRecords(file: string): { stream: Readable; stats: Promise<StreamStats> } {
    let settle!: (s: StreamStats) => void;
    let fail!: (e: unknown) => void;
    const stats = new Promise<StreamStats>((resolve, reject) => ((settle = resolve), (fail = reject)));
    stats.catch(() => undefined);
    async function* generate(): AsyncGenerator<Buffer> {
        const fd = await fs.promises.open(file, "r");
        let pending: Buffer[] = [];
        const rec = new Recorder((b) => pending.push(b));
        let at = 0;
        try {
            for (;;) {
                const buf = Buffer.allocUnsafe(READ);
                const { bytesRead } = await fd.read(buf, 0, READ, at);
                if (bytesRead === 0) break;
                const chunk = buf.subarray(0, bytesRead);
                for (let o = 0; o < bytesRead; o += BLOCK) rec.block(at + o, chunk.subarray(o, Math.min(o + BLOCK, bytesRead)));
                at += bytesRead;
                if (pending.length) yield Buffer.concat(pending);
                pending = [];
            }
            rec.end();
            yield Buffer.concat(pending);
            settle({ bytes: at, ...rec.stats });
        } catch (e) {
            fail(e);
            throw e;
        } finally {
            await fd.close();
        }
    }
    return { stream: Readable.from(generate(), { objectMode: false }), stats };
}

/** The sha256 of a file. */
export async function fileSha256(file: string): Promise<string> {
    const hash = createHash("sha256");
    for await (const chunk of fs.createReadStream(file, { highWaterMark: READ })) hash.update(chunk as Buffer);
    return hash.digest("hex");
}

/** Data found within this many bytes of the start makes the sample; an image with none there gets none. */
const SAMPLE_SEARCH = 512 * 1024 * 1024;

/** The first data of the image (up to `limit` bytes of non-zero blocks): what a compressor would see. */
export async function dataSample(file: string, limit: number): Promise<Buffer> {
    const parts: Buffer[] = [];
    let n = 0;
    for await (const chunk of fs.createReadStream(file, { highWaterMark: READ, end: SAMPLE_SEARCH - 1 })) {
        const c = chunk as Buffer;
        for (let o = 0; o < c.length && n < limit; o += BLOCK) {
            const b = c.subarray(o, o + BLOCK);
            if (b.length === BLOCK && b.equals(ZERO)) continue;
            parts.push(b);
            n += b.length;
        }
        if (n >= limit) break;
    }
    return Buffer.concat(parts).subarray(0, limit);
}
