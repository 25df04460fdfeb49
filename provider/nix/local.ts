/** Running the local (deployer-side) Nix commands, with their errors as NixosDeployError. */
import { spawn } from "node:child_process";
import { NixosDeployError } from "../errors";

export interface LocalResult {
    stdout: string;
    stderr: string;
    code: number | null;
    /** The command ran past `timeoutMs` and was ended. */
    timedOut?: boolean;
}

/**
 * New-style `nix` commands are experimental, and off, in a stock Nix 2.18 to 2.31 and in Lix; they
 * are enabled per call, as nixos-rebuild and nixos-anywhere do. The legacy `nix-store` needs nothing.
 */
export const NIX_FEATURES = ["--extra-experimental-features", "nix-command flakes"];

/**
 * Runs a local command; never throws for a non-zero exit. argv only: never a shell. With timeoutMs,
 * it is ended (SIGTERM) past that. A command that cannot start rejects with a NixosDeployError of
 * `phase` (default: the tool's own, else "deployer") that says what to install (spawnFailure).
 */
export function runLocal(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; stdin?: string; timeoutMs?: number; phase?: string } = {}): Promise<LocalResult> {
    if (cmd === "nix") args = [...NIX_FEATURES, ...args];
    const failed = (e: unknown) => spawnFailure(opts.phase ?? TOOLS[cmd]?.phase ?? "deployer", "", cmd, e);
    return new Promise((resolve, reject) => {
        let child: ReturnType<typeof spawn>;
        try {
            // E2BIG is thrown here, at once; ENOENT comes as an "error" event.
            child = spawn(cmd, args, { cwd: opts.cwd, env: opts.env ?? process.env, stdio: [opts.stdin === undefined ? "ignore" : "pipe", "pipe", "pipe"] });
        } catch (e) {
            return reject(failed(e));
        }
        const out: Buffer[] = [];
        const err: Buffer[] = [];
        child.stdout!.on("data", (d) => out.push(d));
        child.stderr!.on("data", (d) => err.push(d));
        let timedOut = false;
        const timer = opts.timeoutMs ? setTimeout(() => ((timedOut = true), child.kill("SIGTERM")), opts.timeoutMs) : undefined;
        child.on("error", (e) => (clearTimeout(timer), reject(failed(e))));
        child.on("close", (code) => {
            clearTimeout(timer);
            resolve({ stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString(), code, timedOut: timedOut || undefined });
        });
        if (child.stdin) {
            // A command that exits without reading its input makes the write fail with EPIPE; the
            // exit code tells what happened, and an unhandled stream error would end the provider.
            child.stdin.on("error", () => undefined);
            child.stdin.end(opts.stdin);
        }
    });
}

/** Runs a local command and returns stdout, or throws a NixosDeployError for `phase` on "localhost". */
export async function mustLocal(phase: string, what: string, cmd: string, args: string[], opts: Parameters<typeof runLocal>[2] = {}): Promise<string> {
    let r: LocalResult;
    try {
        r = await runLocal(cmd, args, { ...opts, phase });
    } catch (e) {
        // Said again with what was being done.
        throw spawnFailure(phase, `${what}: `, cmd, (e as Error).cause ?? e);
    }
    if (r.code !== 0) {
        const bound = r.timedOut ? `: timed out after ${opts.timeoutMs! / 1000} s` : "";
        throw new NixosDeployError({ host: "localhost", phase, what: what + bound, command: [cmd, ...args].join(" "), exitCode: r.code, stderr: r.stderr });
    }
    return r.stdout;
}

const NIX = "install Nix on the machine that runs Pulumi (Debian: apt-get install nix-bin)";
const UTIL_LINUX = "install util-linux on the machine that runs Pulumi (Debian: apt-get install util-linux): an install by image reads the image's partitions with blkid and partx";
const QEMU_IMG = "install qemu-img on the machine that runs Pulumi (Debian: apt-get install qemu-utils): images are converted and read with it";

/** Where each deployer tool comes from (the hint when it cannot be found), and the phase that needs it. */
const TOOLS: Record<string, { hint: string; phase?: string }> = {
    blkid: { hint: UTIL_LINUX, phase: "image" },
    partx: { hint: UTIL_LINUX, phase: "image" },
    "qemu-img": { hint: QEMU_IMG, phase: "image" },
};

/**
 * A local command that could not start. Only a command that is not there (ENOENT) calls for
 * installing something; an argument list past ARG_MAX (E2BIG) is the caller's fault, never the
 * deployer's missing Nix.
 */
export function spawnFailure(phase: string, prefix: string, cmd: string, e: unknown): NixosDeployError {
    const code = (e as NodeJS.ErrnoException).code;
    const message = e instanceof Error ? e.message : String(e);
    if (code === "E2BIG") {
        return new NixosDeployError({ host: "localhost", phase, what: `${prefix}cannot run ${cmd}: its arguments are too long for one command line (${message})`, command: cmd, cause: e });
    }
    const hint = code === "ENOENT" ? (TOOLS[cmd]?.hint ?? (cmd.startsWith("nix") ? NIX : `install ${cmd} on the machine that runs Pulumi`)) : undefined;
    return new NixosDeployError({ host: "localhost", phase, what: `${prefix}cannot run ${cmd}: ${message}`, command: cmd, hint, cause: e });
}
