/**
 * write (installs by image): streams a raw disk image onto the target's disk over the verified
 * connection, then checks the sha256 of what landed (the image's length) against the image's.
 * Zero runs are not sent: the target zeroes them itself (`blkdiscard -z`, else `dd` from
 * /dev/zero), so old data never shows through. The stream is compressed when the link is slower
 * than the compressor (nix/compression.ts), and progress is logged every 2 s. A mismatch zeroes the
 * disk's first MiB, so that nothing boots from a corrupted image, and fails the phase.
 */
import { NixosDeployError } from "../errors";
import { chooseCodec, MIN_COMPRESS_BYTES, SAMPLE_BYTES } from "../nix/compression";
import { localProcess } from "../nix/pipe";
import { CopyProgress } from "../nix/progress";
import { ImageScan } from "../image/scan";
import { imageRecords } from "../image/stream";
import { sh } from "../ssh/shell";
import type { PhaseContext } from "./context";
import * as fs from "node:fs";

/** The target's receiver: reads the records on stdin (see image/stream.ts). */
const receiver = (disk: string) => sh`d=${disk}
while read -r t b s n; do
  case $t in
    D) dd of="$d" bs="$b" seek="$s" count="$n" iflag=fullblock conv=notrunc status=none || exit 5 ;;
    Z) blkdiscard -z -o $((b * s)) -l $((b * n)) "$d" 2>/dev/null || dd if=/dev/zero of="$d" bs="$b" seek="$s" count="$n" conv=notrunc status=none || exit 5 ;;
    E) sync; echo written; exit 0 ;;
    *) echo "unexpected record '$t' in the image stream" >&2; exit 4 ;;
  esac
done
echo "the image stream ended before its end record" >&2; exit 4`;

export interface WriteOptions {
    file: string;
    scan: ImageScan;
    disk: string;
    timeoutS: number;
}

export async function writeImage(ctx: PhaseContext, o: WriteOptions): Promise<void> {
    const phase = "write";
    const sample = await sampleOf(o);
    const choice = await chooseCodec(ctx.target, { phase, bytes: o.scan.dataBytes, sample, env: ctx.env });
    const mib = (n: number) => (n / 1048576).toFixed(1);
    const how = choice.codec ? `, ${choice.codec.name}-compressed (${choice.why})` : o.scan.dataBytes >= MIN_COMPRESS_BYTES ? `, uncompressed (${choice.why})` : "";
    ctx.log(phase, `writing ${mib(o.scan.bytes)} MiB to ${o.disk}: ${mib(o.scan.dataBytes)} MiB of data sent, ${mib(o.scan.bytes - o.scan.dataBytes)} MiB zeroed on the target${how}`);
    const progress = new CopyProgress(o.scan.dataBytes, (line) => ctx.log(phase, line));
    const records = imageRecords(o.file, o.scan.runs);
    const compressor = choice.codec ? localProcess(choice.codec.compress.cmd, choice.codec.compress.args, ctx.env, "pipe") : undefined;
    records.pipe(progress);
    let wire = progress as NodeJS.ReadableStream;
    if (compressor) {
        compressor.child.stdin!.on("error", () => undefined);
        progress.pipe(compressor.child.stdin!);
        progress.countWire(compressor.child.stdout!);
        wire = compressor.child.stdout!;
    }
    const stopAll = () => {
        records.destroy();
        progress.destroy();
        compressor?.stop();
    };
    records.on("error", stopAll);
    void compressor?.exited.then(() => compressor.failed() && stopAll(), () => undefined);
    const cmd = choice.codec ? sh`${choice.codec.decompress} | { ${receiver(o.disk)}; }` : receiver(o.disk);
    try {
        await ctx.target.run(cmd, { phase, stdin: wire as never, timeoutMs: o.timeoutS * 1000, what: `writing the image to ${o.disk}` });
    } catch (e) {
        stopAll();
        if (compressor?.failed()) throw new NixosDeployError({ host: "localhost", phase, what: `compressing the image with ${choice.codec!.name} failed`, stderr: compressor.stderr(), cause: e });
        throw e;
    } finally {
        progress.stop();
    }
    await verify(ctx, o);
}

/** The sha256 of the disk's first image-length bytes must be the image's. */
async function verify(ctx: PhaseContext, o: WriteOptions): Promise<void> {
    const phase = "write";
    const landed = await diskChecksum(ctx, o.disk, o.scan.bytes, o.timeoutS);
    if (landed === o.scan.sha256) {
        ctx.log(phase, `verified: ${o.disk} holds the image (sha256 ${o.scan.sha256.slice(0, 16)}…)`);
        return;
    }
    await ctx.target.run(sh`dd if=/dev/zero of=${o.disk} bs=1M count=1 conv=notrunc,fsync status=none`, { phase, what: `zeroing the first MiB of ${o.disk} after a bad write` });
    throw new NixosDeployError({
        host: ctx.target.name,
        phase,
        what: `the image did not land intact on ${o.disk}: its first ${o.scan.bytes} bytes have sha256 ${landed}, the image ${o.scan.sha256}`,
        hint: "the disk's first MiB was zeroed so that nothing boots from it; the next `pulumi up` writes the image again. If it fails again, check the disk (dmesg) or the rescue system's memory",
    });
}

/** The sha256 of a disk's first `bytes` bytes, on the target. */
export async function diskChecksum(ctx: PhaseContext, disk: string, bytes: number, timeoutS: number): Promise<string> {
    const r = await ctx.target.run(sh`head -c ${bytes} ${disk} | sha256sum`, { phase: "write", timeoutMs: timeoutS * 1000, what: `reading back ${disk}` });
    return r.stdout.trim().split(/\s+/)[0] ?? "";
}

/** The head of the largest data run: what the compressor would see. */
async function sampleOf(o: WriteOptions): Promise<Buffer> {
    const data = o.scan.runs.filter((r) => !r.zero).sort((a, b) => b.length - a.length)[0];
    if (!data) return Buffer.alloc(0);
    const fd = await fs.promises.open(o.file, "r");
    try {
        const buf = Buffer.alloc(Math.min(SAMPLE_BYTES, data.length));
        await fd.read(buf, 0, buf.length, data.offset);
        return buf;
    } finally {
        await fd.close();
    }
}
