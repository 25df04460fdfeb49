/**
 * Copying closures to a target over the already-verified SSH connection: the target reports
 * which paths it lacks, its substituters (and a binary cache, cache.ts) provide what they can,
 * and only the rest is streamed (`nix-store --export | nix-store --import`), compressed when the
 * link is slower than the compressor (compression.ts), with progress lines (progress.ts).
 * This needs no ssh binary, known_hosts file or key file on the deployer, works through a
 * bastion and with password logins, and never puts a secret on a command line.
 */
import { NixosDeployError } from "../errors";
import { Command, sh } from "../ssh/shell";
import { Target } from "../ssh/target";
import { closureOf } from "./build";
import { Cache, cacheOptions, pushToCache } from "./cache";
import { chooseCodec, Codec, MIN_COMPRESS_BYTES } from "./compression";
import { argvChunks } from "./argv";
import { exportPaths } from "./export";
import { mustLocal } from "./local";
import { localProcess, plumb } from "./pipe";
import { CopyProgress } from "./progress";

export interface CopyResult {
    /** Paths in the closure. */
    total: number;
    /** Paths that were missing on the target and were sent. */
    copied: number;
    /** Bytes (NAR size) sent. */
    bytes: number;
}

/** `--store <root>` for an install chroot such as /mnt, or nothing for the running system. */
function storeArgs(root?: string): Command {
    return root ? sh`--store ${root} ` : sh``;
}

/** Paths (of `paths`) that are not valid in the target's store. */
export async function missingOnTarget(target: Target, paths: string[], phase: string, root?: string): Promise<string[]> {
    if (paths.length === 0) return [];
    // The list goes through stdin: a large closure would not fit on a command line.
    const r = await target.run(sh`xargs -r nix-store ${storeArgs(root)}--check-validity --print-invalid`, { phase, stdin: paths.join("\n") + "\n" });
    const invalid = new Set(r.stdout.split("\n").filter(Boolean));
    return paths.filter((p) => invalid.has(p));
}

/** Copies the closure of `paths` into the target's store (or the store under `root`). */
export async function copyClosure(
    target: Target,
    paths: string[],
    opts: { phase: string; root?: string; substitute?: boolean; cache?: Cache; log?: (line: string) => void; env?: NodeJS.ProcessEnv; timeoutS?: number },
): Promise<CopyResult> {
    const closure = await closureOf(paths, opts.env);
    const missing = opts.substitute || opts.cache ? await substitute(target, paths, closure, opts) : await missingOnTarget(target, closure, opts.phase, opts.root);
    if (missing.length === 0) return { total: closure.length, copied: 0, bytes: 0 };
    const sizes = await pathSizes(missing, opts.phase, opts.env);
    const bytes = sizes.reduce((a, s) => a + s, 0);
    const largestPath = missing[sizes.indexOf(Math.max(...sizes))];
    const choice = await chooseCodec(target, { phase: opts.phase, bytes, largestPath, env: opts.env });
    const how = choice.codec ? `, ${choice.codec.name}-compressed (${choice.why})` : bytes >= MIN_COMPRESS_BYTES ? `, uncompressed (${choice.why})` : "";
    opts.log?.(`copying ${missing.length} of ${closure.length} paths (${(bytes / 1048576).toFixed(1)} MiB)${opts.root ? ` into ${opts.root}` : ""}${how}`);
    const progress = new CopyProgress(bytes, (line) => opts.log?.(line));
    let registered: Set<string>;
    try {
        registered = await streamExport(target, missing, { phase: opts.phase, root: opts.root, env: opts.env, timeoutS: opts.timeoutS ?? 3600, codec: choice.codec, progress });
    } finally {
        progress.stop();
    }
    const still = missing.filter((p) => !registered.has(p));
    if (still.length) {
        throw new NixosDeployError({ host: target.name, phase: opts.phase, what: `${still.length} paths are still missing after the copy, e.g. ${still[0]}` });
    }
    return { total: closure.length, copied: missing.length, bytes };
}

/** The NAR size of each path, in order; in argv-bounded chunks (argv.ts). */
export async function pathSizes(paths: string[], phase: string, env?: NodeJS.ProcessEnv, maxArgvBytes?: number): Promise<number[]> {
    const sizes: number[] = [];
    for (const chunk of argvChunks(paths, maxArgvBytes)) {
        const out = await mustLocal(phase, "cannot size the closure", "nix-store", ["--query", "--size", ...chunk], { env });
        sizes.push(...out.trim().split("\n").map(Number));
    }
    return sizes;
}

/**
 * Lets the target fetch what substituters have (its own, and the binary cache after the deployer
 * pushed to it); returns what is still missing. Failures, and a push that was not made, only mean
 * the deployer sends more.
 */
async function substitute(target: Target, paths: string[], closure: string[], opts: Parameters<typeof copyClosure>[2]): Promise<string[]> {
    if (!opts.cache) return substituted(target, closure, opts, sh``);
    // The cache is pushed to only when the target lacks something.
    const missing = await missingOnTarget(target, closure, opts.phase, opts.root);
    if (!missing.length) return [];
    const pushed = await pushToCache(opts.cache, paths, { phase: opts.phase, env: opts.env, log: opts.log, timeoutS: opts.timeoutS ?? 3600 });
    // Not pushed (the log said why): the target's own substituters, when allowed, then the deployer.
    if (!pushed) return opts.substitute ? substituted(target, missing, opts, sh``) : missing;
    const after = await substituted(target, missing, opts, cacheOptions(opts.cache, opts.substitute ?? false));
    opts.log?.(`substituted ${missing.length - after.length} of ${missing.length} missing paths${after.length ? `; the deployer sends the other ${after.length}` : ""}`);
    return after;
}

/**
 * In one command: which of `paths` the target lacks, its `nix-store --realise` of those (with
 * `options`), and which it still lacks then; returns those.
 */
async function substituted(target: Target, paths: string[], opts: { phase: string; root?: string }, options: Command): Promise<string[]> {
    const store = storeArgs(opts.root);
    const script = sh`t=$(mktemp -d) && trap 'rm -rf "$t"' EXIT && cat > "$t/all" && xargs -r nix-store ${store}--check-validity --print-invalid < "$t/all" > "$t/missing" &&
if [ -s "$t/missing" ]; then xargs -r nix-store ${store}--realise --ignore-unknown ${options}< "$t/missing" >/dev/null 2>&1; xargs -r nix-store ${store}--check-validity --print-invalid < "$t/missing"; fi`;
    const r = await target.run(script, { phase: opts.phase, stdin: paths.join("\n") + "\n" });
    const still = new Set(r.stdout.split("\n").filter(Boolean));
    return paths.filter((p) => still.has(p));
}

interface StreamOptions {
    phase: string;
    root?: string;
    env?: NodeJS.ProcessEnv;
    timeoutS: number;
    codec?: Codec;
    progress: CopyProgress;
}

/**
 * `nix-store --export` (export.ts) | progress | [compressor] | SSH | [decompressor] | `nix-store --import`.
 * A failure anywhere ends every local process of the pipe. Returns the paths the import
 * registered: nix-store --import prints each once it is valid (src/nix-store/nix-store.cc, opImport).
 */
async function streamExport(target: Target, paths: string[], o: StreamOptions): Promise<Set<string>> {
    const exporter = exportPaths(paths, o.env);
    const compressor = o.codec ? localProcess(o.codec.compress.cmd, o.codec.compress.args, o.env, "pipe") : undefined;
    const stream = plumb(exporter.stdout, compressor, o.progress);
    const stopAll = () => {
        o.progress.destroy();
        [exporter, compressor].forEach((p) => p?.stop());
    };
    // A compressor that dies leaves the export blocked on a full pipe: end it too.
    void compressor?.exited.then(() => compressor.failed() && stopAll(), () => undefined);
    const importer = o.codec ? sh`${o.codec.decompress} | nix-store ${storeArgs(o.root)}--import` : sh`nix-store ${storeArgs(o.root)}--import`;
    let imported: Error | undefined;
    let printed = "";
    try {
        printed = (await target.run(importer, { phase: o.phase, stdin: stream, timeoutMs: o.timeoutS * 1000, what: "importing the closure on the target" })).stdout;
    } catch (e) {
        imported = e as Error;
    }
    // The import failed or timed out (or the connection dropped) while the export still writes:
    // nothing reads its pipe any more, so end it rather than wait for it.
    if (imported) stopAll();
    const [code, compressed] = await Promise.all([exporter.exited, compressor?.exited]);
    if (compressor?.failed()) {
        throw new NixosDeployError({ host: "localhost", phase: o.phase, what: `compressing the closure with ${o.codec!.name} failed`, command: [o.codec!.compress.cmd, ...o.codec!.compress.args].join(" "), exitCode: compressed ?? null, stderr: compressor.stderr() });
    }
    if (imported) throw imported;
    if (code !== 0) {
        throw new NixosDeployError({ host: "localhost", phase: o.phase, what: "nix-store --export failed", exitCode: code, stderr: exporter.stderr() });
    }
    return new Set(printed.split("\n").filter(Boolean));
}
