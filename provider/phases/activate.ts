/**
 * activate: sets the system profile (switch, boot), runs switch-to-configuration detached from the
 * SSH session (systemd-run, or setsid where there is none), and with magic rollback waits for a
 * confirmation tied to this deploy's nonce. The confirmation only comes over a new SSH connection
 * that also passed the health checks; without it, the target re-activates the previous system.
 */
import { randomBytes } from "node:crypto";
import { NixosDeployError } from "../errors";
import { sh } from "../ssh/shell";
import { Target } from "../ssh/target";
import type { PhaseContext } from "./context";
import { keyValues } from "./facts";
import { writeFile } from "./files";
import { Deadline, poll } from "../wait";

export type Action = "switch" | "boot" | "test" | "dry-activate";

export interface ActivateOptions {
    toplevel: string;
    action: Action;
    magicRollback: boolean;
    confirmTimeoutS: number;
    healthChecks: { command: string; timeout?: number }[];
    ignoreFailedUnits: boolean;
    timeoutS: number;
}

export interface ActivateResult {
    /** The system profile's generation number after the action (0 when there is none). */
    generation: number;
    /** /run/current-system after the action. */
    currentSystem: string;
    /** /run/current-system before it. */
    previousSystem: string;
    /** What switch-to-configuration printed (dry-activate: what would change). */
    output: string;
}

const DIR = "/run/pulumi-nixos";

/**
 * The unit waits this much longer for a confirmation than the deployer tries to give one, so a
 * confirmation can never arrive after the unit began to roll back (then sshd is back, and a late
 * login would "confirm" the old system). A deployer that gives up says so (abort) at once.
 */
const CONFIRM_GRACE_S = 10;

/**
 * What nixos-rebuild passes into its switch-to-configuration unit: the locale archive and
 * NIXOS_NO_CHECK from the session when set, and NIXOS_INSTALL_BOOTLOADER (off for a rebuild).
 */
export const UNIT_ENV = sh`-E LOCALE_ARCHIVE -E NIXOS_INSTALL_BOOTLOADER=0 -E NIXOS_NO_CHECK`;

/** Absolute paths of the tools the unit script runs, resolved in the login session. */
export interface UnitTools {
    sh: string;
    sleep: string;
    nixEnv: string;
}

/**
 * Resolves the unit's tools to absolute paths while the login session's PATH is at hand: on NixOS
 * a transient unit's PATH holds only systemd's own bin/, so `sleep` and `nix-env` would not be
 * found there. The store folder of each tool is used, so a switch that moves
 * /run/current-system does not move the tools out from under a running rollback.
 */
export const RESOLVE_TOOLS = sh`for c in sh sleep nix-env; do p=$(command -v "$c") || { echo "missing=$c"; continue; }; echo "$c=$(dirname "$(readlink -f "$p")")/$c"; done`;

export function parseTools(out: string): UnitTools | { missing: string } {
    const kv = new Map(out.split("\n").filter((l) => l.includes("=")).map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1).trim()]));
    const missing = kv.get("missing");
    if (missing) return { missing };
    return { sh: kv.get("sh") ?? "", sleep: kv.get("sleep") ?? "", nixEnv: kv.get("nix-env") ?? "" };
}

/**
 * The script the detached unit runs. It records the exit code, then (for switch and test with
 * magic rollback) waits for <nonce>.confirm or <nonce>.abort; on abort or timeout it re-activates
 * the previous system and restores the profile. It calls every tool by absolute path and sets its
 * own PATH: it never depends on the environment the unit starts with.
 */
export function unitScript(o: Pick<ActivateOptions, "toplevel" | "action" | "magicRollback" | "confirmTimeoutS">, nonce: string, prev: Previous, tools: UnitTools): string {
    const waits = o.magicRollback && (o.action === "switch" || o.action === "test");
    // Back to the generation before this deploy, and the one it made deleted (as deploy-rs does;
    // a generation that existed before, re-activated, is kept), so the generation number is the
    // one recorded before: only when the profile is still this deploy's.
    const profile = "/nix/var/nix/profiles/system";
    const deleteMade = prev.reused ? sh`true` : sh`${tools.nixEnv} -p ${profile} --delete-generations "\${g%-link}"`;
    const restoreProfile =
        o.action === "switch" && prev.profile && prev.generation
            ? sh`[ "$(readlink -f ${profile})" = ${o.toplevel} ] && g=$(readlink ${profile}) && g=\${g#system-} && ${tools.nixEnv} -p ${profile} --switch-generation ${prev.generation} && ${deleteMade}`
            : sh`true`;
    const reactivate = prev.system ? sh`${prev.system}/bin/switch-to-configuration ${o.action === "test" ? "test" : "switch"} >> $d/$n.rollback.log 2>&1` : sh`true`;
    const dirs = [...new Set([tools.sleep, tools.nixEnv].map((p) => p.slice(0, p.lastIndexOf("/"))))];
    const path = [...dirs, "/run/current-system/sw/bin", "/usr/bin", "/bin"].join(":");
    return `#!${tools.sh}\n` + sh`PATH=${path}; export PATH
d=${DIR}; n=${nonce}
trap '' HUP PIPE
${o.toplevel}/bin/switch-to-configuration ${o.action} > $d/$n.log 2>&1
echo $? > $d/$n.rc
${waits ? sh`` : sh`exit 0`}
i=0
while [ $i -lt $((${o.confirmTimeoutS + CONFIRM_GRACE_S} * 10)) ]; do
  [ -e $d/$n.confirm ] && { echo confirmed > $d/$n.result; exit 0; }
  [ -e $d/$n.abort ] && break
  ${tools.sleep} 0.1; i=$((i+1))
done
reason=timeout; [ -e $d/$n.abort ] && reason=aborted
${restoreProfile} >> $d/$n.rollback.log 2>&1 || reason="$reason; restoring the profile failed"
${reactivate}
echo "rolled-back $reason" > $d/$n.result
`.text;
}

/** The content of a file the unit writes, once it is there (undefined when the bound passes). */
async function pollFile(ctx: PhaseContext, file: string, timeoutS: number, phase: string): Promise<string | undefined> {
    const deadline = new Deadline(timeoutS);
    return poll(deadline, { intervalMs: 50, factor: 2, maxIntervalMs: 500 }, async () => {
        try {
            const r = await ctx.target.run(sh`cat ${file} 2>/dev/null`, { phase, allowFailure: true });
            return r.code === 0 && r.stdout.trim() ? r.stdout.trim() : undefined;
        } catch {
            // The connection may drop while sshd restarts.
            await ctx.target.reconnect(phase, deadline.leftS).catch(() => undefined);
            return undefined;
        }
    });
}

/** A brand-new connection (not multiplexed, sudo like every other command), or why there is none. */
async function newConnection(t: Target, timeoutS: number, phase: string): Promise<{ confirmer?: Target; why: string }> {
    const deadline = new Deadline(timeoutS);
    let why = "";
    const confirmer = await poll(deadline, { intervalMs: 100, factor: 2, maxIntervalMs: 1000 }, async () => {
        const c = new Target({ ...t.options, dialErrorLimit: 1, perDialTimeout: Math.min(10, deadline.leftS) });
        try {
            await c.connect(phase);
            return c;
        } catch (e) {
            why = (e as Error).message.split("\n")[0];
            return undefined;
        }
    });
    return { confirmer, why };
}

/** What ran before a deploy: the system, the profile's target and generation, and whether the deploy re-activates a generation that exists. */
export interface Previous {
    system: string;
    profile: string;
    generation?: number;
    reused?: boolean;
}

/**
 * The running system, the profile, and the newest generation that already holds the toplevel (as
 * after going back to an earlier configuration: `nixos-rebuild switch --rollback`).
 */
const STATE = (toplevel: string) => sh`echo "current_system=$(readlink /run/current-system)"; echo "profile=$(readlink /nix/var/nix/profiles/system)"; echo "profile_target=$(readlink -f /nix/var/nix/profiles/system)"; echo "systemd_run=$(command -v systemd-run)"
for l in /nix/var/nix/profiles/system-*-link; do [ "$(readlink -f "$l")" = ${toplevel} ] && echo "holds=\${l##*/}"; done; true`;

const generationOf = (link: string | undefined) => Number(/system-(\d+)-link/.exec(link ?? "")?.[1] ?? 0) || undefined;

export async function activate(ctx: PhaseContext, o: ActivateOptions): Promise<ActivateResult> {
    const t = ctx.target;
    const phase = "activate";
    const out = (await t.run(STATE(o.toplevel), { phase })).stdout;
    const state = keyValues(out);
    const holds = out.split("\n").filter((l) => l.startsWith("holds=")).map((l) => generationOf(l.slice(6)) ?? 0).sort((a, b) => b - a)[0];
    // The profile link names a generation (system-N-link); the store path it resolves to is kept.
    const prev: Previous = { system: state.get("current_system") ?? "", profile: state.get("profile") ? (state.get("profile_target") ?? "") : "", generation: generationOf(state.get("profile")), reused: holds !== undefined };
    await t.run(sh`test -x ${o.toplevel}/bin/switch-to-configuration && test -f ${o.toplevel}/nixos-version`, {
        phase,
        what: `${o.toplevel} is not a NixOS system (no bin/switch-to-configuration or nixos-version)`,
    });
    if (o.action === "dry-activate") {
        const r = await t.run(sh`${o.toplevel}/bin/switch-to-configuration dry-activate`, { phase, what: "dry-activate failed" });
        return { currentSystem: prev.system, previousSystem: prev.system, output: r.stdout + r.stderr, generation: await generation(ctx) };
    }
    if ((o.action === "switch" || o.action === "boot") && holds) {
        // Going back: the generation that holds the system becomes current again; nothing new is made.
        if (holds !== prev.generation) ctx.log(phase, `re-activating generation ${holds}, which holds ${o.toplevel}`);
        await t.run(sh`nix-env -p /nix/var/nix/profiles/system --switch-generation ${holds}`, { phase, what: "setting the system profile failed" });
    } else if (o.action === "switch" || o.action === "boot") {
        await t.run(sh`nix-env -p /nix/var/nix/profiles/system --set ${o.toplevel}`, { phase, what: "setting the system profile failed" });
    }
    const nonce = await startUnit(ctx, o, prev, Boolean(state.get("systemd_run")));
    const run = new Activation(ctx, o, nonce, prev.system);
    const rcText = await pollFile(ctx, run.file("rc"), o.timeoutS, phase);
    await run.readLog();
    if (rcText === undefined) return run.fail(`switch-to-configuration ${o.action} did not finish within ${o.timeoutS} s`);
    const rc = Number(rcText);
    if (rc === 4 && !o.ignoreFailedUnits) {
        const units = [...run.log.matchAll(/the following units failed: (.+)/g)].map((m) => m[1].trim()).join(", ");
        return run.fail(`switch-to-configuration ${o.action} exited 4: units failed: ${units || "see the log"}`, "set ignoreFailedUnits: true to accept failed units");
    }
    if (rc !== 0 && rc !== 4) return run.fail(`switch-to-configuration ${o.action} exited ${rc}`);
    if (run.waits) await run.confirm();
    const now = (await t.run(sh`readlink /run/current-system || true`, { phase })).stdout.trim();
    await t.run(sh`rm -f ${DIR}/${nonce}.*`, { phase, allowFailure: true });
    return { currentSystem: now, previousSystem: prev.system, output: run.log, generation: await generation(ctx) };
}

/**
 * Writes the unit script and starts it detached: systemd-run keeps the activation alive if this
 * SSH session dies (setsid is the fallback), and the unit gets only what -E passes, as
 * nixos-rebuild passes it. Returns the deploy's nonce.
 */
async function startUnit(ctx: PhaseContext, o: ActivateOptions, prev: Previous, hasSystemdRun: boolean): Promise<string> {
    const t = ctx.target;
    const phase = "activate";
    const nonce = randomBytes(12).toString("hex");
    const tools = parseTools((await t.run(RESOLVE_TOOLS, { phase })).stdout);
    if ("missing" in tools) {
        throw new NixosDeployError({ host: t.name, phase, what: `no ${tools.missing} on the target's PATH, but the activation needs it`, hint: "the target must be a NixOS system (or have Nix and coreutils installed)" });
    }
    await t.run(sh`mkdir -p ${DIR} && chmod 700 ${DIR}`, { phase });
    const script = `${DIR}/${nonce}.sh`;
    await writeFile(t, phase, script, unitScript(o, nonce, prev, tools), { mode: "0700" });
    ctx.log(phase, `running switch-to-configuration ${o.action} detached (${hasSystemdRun ? "systemd-run" : "setsid"}), deploy ${nonce.slice(0, 8)}`);
    const start = hasSystemdRun
        ? sh`systemd-run --unit=${`pulumi-nixos-${nonce}`} --collect --no-ask-password --quiet --service-type=exec ${UNIT_ENV} ${tools.sh} ${script}`
        : sh`setsid -f ${tools.sh} ${script} </dev/null >/dev/null 2>&1`;
    await t.run(start, { phase, what: "starting the activation failed" });
    return nonce;
}

/** One started activation: its files on the target, its failure (with rollback) and its confirmation. */
class Activation {
    log = "";
    readonly waits: boolean;

    constructor(private readonly ctx: PhaseContext, private readonly o: ActivateOptions, private readonly nonce: string, private readonly previous: string) {
        this.waits = o.magicRollback && (o.action === "switch" || o.action === "test");
    }

    file(ext: string): string {
        return `${DIR}/${this.nonce}.${ext}`;
    }

    async readLog(): Promise<void> {
        this.log = (await this.ctx.target.run(sh`cat ${this.file("log")} 2>/dev/null`, { phase: "activate", allowFailure: true }).catch(() => ({ stdout: "" }))).stdout;
    }

    /** Aborts the confirmation wait (the unit rolls back at once), waits for it, and throws. */
    async fail(what: string, hint?: string): Promise<never> {
        const t = this.ctx.target;
        let suffix = "";
        if (this.waits) {
            await t.run(sh`touch ${this.file("abort")}`, { phase: "activate", allowFailure: true }).catch(() => undefined);
            const result = await pollFile(this.ctx, this.file("result"), this.o.confirmTimeoutS + CONFIRM_GRACE_S + 60, "activate");
            suffix = result?.startsWith("rolled-back") ? `; rolled back to ${this.previous}` : "; the rollback did not report back";
        }
        throw new NixosDeployError({ host: t.name, phase: "activate", what: what + suffix, stderr: this.log, hint });
    }

    /** Confirms over a brand-new connection, after the health checks: proof that the new system still lets us in. */
    async confirm(): Promise<void> {
        const phase = "activate";
        const { confirmer, why } = await newConnection(this.ctx.target, this.o.confirmTimeoutS, phase);
        // No new connection: roll back now (over the session still open), not when the unit's timer ends.
        if (!confirmer) return this.fail(`the new system did not accept a new SSH connection within ${this.o.confirmTimeoutS} s (${why})`);
        const failed = await this.checkAndConfirm(confirmer).finally(() => confirmer.close());
        if (failed) return this.fail(failed);
        const result = await pollFile(this.ctx, this.file("result"), 30, phase);
        if (result !== "confirmed") return this.fail(`the confirmation was not acknowledged (${result ?? "no answer"})`);
    }

    /** Runs the health checks, then writes the confirmation; returns what failed, if anything. */
    private async checkAndConfirm(confirmer: Target): Promise<string | undefined> {
        const run = (command: ReturnType<typeof sh>, timeoutS: number) =>
            confirmer.run(command, { phase: "activate", allowFailure: true, timeoutMs: timeoutS * 1000 }).catch((e: Error) => ({ code: null, stdout: "", stderr: e.message, signal: null }));
        const last = (r: { stdout: string; stderr: string }) => (r.stderr || r.stdout).trim().split("\n").pop() ?? "";
        for (const check of this.o.healthChecks) {
            const r = await run(sh`sh -c ${check.command}`, check.timeout ?? this.o.confirmTimeoutS);
            if (r.code !== 0) return `health check \`${check.command}\` ${r.code === null ? "failed" : `exited ${r.code}`}: ${last(r)}`;
        }
        const c = await run(sh`touch ${this.file("confirm")}`, this.o.confirmTimeoutS);
        return c.code === 0 ? undefined : `the confirmation could not be written: ${last(c)}`;
    }
}

async function generation(ctx: PhaseContext): Promise<number> {
    const r = await ctx.target.run(sh`readlink /nix/var/nix/profiles/system`, { phase: "activate", allowFailure: true });
    return Number(/system-(\d+)-link/.exec(r.stdout)?.[1] ?? 0);
}

/**
 * Keeps `keep` system generations: the current one and the newest others. (nix-env's `+N` keeps
 * the newest by number, which after going back to an earlier generation are not the ones to keep.)
 */
export async function pruneGenerations(ctx: PhaseContext, keep: number): Promise<void> {
    const cmd = sh`cur=$(readlink /nix/var/nix/profiles/system); cur=\${cur#system-}; cur=\${cur%-link}
old=$(for l in /nix/var/nix/profiles/system-*-link; do g=\${l##*/system-}; echo "\${g%-link}"; done | grep -vx "$cur" | sort -rn | tail -n +${keep})
[ -z "$old" ] || nix-env -p /nix/var/nix/profiles/system --delete-generations $old`;
    await ctx.target.run(cmd, { phase: "activate", what: "removing old generations failed" });
}

/** Re-activates a system and points the profile at it (onDelete: "rollback"). */
export async function reactivate(ctx: PhaseContext, system: string): Promise<void> {
    await ctx.target.run(sh`nix-env -p /nix/var/nix/profiles/system --set ${system} && ${system}/bin/switch-to-configuration switch`, {
        phase: "rollback",
        what: `re-activating ${system} failed`,
    });
}
