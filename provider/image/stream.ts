/**
 * The image as the target's receiver reads it: one header line per run, then the run's bytes for
 * data runs. "D <bs> <seek> <count>" is followed by count×bs bytes written at seek×bs; "Z <bs>
 * <seek> <count>" zeroes that range on the target and carries no bytes; "E" ends the stream. Runs
 * are whole 64 KiB blocks except at the image's end, whose remainder goes in 512-byte sectors.
 */
import * as fs from "node:fs";
import { Readable } from "node:stream";
import { BLOCK, Run } from "./scan";

const SECTOR = 512;
const CHUNK = 1024 * 1024;

/** A run as records: the whole blocks, then any remainder in sectors. */
function records(r: Run): { bs: number; seek: number; count: number }[] {
    const whole = Math.floor(r.length / BLOCK) * BLOCK;
    const out = [];
    if (r.offset % BLOCK === 0 && whole > 0) out.push({ bs: BLOCK, seek: r.offset / BLOCK, count: whole / BLOCK });
    const restFrom = r.offset % BLOCK === 0 ? r.offset + whole : r.offset;
    const rest = r.offset + r.length - restFrom;
    if (rest > 0) out.push({ bs: SECTOR, seek: restFrom / SECTOR, count: rest / SECTOR });
    return out;
}

async function* generate(file: string, runs: Run[]): AsyncGenerator<Buffer> {
    const fd = await fs.promises.open(file, "r");
    try {
        for (const run of runs) {
            for (const rec of records(run)) {
                yield Buffer.from(`${run.zero ? "Z" : "D"} ${rec.bs} ${rec.seek} ${rec.count}\n`);
                if (run.zero) continue;
                const end = (rec.seek + rec.count) * rec.bs;
                for (let at = rec.seek * rec.bs; at < end; ) {
                    const n = Math.min(CHUNK, end - at);
                    const buf = Buffer.allocUnsafe(n);
                    const { bytesRead } = await fd.read(buf, 0, n, at);
                    if (bytesRead !== n) throw new Error(`the image ${file} changed while it was being sent (short read at ${at})`);
                    yield buf;
                    at += n;
                }
            }
        }
        yield Buffer.from("E\n");
    } finally {
        await fd.close();
    }
}

/** The record stream of `file`'s runs. */
export function imageRecords(file: string, runs: Run[]): Readable {
    return Readable.from(generate(file, runs), { objectMode: false });
}
