/**
 * NixosRebuild's dynamic-provider hooks. check() evaluates the new toplevel and, when the old one
 * is known, computes the package changes as an input, so `pulumi preview --diff` shows them.
 * create/update build, copy, and activate with magic rollback; read() reports drift.
 */
import { randomUUID } from "node:crypto";
import { NixosDeployError } from "../errors";
import { realise } from "../nix/build";
import { diffPackageSets, formatBytes, localClosure } from "../nix/diff";
import { limitBuild } from "../nix/limit";
import { deliver } from "../nix/deliver";
import { runLocal } from "../nix/local";
import { activate, ActivateOptions, pruneGenerations, reactivate } from "../phases/activate";
import { rebootInto } from "../phases/reboot";
import { phase, PhaseContext } from "../phases/context";
import { REBUILD_COMPUTED, REBUILD_OUTPUTS, rebuildSchema, RebuildInputs } from "../schema/rebuild";
import { Raw, readState, RebuildEvaluated, RebuildOutputs, rebuildEvaluatedSchema, RebuildRecorded, rebuildRecordedSchema } from "../schema/state";
import { fingerprint, parseHostKey } from "../ssh/hostkey";
import { sh } from "../ssh/shell";
import { Target } from "../ssh/target";
import { CheckFailure, defined, logger, mustParse, partialFailure, userInputs, validateAndEvaluate } from "./common";

/** Store paths of a derivation closure, or of the runtime closure (and its size, when asked) when the output is built. */
async function closureForDiff(out: string, drv: string, o: { size: boolean }): Promise<{ paths: string[]; size?: number; runtime: boolean } | undefined> {
    const built = await localClosure(out, undefined, o);
    if (built) return { paths: built.paths, size: o.size ? built.size : undefined, runtime: true };
    if (!drv) return undefined;
    const r = await runLocal("nix-store", ["--query", "--requisites", drv]);
    if (r.code !== 0) return undefined;
    return { paths: r.stdout.trim().split("\n").filter((p) => p.endsWith(".drv")).map((p) => p.slice(0, -4)), runtime: false };
}

/**
 * "hello: 2.12.1 → 2.12.2" lines plus added, removed and the size delta; at most `limit` lines so a
 * first deploy does not flood the preview with the whole package list.
 */
export async function packageChanges(old: { out: string; drv: string } | undefined, next: { out: string; drv: string }, limit = 40): Promise<string[]> {
    if (old?.out === next.out) return [];
    const b = await closureForDiff(next.out, next.drv, { size: true });
    if (!b) return [];
    if (!old) return [`new system: ${b.paths.length} store paths${b.size ? `, ${formatBytes(b.size).slice(1)}` : ""}`];
    // The size delta needs both runtime closures: the old one's size only when the new one is built.
    const a = await closureForDiff(old.out, old.drv, { size: b.runtime });
    if (!a) return [`previous system ${old.out} is not in the local store: package changes unknown`];
    const d = diffPackageSets(a.paths, b.paths);
    const lines = [...d.changed, ...d.added, ...d.removed];
    const shown = lines.slice(0, limit);
    if (lines.length > limit) shown.push(`… and ${lines.length - limit} more`);
    if (a.runtime && b.runtime && a.size !== undefined && b.size !== undefined) shown.push(`closure size: ${formatBytes(b.size - a.size)}`);
    else if (!b.runtime) shown.push("(from derivations: the new system is not built yet)");
    return shown;
}

export async function check(olds: Raw, news: Raw): Promise<{ inputs?: RebuildOutputs; failures?: CheckFailure[] }> {
    const ev = await validateAndEvaluate(rebuildSchema, REBUILD_COMPUTED, news, olds);
    if (ev.failures.length || !ev.inputs) return { failures: ev.failures };
    if (!ev.paths) return { inputs: ev.inputs };
    const before = readState(rebuildEvaluatedSchema, olds, "NixosRebuild");
    const next = { out: ev.paths.toplevel, drv: ev.paths.toplevelDrv };
    const old = before.__drvs.toplevel ?? (before.toplevel ? { out: before.toplevel, drv: "" } : undefined);
    const evaluated: RebuildEvaluated = { toplevel: next.out, __drvs: { toplevel: next }, __evaluation: ev.evaluation, packageChanges: await packageChanges(old, next) };
    return { inputs: defined({ ...ev.inputs, ...evaluated }) };
}

/** Inputs whose change deploys again; triggers re-deploy on every change, as with @pulumi/command. */
const DEPLOYS = ["toplevel", "action", "healthChecks", "magicRollback", "confirmTimeout", "ignoreFailedUnits", "onDelete", "timeouts", "triggers", "keepGenerations", "rebootOnKernelChange"];

const differs = (olds: Raw, news: Raw, k: string) => JSON.stringify(olds[k] ?? null) !== JSON.stringify(news[k] ?? null);
const hostOf = (p: Raw) => (p.connection as { host?: unknown } | undefined)?.host;

export async function diff(id: string, olds: Raw, news: Raw): Promise<{ changes: boolean; replaces?: string[] }> {
    const replaces = hostOf(olds) !== hostOf(news) ? ["connection"] : [];
    // A changed connection (a rotated key, another port) is stored by update() without deploying.
    const changes = DEPLOYS.some((k) => differs(olds, news, k)) || differs(olds, news, "connection");
    return { changes: changes || replaces.length > 0, replaces };
}

function target(v: RebuildInputs, pinned?: string): Target {
    // The key recorded at the first deploy pins every later connection when none is configured.
    return new Target({ ...v.connection, hostKey: v.connection.hostKey ?? pinned });
}

/** What a deploy learnt on reaching the machine, kept even when a later step fails. */
interface Reached {
    hostKey: string;
    hostKeyFingerprint: string;
    initialSystem: string;
    running: string;
}

async function reach(ctx: PhaseContext, v: RebuildInputs, before: RebuildRecorded): Promise<Reached> {
    const t = ctx.target;
    await phase(ctx, "connect", () => t.reconnect("connect", v.timeouts.connect));
    const running = (await t.run(sh`readlink /run/current-system || true`, { phase: "connect" })).stdout.trim();
    return { hostKey: t.hostKey, hostKeyFingerprint: fingerprint(parseHostKey(t.hostKey).blob), initialSystem: before.initialSystem ?? running, running };
}

/** With rebootOnKernelChange, a switch or boot to another kernel reboots into it; returns the boot id. */
async function rebootForKernel(ctx: PhaseContext, v: RebuildInputs, toplevel: string, hostKey: string): Promise<string> {
    const t = ctx.target;
    const bootId = (await t.run(sh`cat /proc/sys/kernel/random/boot_id`, { phase: "activate" })).stdout.trim();
    if (!v.rebootOnKernelChange || (v.action !== "switch" && v.action !== "boot")) return bootId;
    const k = (await t.run(sh`readlink -f /run/booted-system/kernel; readlink -f ${`${toplevel}/kernel`}`, { phase: "reboot", allowFailure: true })).stdout.trim().split("\n");
    if (k.length !== 2 || k[0] === k[1]) return bootId;
    ctx.log("reboot", `the kernel changed (${k[0]} -> ${k[1]}): rebooting`);
    const boot = await phase(ctx, "reboot", () => rebootInto(ctx, { toplevel, expectedHostKey: hostKey, timeoutS: v.timeouts.activate }));
    return boot.bootId;
}

async function deploy(id: string, props: Raw, pinned: string | undefined, prior: Raw): Promise<RebuildOutputs> {
    const v = mustParse(rebuildSchema, props, REBUILD_COMPUTED);
    const ev = readState(rebuildEvaluatedSchema, props, "NixosRebuild");
    const before = readState(rebuildRecordedSchema, prior, "NixosRebuild");
    if (!ev.toplevel) throw new Error("no evaluated toplevel: check() did not evaluate the source");
    const toplevel = ev.toplevel;
    const log = logger(ev.__nixosName ?? "nixos-rebuild");
    const t = target(v, pinned);
    const ctx: PhaseContext = { target: t, log, env: process.env, cwd: process.cwd() };
    let reached: Reached | undefined;
    try {
        const drv = ev.__drvs.toplevel;
        // buildOn "remote": the target builds it from the derivation in the copy phase.
        if (drv && v.buildOn !== "remote") await limitBuild(() => phase(ctx, "build", () => realise([drv])));
        reached = await reach(ctx, v, before);
        // dry-activate too: it runs the new system's switch-to-configuration, which must be there.
        const delivery = { phase: "copy", buildOn: v.buildOn, substitute: v.substituteOnDestination, cache: v.cache, log: (l: string) => log("copy", l), env: process.env, timeoutS: v.timeouts.activate };
        await phase(ctx, "copy", () => deliver(t, [{ out: toplevel, drv: drv?.drv || undefined }], delivery));
        const r = await phase(ctx, "activate", () => activate(ctx, activateOptions(v, toplevel)));
        if (v.action === "dry-activate") log("activate", r.output.trim().split("\n").join(" | "));
        const bootId = await rebootForKernel(ctx, v, toplevel, reached.hostKey);
        if (v.keepGenerations && v.action === "switch") await pruneGenerations(ctx, v.keepGenerations);
        const recorded: RebuildRecorded = {
            hostKey: reached.hostKey,
            hostKeyFingerprint: reached.hostKeyFingerprint,
            currentSystem: r.currentSystem,
            previousToplevel: r.previousSystem,
            // The generation that was live before this resource first deployed, for onDelete: "rollback".
            initialSystem: before.initialSystem ?? r.previousSystem,
            generation: r.generation,
            bootId,
            lastAction: v.action,
            activationOutput: v.action === "dry-activate" ? r.output : undefined,
            activatedAt: new Date().toISOString(),
            // What this deploy changed, kept after the preview-time packageChanges input moves on.
            changes: ev.packageChanges ?? [],
        };
        return defined({ ...props, ...recorded });
    } catch (err) {
        throw failedDeploy(err, id, props, prior, reached);
    } finally {
        t.close();
    }
}

function activateOptions(v: RebuildInputs, toplevel: string): ActivateOptions {
    return { toplevel, action: v.action, magicRollback: v.magicRollback, confirmTimeoutS: v.confirmTimeout, healthChecks: v.healthChecks, ignoreFailedUnits: v.ignoreFailedUnits, timeoutS: v.timeouts.activate };
}

/**
 * A deploy that failed after reaching the machine keeps what was learnt there (its host key, and
 * the system that ran before the first deploy, for onDelete "rollback"): the engine records it as
 * the resource's state, and the next `pulumi up` deploys again. Before that, the error is plain.
 */
function failedDeploy(err: unknown, id: string, props: Raw, prior: Raw, reached?: Reached): unknown {
    if (!reached) return err;
    const { running, ...learnt } = reached;
    const kept = Object.keys(prior).length ? prior : { ...props, toplevel: running, currentSystem: running, packageChanges: undefined };
    return partialFailure(err, id, defined({ ...kept, ...learnt }));
}

export async function create(inputs: Raw): Promise<{ id: string; outs: RebuildOutputs }> {
    const id = randomUUID();
    return { id, outs: await deploy(id, inputs, undefined, {}) };
}

export async function update(id: string, olds: Raw, news: Raw): Promise<{ outs: RebuildOutputs }> {
    const before = readState(rebuildRecordedSchema.merge(rebuildEvaluatedSchema), olds, "NixosRebuild");
    if (!DEPLOYS.some((k) => differs(olds, news, k))) {
        // Only connection details changed: stored for next time, nothing runs on the machine.
        const packageChanges = readState(rebuildEvaluatedSchema, news, "NixosRebuild").packageChanges ?? before.packageChanges;
        return { outs: defined({ ...olds, connection: news.connection, packageChanges }) };
    }
    return { outs: await deploy(id, news, before.hostKey, olds) };
}

/** `pulumi refresh`: the live /run/current-system becomes the state's toplevel, so drift shows. */
export async function read(id: string, props: Raw): Promise<{ id: string; props: RebuildOutputs; inputs?: RebuildOutputs }> {
    const v = mustParse(rebuildSchema, props, REBUILD_OUTPUTS);
    const st = readState(rebuildRecordedSchema.merge(rebuildEvaluatedSchema), props, "NixosRebuild");
    const t = target(v, st.hostKey);
    try {
        await t.reconnect("refresh", v.timeouts.connect);
        const live = (await t.run(sh`readlink /run/current-system`, { phase: "refresh", what: "reading /run/current-system" })).stdout.trim();
        const activates = st.lastAction === "switch" || st.lastAction === "test";
        const expected = activates ? st.toplevel : st.currentSystem;
        const out: RebuildOutputs = { ...props, currentSystem: live };
        if (live === expected || !activates) return { id, props: out };
        logger(st.__nixosName ?? "nixos-rebuild")("refresh", `drift: ${live} is running, not ${expected}`);
        out.toplevel = live;
        return { id, props: out, inputs: driftInputs(out, live) };
    } finally {
        t.close();
    }
}

/**
 * The inputs after a refresh that found drift: the running system as `toplevel`. The engine shows
 * `preview --diff` from inputs, so the next preview shows the running system against the wanted
 * one, and its package changes.
 */
function driftInputs(out: Raw, live: string): Raw {
    return { ...userInputs(out, REBUILD_OUTPUTS), __nixosName: out.__nixosName, toplevel: live, __drvs: { toplevel: { out: live, drv: "" } } };
}

export async function del(id: string, props: Raw): Promise<void> {
    const st = readState(rebuildRecordedSchema.merge(rebuildEvaluatedSchema), props, "NixosRebuild");
    const log = logger(st.__nixosName ?? "nixos-rebuild");
    if (props.onDelete !== "rollback") {
        log("delete", "removed from the stack; the machine keeps its current system");
        return;
    }
    if (!st.initialSystem) {
        throw new NixosDeployError({ host: String(hostOf(props) ?? "?"), phase: "rollback", what: "no system was recorded before the first deploy, so there is nothing to roll back to" });
    }
    const v = mustParse(rebuildSchema, props, REBUILD_OUTPUTS);
    const t = target(v, st.hostKey);
    try {
        await t.reconnect("rollback", v.timeouts.connect);
        await reactivate({ target: t, log, env: process.env, cwd: process.cwd() }, st.initialSystem);
        log("rollback", `re-activated ${st.initialSystem}`);
    } finally {
        t.close();
    }
}
