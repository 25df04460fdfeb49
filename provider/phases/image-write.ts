/**
 * write (installs by image): streams a raw disk image onto the target's disk over the verified
 * connection, then checks the sha256 of what landed (the image's length) against the image's.
 * The send reads the image once and finds its zero runs (image/stream.ts), which are not sent; the
 * target zeroes them itself (`blkdiscard -z`, else `dd` from /dev/zero), so old
 * data never shows through. The stream is compressed when the link is slower than the compressor
 * (nix/compression.ts), with progress every 2 s. The image's own sha256 is taken here while the
 * target reads the disk back. The read-back hashes with `openssl dgst` where the
 * rescue system has it (it uses the CPU's SHA instructions; coreutils' sha256sum runs at a
 * third of its speed), else `sha256sum`. A mismatch zeroes the disk's first MiB, so that nothing
 * boots from a corrupted image, and fails the phase.
 */
import * as fs from "node:fs";
import { NixosDeployError } from "../errors";
import { dataSample, fileSha256, imageRecords, StreamStats } from "../image/stream";
import { chooseCodec, MIN_COMPRESS_BYTES, SAMPLE_BYTES } from "../nix/compression";
import { localProcess, plumb } from "../nix/pipe";
import { CopyProgress } from "../nix/progress";
import { sh } from "../ssh/shell";
import type { PhaseContext } from "./context";
import { SHORT_MS } from "./image-disk";

/** The target's receiver: reads the records on stdin (see image/stream.ts). */
const receiver = (disk: string) => sh`d=${disk}
while read -r t b s n; do
  case $t in
    D) dd of="$d" bs="$b" seek="$s" count="$n" iflag=fullblock conv=notrunc status=none || exit 5 ;;
    Z) blkdiscard -z -o $((b * s)) -l $((b * n)) "$d" 2>/dev/null || dd if=/dev/zero of="$d" bs="$b" seek="$s" count="$n" conv=notrunc status=none || exit 5 ;;
    E) echo written; exit 0 ;;
    *) echo "unexpected record '$t' in the image stream" >&2; exit 4 ;;
  esac
done
echo "the image stream ended before its end record" >&2; exit 4`;

export interface WriteOptions {
    file: string;
    disk: string;
    timeoutS: number;
}

const mib = (n: number) => (n / 1048576).toFixed(1);

/** Writes and verifies; returns what the stream carried and the image's sha256. */
export async function writeImage(ctx: PhaseContext, o: WriteOptions): Promise<StreamStats & { sha256: string }> {
    const phase = "write";
    const bytes = fs.statSync(o.file).size;
    const choice = await chooseCodec(ctx.target, { phase, bytes, sample: await dataSample(o.file, SAMPLE_BYTES), env: ctx.env });
    const how = choice.codec ? `, ${choice.codec.name}-compressed (${choice.why})` : bytes >= MIN_COMPRESS_BYTES ? `, uncompressed (${choice.why})` : "";
    ctx.log(phase, `writing ${mib(bytes)} MiB to ${o.disk}${how}`);
    const { stream, stats } = imageRecords(o.file);
    // Progress counts the image read, zero runs included: what is done of the disk.
    const progress = new CopyProgress(bytes, (line) => ctx.log(phase, line), 2000, "written");
    const compressor = choice.codec ? localProcess(choice.codec.compress.cmd, choice.codec.compress.args, ctx.env, "pipe") : undefined;
    const wire = plumb(stream, compressor, progress);
    // A failed read or compressor also ends what the target reads, so the remote side stops too.
    const stopAll = () => {
        stream.destroy();
        progress.destroy();
        compressor?.stop();
        wire.destroy();
    };
    stream.on("error", stopAll);
    void compressor?.exited.then(() => compressor.failed() && stopAll(), () => undefined);
    const cmd = choice.codec ? sh`${choice.codec.decompress} | { ${receiver(o.disk)}; }` : receiver(o.disk);
    try {
        await ctx.target.run(cmd, { phase, stdin: wire, timeoutMs: o.timeoutS * 1000, what: `writing the image to ${o.disk}` });
    } catch (e) {
        stopAll();
        if (compressor?.failed()) {
            const command = [choice.codec!.compress.cmd, ...choice.codec!.compress.args].join(" ");
            throw new NixosDeployError({ host: "localhost", phase, what: `compressing the image with ${choice.codec!.name} failed`, command, stderr: compressor.stderr(), cause: e });
        }
        throw e;
    } finally {
        progress.stop();
    }
    const sent = await stats;
    ctx.log(phase, `sent ${mib(sent.dataBytes)} MiB of data in ${sent.records} records; ${mib(sent.zeroBytes)} MiB zeroed on the target`);
    const sha256 = await verify(ctx, o.disk, o.file, sent.bytes, o.timeoutS);
    return { ...sent, sha256 };
}

/** The sha256 of the disk's first image-length bytes must be the image's; returns it. */
async function verify(ctx: PhaseContext, disk: string, file: string, bytes: number, timeoutS: number): Promise<string> {
    const phase = "write";
    const [landed, sha256] = await Promise.all([diskChecksum(ctx, disk, bytes, timeoutS), fileSha256(file)]);
    if (landed === sha256) {
        ctx.log(phase, `verified: ${disk} holds the image (sha256 ${sha256.slice(0, 16)}…)`);
        return sha256;
    }
    await ctx.target.run(sh`dd if=/dev/zero of=${disk} bs=1M count=1 conv=notrunc,fsync status=none`, { phase, what: `zeroing the first MiB of ${disk} after a bad write`, timeoutMs: SHORT_MS });
    throw new NixosDeployError({
        host: ctx.target.name,
        phase,
        what: `the image did not land intact on ${disk}: its first ${bytes} bytes have sha256 ${landed}, the image ${sha256}`,
        hint: "the disk's first MiB was zeroed so that nothing boots from it; the next `pulumi up` writes the image again. If it fails again, check the disk (dmesg) or the rescue system's memory",
    });
}

/**
 * Reads a disk's first N bytes as the disk holds them. With GNU dd: 4 MiB reads that bypass the
 * page cache where the device allows (the kernel writes the device's dirty pages back before a
 * direct read, so this reads what the writes left on the disk; and on a loop device or a virtual
 * disk it is many times faster than head's small reads). Else the disk is flushed (`sync <disk>`)
 * and read with head -c.
 */
const readBack = (disk: string, bytes: number) => sh`if dd if=/dev/zero of=/dev/null bs=512 count=512 iflag=count_bytes 2>/dev/null && dd if=${disk} of=/dev/null bs=4096 count=1 iflag=direct 2>/dev/null; then
  dd if=${disk} bs=4M count=${bytes} iflag=direct,count_bytes status=none
else { sync ${disk} 2>/dev/null || sync; } && head -c ${bytes} ${disk}; fi`;

/** The sha256 of a disk's first `bytes` bytes, on the target. */
export async function diskChecksum(ctx: PhaseContext, disk: string, bytes: number, timeoutS: number): Promise<string> {
    const hasher = sh`if command -v openssl >/dev/null 2>&1; then openssl dgst -sha256 -r; else sha256sum; fi`;
    const r = await ctx.target.run(sh`{ ${readBack(disk, bytes)}; } | ${hasher}`, { phase: "write", timeoutMs: timeoutS * 1000, what: `reading back ${disk}` });
    return r.stdout.trim().split(/\s+/)[0] ?? "";
}
