/** Commands that must never run twice at once on a machine, whatever happened to earlier runs. */
import { NixosDeployError } from "../errors";
import { Command, sh } from "../ssh/shell";
import type { PhaseContext } from "./context";

/** flock's exit code when the lock stays taken (-E): another run's command still runs. */
const LOCK_TAKEN = 75;

/**
 * Runs a command that must never run twice at once on the machine (nixos-install, the disko
 * script): a command of an earlier, interrupted or timed-out run may still be going on there. It
 * waits for that one within the same bound, and fails saying so if it does not end.
 */
export async function runOnce(ctx: PhaseContext, command: Command, o: { what: string; timeoutS: number; phase?: string }): Promise<void> {
    const phase = o.phase ?? "install";
    const lock = `/run/pulumi-nixos/${o.what.replace(/[^a-z0-9-]/gi, "-")}.lock`;
    const r = await ctx.target.run(sh`mkdir -p /run/pulumi-nixos && flock -w ${o.timeoutS} -E ${LOCK_TAKEN} ${lock} ${command}`, {
        phase,
        what: `${o.what} failed`,
        timeoutMs: o.timeoutS * 1000 + 5000,
        allowFailure: true,
    });
    if (r.code === LOCK_TAKEN) {
        throw new NixosDeployError({ host: ctx.target.name, phase, what: `${o.what} of an earlier run is still running on the machine (waited ${o.timeoutS} s)`, hint: "let it finish (or end it on the machine), then run pulumi up again" });
    }
    if (r.code !== 0) throw new NixosDeployError({ host: ctx.target.name, phase, what: `${o.what} failed (exit ${r.code ?? r.signal})`, command: command.text, exitCode: r.code, signal: r.signal, stderr: r.stderr || r.stdout });
}
