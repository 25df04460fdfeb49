/**
 * Copying closures to a target over the already-verified SSH connection: the target reports
 * which paths it lacks, and only those are streamed (`nix-store --export | nix-store --import`).
 * This needs no ssh binary, known_hosts file or key file on the deployer, works through a
 * bastion and with password logins, and never puts a secret on a command line.
 */
import { spawn } from "node:child_process";
import { PassThrough } from "node:stream";
import { NixosDeployError } from "../errors";
import { Command, sh } from "../ssh/shell";
import { Target } from "../ssh/target";
import { closureOf } from "./build";
import { mustLocal } from "./local";

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
    opts: { phase: string; root?: string; substitute?: boolean; log?: (line: string) => void; env?: NodeJS.ProcessEnv; timeoutS?: number },
): Promise<CopyResult> {
    const closure = await closureOf(paths, opts.env);
    let missing = await missingOnTarget(target, closure, opts.phase, opts.root);
    if (missing.length && opts.substitute) {
        // Let the target fetch what its own substituters have; failures only mean we send more.
        await target.run(sh`xargs -r nix-store ${storeArgs(opts.root)}--realise --ignore-unknown >/dev/null 2>&1 || true`, { phase: opts.phase, stdin: missing.join("\n") + "\n" });
        missing = await missingOnTarget(target, missing, opts.phase, opts.root);
    }
    if (missing.length === 0) return { total: closure.length, copied: 0, bytes: 0 };
    const sizes = await mustLocal(opts.phase, "cannot size the closure", "nix-store", ["--query", "--size", ...missing], { env: opts.env });
    const bytes = sizes.trim().split("\n").reduce((a, s) => a + Number(s), 0);
    opts.log?.(`copying ${missing.length} of ${closure.length} paths (${(bytes / 1048576).toFixed(1)} MiB)${opts.root ? ` into ${opts.root}` : ""}`);
    await streamExport(target, missing, opts.phase, opts.root, opts.env, opts.timeoutS ?? 3600);
    const still = await missingOnTarget(target, missing, opts.phase, opts.root);
    if (still.length) {
        throw new NixosDeployError({ host: target.name, phase: opts.phase, what: `${still.length} paths are still missing after the copy, e.g. ${still[0]}` });
    }
    return { total: closure.length, copied: missing.length, bytes };
}

async function streamExport(target: Target, paths: string[], phase: string, root: string | undefined, env: NodeJS.ProcessEnv | undefined, timeoutS: number): Promise<void> {
    const exporter = spawn("nix-store", ["--export", ...paths], { env: env ?? process.env, stdio: ["ignore", "pipe", "pipe"] });
    const exportErr: Buffer[] = [];
    exporter.stderr.on("data", (d) => exportErr.push(d));
    const exported = new Promise<number | null>((resolve, reject) => {
        exporter.on("error", reject);
        exporter.on("close", resolve);
    });
    // Consume stdout at once: Node resumes (and so discards) a child's unread stdout when it exits.
    const stream = new PassThrough();
    exporter.stdout.pipe(stream);
    const imported = await target
        .run(sh`nix-store ${storeArgs(root)}--import >/dev/null`, { phase, stdin: stream, timeoutMs: timeoutS * 1000, what: "importing the closure on the target" })
        .then(() => undefined, (e: Error) => e);
    // The import failed or timed out (or the connection dropped) while the export still writes:
    // nothing reads its pipe any more, so end it rather than wait for it.
    if (imported && exporter.exitCode === null && exporter.signalCode === null) exporter.kill("SIGTERM");
    const code = await exported;
    if (imported) throw imported;
    if (code !== 0) {
        throw new NixosDeployError({ host: "localhost", phase, what: "nix-store --export failed", exitCode: code, stderr: Buffer.concat(exportErr).toString() });
    }
}
