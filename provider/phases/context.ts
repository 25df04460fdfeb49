/** What every phase gets: the target, a progress logger and the deployer's environment. */
import type { Target } from "../ssh/target";

export interface PhaseContext {
    target: Target;
    /** Prints "<resource>: <phase>: <line>". */
    log(phase: string, line: string): void;
    /** Environment for local Nix commands. */
    env: NodeJS.ProcessEnv;
    /** Folder that relative paths (flakes, files) are resolved from: the Pulumi program's. */
    cwd: string;
}

/** Runs fn as a named phase with start and end lines and the elapsed time. */
export async function phase<T>(ctx: PhaseContext, name: string, fn: () => Promise<T>): Promise<T> {
    const t0 = Date.now();
    ctx.log(name, "started");
    const r = await fn();
    ctx.log(name, `done in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    return r;
}
