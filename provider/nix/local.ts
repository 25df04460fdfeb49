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

/** Runs a local command; never throws for a non-zero exit. argv only: never a shell. With timeoutMs, it is ended (SIGTERM) past that. */
export function runLocal(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; stdin?: string; timeoutMs?: number } = {}): Promise<LocalResult> {
    if (cmd === "nix") args = [...NIX_FEATURES, ...args];
    return new Promise((resolve, reject) => {
        const child = spawn(cmd, args, { cwd: opts.cwd, env: opts.env ?? process.env, stdio: [opts.stdin === undefined ? "ignore" : "pipe", "pipe", "pipe"] });
        const out: Buffer[] = [];
        const err: Buffer[] = [];
        child.stdout!.on("data", (d) => out.push(d));
        child.stderr!.on("data", (d) => err.push(d));
        let timedOut = false;
        const timer = opts.timeoutMs ? setTimeout(() => ((timedOut = true), child.kill("SIGTERM")), opts.timeoutMs) : undefined;
        child.on("error", (e) => (clearTimeout(timer), reject(e)));
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
        r = await runLocal(cmd, args, opts);
    } catch (e) {
        throw new NixosDeployError({
            host: "localhost",
            phase,
            what: `${what}: cannot run ${cmd}: ${(e as Error).message}`,
            command: cmd,
            hint: cmd.startsWith("nix") ? "install Nix on the machine that runs Pulumi (Debian: apt-get install nix-bin)" : undefined,
        });
    }
    if (r.code !== 0) {
        const bound = r.timedOut ? `: timed out after ${opts.timeoutMs! / 1000} s` : "";
        throw new NixosDeployError({ host: "localhost", phase, what: what + bound, command: [cmd, ...args].join(" "), exitCode: r.code, stderr: r.stderr });
    }
    return r.stdout;
}
