/**
 * Whether to compress a closure on the wire, and with what. Compression pays only when the link
 * is slower than the compressor: on a fast link (loopback, a LAN) it costs CPU that the SSH
 * encryption needs. Both rates are measured, not guessed, for each copy big enough to matter:
 * - the compressor's: it compresses a sample of the closure (the head of its largest path's NAR),
 *   which also gives the ratio;
 * - the link's: 1 MiB of random bytes to `cat >/dev/null` on the target, less the time of the
 *   same command with no input (its round trip). On a fast link that probe lasts a
 *   few milliseconds, which a busy machine's scheduling can double; so a choice to compress that
 *   rests on a probe shorter than 0.1 s is checked with an 8 MiB probe, and the faster of the two
 *   rates stands for the link (noise only ever slows a probe down).
 * The sample is read while the link is measured.
 * The copy is compressed when sending compressed is estimated at under 0.8 of the time of sending
 * it as it is, counting the compression's time in full (as if it did not overlap the sending).
 */
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { Command, sh } from "../ssh/shell";
import type { Target } from "../ssh/target";

export interface Codec {
    name: "zstd" | "gzip";
    /** The deployer's compressor, reading stdin and writing stdout. */
    compress: { cmd: string; args: string[] };
    /** The target's decompressor, reading stdin and writing stdout. */
    decompress: Command;
}

/** zstd when both ends have it, else gzip -1. */
const CODECS: Codec[] = [
    { name: "zstd", compress: { cmd: "zstd", args: ["-1", "-q", "-c"] }, decompress: sh`zstd -dcq` },
    { name: "gzip", compress: { cmd: "gzip", args: ["-1", "-c"] }, decompress: sh`gzip -dc` },
];

/** Below this, a copy is sent as it is: measuring would cost more than compressing could save. */
export const MIN_COMPRESS_BYTES = 8 << 20;
export const SAMPLE_BYTES = 2 << 20;
const PROBE_BYTES = 1 << 20;
/** The second probe, for a first one shorter than SHORT_PROBE_S: about 50 ms on a fast bridge, 0.8 s at 10 MiB/s. */
const CONFIRM_BYTES = 8 << 20;
const SHORT_PROBE_S = 0.1;
/** Reading the sample and compressing it end here: past it, the copy goes as it is. */
const LOCAL_BOUND_MS = 30_000;
/** Each link probe's bound: 1 MiB in 2 minutes is 8.7 kB/s. */
const PROBE_BOUND_MS = 120_000;

export interface Choice {
    codec?: Codec;
    /** What was measured, for the log. */
    why: string;
}

/**
 * `sample` is what the data looks like: the head of the largest path's NAR for a closure
 * (`largestPath`), or given (a disk image's data).
 */
export async function chooseCodec(target: Target, o: { phase: string; bytes: number; largestPath?: string; sample?: Buffer; env?: NodeJS.ProcessEnv }): Promise<Choice> {
    if (o.bytes < MIN_COMPRESS_BYTES) return { why: "small copy" };
    const sampled = o.sample ? Promise.resolve(o.sample.subarray(0, SAMPLE_BYTES)) : headOf("nix-store", ["--dump", o.largestPath ?? ""], SAMPLE_BYTES, o.env);
    const [remote, sample] = await Promise.all([linkAndTools(target, o.phase), sampled]);
    for (const codec of CODECS.filter((c) => remote.tools.includes(c.name))) {
        const c = await compressRate(codec, sample, o.env);
        if (!c) continue;
        let link = rate(PROBE_BYTES, remote.probeS);
        if (pays(c, link) && remote.probeS < SHORT_PROBE_S) link = Math.max(link, rate(CONFIRM_BYTES, (await timedProbe(target, o.phase, CONFIRM_BYTES)) - remote.roundTripS));
        const mib = (r: number) => `${(r / 1048576).toFixed(1)} MiB/s`;
        const why = `link ${mib(link)}, ${codec.name} ${mib(c.rate)} to ${Math.round(c.ratio * 100)}%`;
        return pays(c, link) ? { codec, why } : { why };
    }
    return { why: "no compressor on both ends" };
}

/** The compressor's rate (bytes in per second) and ratio on `sample`; undefined when it does not run here. */
async function compressRate(codec: Codec, sample: Buffer, env?: NodeJS.ProcessEnv): Promise<{ rate: number; ratio: number } | undefined> {
    const t0 = process.hrtime.bigint();
    const out = await new Promise<number | undefined>((resolve) => {
        const p = spawn(codec.compress.cmd, codec.compress.args, { env: env ?? process.env, stdio: ["pipe", "pipe", "ignore"] });
        let n = 0;
        p.stdout.on("data", (d: Buffer) => (n += d.length));
        const timer = setTimeout(() => p.kill(), LOCAL_BOUND_MS);
        p.on("error", () => (clearTimeout(timer), resolve(undefined)));
        p.on("close", (code) => (clearTimeout(timer), resolve(code === 0 ? n : undefined)));
        p.stdin.on("error", () => undefined);
        p.stdin.end(sample);
    });
    if (out === undefined || sample.length === 0) return undefined;
    const s = Number(process.hrtime.bigint() - t0) / 1e9;
    return { rate: sample.length / Math.max(s, 1e-4), ratio: out / sample.length };
}

/**
 * Whether sending compressed is estimated at under 0.8 of the time of sending as it is, with the
 * compression's time counted in full. Rates are in bytes per second.
 */
function pays(c: { rate: number; ratio: number }, link: number): boolean {
    return 1 / c.rate + c.ratio / link < 0.8 / link;
}

/** Bytes per second; a time lost in the round trip's noise counts as 0.1 ms. */
const rate = (bytes: number, seconds: number) => bytes / Math.max(seconds, 1e-4);

interface Remote {
    tools: string[];
    /** Seconds the 1 MiB probe took, less the round trip. */
    probeS: number;
    roundTripS: number;
}

/**
 * The decompressors the target has, and the link's rate to it through the connection the copy
 * uses. The query comes first, so the connection (and sudo's mode) is set up before any clock runs.
 */
async function linkAndTools(target: Target, phase: string): Promise<Remote> {
    const r = await target.run(sh`for c in zstd gzip; do command -v "$c" >/dev/null 2>&1 && echo "$c"; done`, { phase, allowFailure: true, timeoutMs: PROBE_BOUND_MS });
    const roundTripS = await timedProbe(target, phase, 0);
    const probeS = (await timedProbe(target, phase, PROBE_BYTES)) - roundTripS;
    return { tools: r.stdout.split("\n"), probeS, roundTripS };
}

/** Seconds to send `bytes` of random data to `cat >/dev/null` on the target (the data is made before the clock starts). */
async function timedProbe(target: Target, phase: string, bytes: number): Promise<number> {
    const data = randomBytes(bytes);
    const t0 = process.hrtime.bigint();
    await target.run(sh`cat >/dev/null`, { phase, stdin: data, timeoutMs: PROBE_BOUND_MS });
    return Number(process.hrtime.bigint() - t0) / 1e9;
}

/** The first `limit` bytes a command writes (it is stopped then). */
function headOf(cmd: string, args: string[], limit: number, env?: NodeJS.ProcessEnv): Promise<Buffer> {
    return new Promise((resolve) => {
        const p = spawn(cmd, args, { env: env ?? process.env, stdio: ["ignore", "pipe", "ignore"] });
        const parts: Buffer[] = [];
        let n = 0;
        const done = () => {
            clearTimeout(timer);
            p.kill();
            resolve(Buffer.concat(parts).subarray(0, limit));
        };
        const timer = setTimeout(done, LOCAL_BOUND_MS);
        p.stdout.on("data", (d: Buffer) => {
            parts.push(d);
            n += d.length;
            if (n >= limit) done();
        });
        p.on("error", done);
        p.on("close", done);
    });
}
