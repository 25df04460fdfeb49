/**
 * Progress of a copy: a pass-through stream that counts the bytes going by and, every
 * `everyMs` (2 s), reports MiB done of the total and the rate since the start. A copy shorter
 * than one interval reports nothing.
 */
import { Transform, TransformCallback } from "node:stream";

const MiB = 1048576;

export class CopyProgress extends Transform {
    bytes = 0;
    /** Bytes after compression, when a compressor's output is counted with countWire. */
    wireBytes = 0;
    private readonly started = Date.now();
    private readonly timer: NodeJS.Timeout;

    /** `verb` names the work in the report: "copied" (closures), "written" (disk images). */
    constructor(private readonly totalBytes: number, private readonly log: (line: string) => void, everyMs = 2000, private readonly verb = "copied") {
        super();
        this.timer = setInterval(() => this.report(), everyMs);
        this.timer.unref();
        this.once("close", () => this.stop());
    }

    override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
        this.bytes += chunk.length;
        cb(null, chunk);
    }

    /** Counts what `wire` carries (the compressed stream) for the report. */
    countWire(wire: NodeJS.ReadableStream): void {
        wire.on("data", (d: Buffer) => (this.wireBytes += d.length));
    }

    stop(): void {
        clearInterval(this.timer);
    }

    private report(): void {
        const s = (Date.now() - this.started) / 1000;
        const done = Math.min(this.bytes, this.totalBytes);
        const wire = this.wireBytes ? `, ${(this.wireBytes / MiB).toFixed(1)} MiB sent compressed` : "";
        this.log(`${this.verb} ${(done / MiB).toFixed(1)} of ${(this.totalBytes / MiB).toFixed(1)} MiB (${(this.bytes / MiB / s).toFixed(1)} MiB/s${wire})`);
    }
}
