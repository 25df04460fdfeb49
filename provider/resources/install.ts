/**
 * NixosInstall's dynamic-provider hooks. check() validates and evaluates (no host is touched);
 * diff() decides replace vs. refuse; create() runs the phases and resumes through update() after a
 * failure; delete() leaves the machine as it is.
 */
import { randomUUID } from "node:crypto";
import { NixosDeployError } from "../errors";
import { mustBeLocal, realise } from "../nix/build";
import { limitBuild } from "../nix/limit";
import type { PhaseContext } from "../phases/context";
import { phase } from "../phases/context";
import { disko } from "../phases/disko";
import { failOnProblems, gatherFacts, kexecProblems, keyValues, Facts } from "../phases/facts";
import { install } from "../phases/install";
import { InstallerAccess, installerAccess, kexec } from "../phases/kexec";
import { rebootInto, releaseDisks } from "../phases/reboot";
import { fingerprint, parseHostKey } from "../ssh/hostkey";
import { sh } from "../ssh/shell";
import { Target } from "../ssh/target";
import { INSTALL_COMPUTED, INSTALL_PHASES, InstallInputs, installSchema } from "../schema/install";
import { defined, logger, mustParse, partialFailure, validateAndEvaluate } from "./common";

type Props = Record<string, any>;

export async function check(olds: Props, news: Props): Promise<{ inputs?: Props; failures?: { property: string; reason: string }[] }> {
    const ev = await validateAndEvaluate(installSchema, INSTALL_COMPUTED, news);
    if (ev.failures.length || !ev.inputs) return { failures: ev.failures };
    const inputs: Props = ev.inputs;
    if (ev.paths) {
        inputs.toplevel = ev.paths.toplevel;
        if (ev.paths.diskoScript) inputs.diskoScript = ev.paths.diskoScript;
        // Derivations to build in create; hidden from the diff display by the "__" prefix.
        inputs.__drvs = Object.fromEntries(
            (["toplevel", "diskoScript", "formatScript", "mountScript"] as const)
                .filter((k) => ev.paths![k])
                .map((k) => [k, { out: ev.paths![k]!, drv: ev.paths![`${k}Drv` as const] ?? "" }]),
        );
    }
    return { inputs };
}

export async function diff(id: string, olds: Props, news: Props): Promise<{ changes: boolean; replaces?: string[]; deleteBeforeReplace?: boolean }> {
    const replaces: string[] = [];
    if ((olds.instanceId ?? null) !== (news.instanceId ?? null)) replaces.push("instanceId");
    if (olds.connection?.host !== news.connection?.host) replaces.push("connection");
    const installed = (olds.phasesCompleted ?? []).includes("install");
    if (installed && news.diskoScript && olds.diskoScript && news.diskoScript !== olds.diskoScript) {
        if (!news.allowReinstall) {
            const disks = (olds.disks ?? []).map((d: string) => `/dev/${d}`).join(", ") || "its disks";
            throw new NixosDeployError({
                host: describe(news),
                phase: "diff",
                what: `the disk layout changed (disko script ${olds.diskoScript} -> ${news.diskoScript}) on a machine that is already installed`,
                hint: `reinstalling wipes ${disks}; set allowReinstall: true to reinstall, or keep the old layout`,
            });
        }
        replaces.push("diskoScript");
    }
    // Connection details (keys, port, proxy) are stored without reinstalling; toplevel changes are
    // NixosRebuild's job and produce no diff here.
    // (hardwareConfig is compared nowhere: as an output it holds the captured text, not the mode.)
    const stored = ["connection", "extraFiles", "timeouts", "allowReinstall", "phases"];
    const changed = stored.some((k) => JSON.stringify(olds[k] ?? null) !== JSON.stringify(news[k] ?? null));
    const incomplete = !installed || !(olds.phasesCompleted ?? []).includes("reboot");
    return { changes: replaces.length > 0 || changed || (incomplete && phasesOf(news).length > 0), replaces, deleteBeforeReplace: replaces.length > 0 };
}

/** The phases asked for, with the schema's own default (check() hands back inputs as given). */
function phasesOf(p: Props): string[] {
    return p.phases ?? [...INSTALL_PHASES];
}

function describe(p: Props): string {
    const c = p.connection ?? {};
    return `${c.user ?? "root"}@${c.host}${c.port && c.port !== 22 ? ":" + c.port : ""}`;
}

/**
 * Resuming after a kexec: the installer may still run, reached as root on the post-kexec port with
 * the deployer's key, presenting the key recorded when it came up or, when no state was recorded
 * (the run was killed), the old host key that nixos-images' image carries. Tried briefly, and kept
 * only when it is an installer; otherwise the configured connection is used.
 */
async function reachInstaller(target: Target, v: InstallInputs, carried: Props, access: InstallerAccess): Promise<boolean> {
    const recorded = typeof carried.installerHostKey === "string" && carried.installerHostKey !== "";
    const keys = [recorded ? carried.installerHostKey : undefined, v.connection.hostKey].filter((k): k is string => typeof k === "string" && k !== "");
    if (keys.length === 0) return false;
    const configured = target.options;
    try {
        await target.reconnect("facts", recorded ? 10 : 1, { user: "root", port: v.postKexecSshPort, privateKey: access.privateKey, privateKeyPassword: access.privateKeyPassword, password: undefined, agentSocketPath: undefined, hostKey: keys[0], alsoAccept: keys.slice(1) });
        const os = keyValues((await target.run(sh`. /etc/os-release; echo "variant=\${VARIANT_ID:-}"`, { phase: "facts" })).stdout);
        if (os.get("variant") === "installer") return true;
    } catch {
        // Not reachable that way: the old system, or nothing yet.
    }
    target.close();
    target.options = configured;
    return false;
}

/**
 * What the facts show cannot work, refused before the kexec: an installed, running NixOS that the
 * disko phase would wipe, and a reboot with nothing installed to reboot into.
 */
function refuseBeforeChanges(ctx: PhaseContext, f: Facts, v: InstallInputs, want: (p: string) => boolean, done: string[]): void {
    const fail = (what: string, hint: string) => {
        throw new NixosDeployError({ host: ctx.target.name, phase: "facts", what, hint });
    };
    if (f.isNixos && !f.isInstaller && f.currentSystem && want("disko") && v.diskoMode === "disko" && !v.allowReinstall) {
        fail(`the machine already runs an installed NixOS (${f.currentSystem}); the disko phase would wipe it`, "use NixosRebuild to change an installed machine; set allowReinstall: true to reinstall it");
    }
    if (want("reboot") && !want("install") && !done.includes("install")) {
        fail("the phases ask for a reboot, but nothing was installed to reboot into", 'add "install" (and what it needs) to phases');
    }
}

/** Runs the phases not completed yet; throws an init error carrying what was done. */
async function runPhases(id: string, props: Props, done: string[], carried: Props = {}): Promise<Props> {
    const v: InstallInputs = mustParse(installSchema, props, INSTALL_COMPUTED);
    const name = props.__nixosName ?? "nixos-install";
    const log = logger(name);
    const target = new Target({ ...v.connection });
    const ctx: PhaseContext = { target, log, env: process.env, cwd: process.cwd() };
    const outs: Props = { ...props, ...carried, phasesCompleted: [...done] };
    const drvs = (props.__drvs ?? {}) as Record<string, { out: string; drv: string }>;
    try {
        // The key that reaches the installer as root; one made here is kept (secret) for a resume.
        const access = installerAccess(v.connection, carried.installerAccessKey);
        // Only the toplevel and the disko script of the chosen mode are needed.
        const script = v.diskoMode === "disko" ? "diskoScript" : `${v.diskoMode}Script`;
        // buildOn "remote": the target builds from the derivations in the disko and install phases.
        const needed = [drvs.toplevel, drvs[script], drvs.mountScript].filter(Boolean);
        if (v.buildOn !== "remote") await limitBuild(() => phase(ctx, "build", () => realise(needed, process.env)));
        await mustBeLocal(needed.filter((d) => !d.drv).map((d) => d.out));
        const facts: Facts = await phase(ctx, "facts", async () => {
            // A resumed install may find the kexec'd installer, or the installed system, answering.
            const alsoAccept = [carried.installerHostKey, carried.hostKey].filter((k): k is string => typeof k === "string" && k !== "");
            if (!(await reachInstaller(target, v, carried, access))) await target.reconnect("facts", v.timeouts.connect, { alsoAccept });
            // Whichever key answered (or was trusted on first use) is pinned for the rest of this run.
            target.options = { ...target.options, hostKey: target.hostKey, alsoAccept: [] };
            const f = await gatherFacts(ctx);
            log("facts", `${f.distro}${f.variant ? " " + f.variant : ""} on ${f.arch}, ${f.ramMiB} MiB RAM, disks: ${f.disks.map((d) => d.name).join(", ") || "none"}`);
            return f;
        });
        outs.disks = facts.disks.map((d) => d.name);
        let current = facts;
        const want = (p: string) => v.phases.includes(p as never) && !outs.phasesCompleted.includes(p);
        refuseBeforeChanges(ctx, current, v, want, outs.phasesCompleted);

        if (!current.isInstaller && (want("disko") || want("install")) && !v.phases.includes("kexec")) {
            // disko and nixos-install belong in an installer: on the running system they would
            // format the disks it runs from.
            throw new NixosDeployError({
                host: target.name,
                phase: "facts",
                what: `the machine runs ${current.distro || "an unknown system"}, not a NixOS installer, and the phases do not include kexec`,
                hint: 'add "kexec" to phases, or boot the machine into a NixOS installer first',
            });
        }
        if (v.phases.includes("kexec") && !current.isInstaller && (want("kexec") || want("disko") || want("install"))) {
            failOnProblems(ctx, kexecProblems(current, { customImage: v.kexecTarball !== undefined }));
            if (access.generated) outs.installerAccessKey = access.privateKey;
            current = await phase(ctx, "kexec", () => kexec(ctx, current, { tarball: v.kexecTarball, postKexecSshPort: v.postKexecSshPort, timeoutS: v.timeouts.kexec, keepHostKeys: v.copyHostKeys || v.hostKeyPair === "keep", access }));
            // Recorded so that a resumed run accepts the installer this run trusted.
            outs.installerHostKey = target.hostKey;
        }
        if (v.phases.includes("kexec") && !outs.phasesCompleted.includes("kexec")) outs.phasesCompleted.push("kexec");

        if (want("disko")) {
            const chosen = v.diskoMode === "disko" ? drvs.diskoScript ?? (props.diskoScript ? { out: props.diskoScript, drv: "" } : undefined) : drvs[`${v.diskoMode}Script`];
            await phase(ctx, "disko", () =>
                disko(ctx, {
                    mode: v.diskoMode,
                    script: chosen?.out,
                    scriptDrv: chosen?.drv || undefined,
                    buildOn: v.buildOn,
                    diskEncryptionKeys: v.diskEncryptionKeys,
                    allowReinstall: v.allowReinstall,
                    substitute: v.substituteOnDestination,
                }).then(() =>
                    // disko's formatScript only formats: mounting is the mountScript's job.
                    v.diskoMode === "format" ? disko(ctx, { mode: "mount", script: drvs.mountScript?.out, scriptDrv: drvs.mountScript?.drv || undefined, buildOn: v.buildOn, diskEncryptionKeys: {}, allowReinstall: false, substitute: v.substituteOnDestination }) : undefined,
                ),
            );
            outs.phasesCompleted.push("disko");
        } else if (v.phases.includes("disko") && want("install")) {
            // Resuming after disko: an installer that rebooted has nothing mounted any more.
            const mounted = await target.run(sh`mountpoint -q /mnt`, { phase: "disko", allowFailure: true });
            if (mounted.code !== 0 && drvs.mountScript) {
                await phase(ctx, "disko", () => disko(ctx, { mode: "mount", script: drvs.mountScript.out, scriptDrv: drvs.mountScript.drv || undefined, buildOn: v.buildOn, diskEncryptionKeys: v.diskEncryptionKeys, allowReinstall: false, substitute: v.substituteOnDestination }));
            }
        }

        if (want("install")) {
            const r = await phase(ctx, "install", () =>
                install(ctx, {
                    toplevel: props.toplevel,
                    toplevelDrv: drvs.toplevel?.drv || undefined,
                    buildOn: v.buildOn,
                    substitute: v.substituteOnDestination,
                    extraFiles: v.extraFiles,
                    copyHostKeys: v.copyHostKeys,
                    hostKeyPair: v.hostKeyPair,
                    hardwareConfig: v.hardwareConfig,
                    timeoutS: v.timeouts.install,
                }),
            );
            outs.hostKey = r.hostKey;
            outs.hostKeyFingerprint = fingerprint(parseHostKey(r.hostKey).blob);
            outs.hardwareConfig = r.hardwareConfig;
            outs.phasesCompleted.push("install");
        }

        if (want("reboot")) {
            const { host, proxy, ...login } = v.connection;
            const boot = await phase(ctx, "reboot", async () => {
                if (current.isInstaller) await releaseDisks(ctx);
                return rebootInto(ctx, { toplevel: props.toplevel, expectedHostKey: outs.hostKey, login, timeoutS: v.timeouts.reboot });
            });
            outs.bootId = boot.bootId;
            outs.installedAt = new Date().toISOString();
            outs.phasesCompleted.push("reboot");
            delete outs.installerHostKey;
            delete outs.installerAccessKey;
        }
        return outs;
    } catch (err) {
        throw partialFailure(err, id, defined(outs));
    } finally {
        target.close();
    }
}

export async function create(inputs: Props): Promise<{ id: string; outs: Props }> {
    const id = randomUUID();
    return { id, outs: defined(await runPhases(id, inputs, [])) };
}

export async function update(id: string, olds: Props, news: Props): Promise<{ outs: Props }> {
    const done: string[] = olds.phasesCompleted ?? [];
    const carried: Props = {};
    for (const k of ["hostKey", "hostKeyFingerprint", "hardwareConfig", "bootId", "installedAt", "disks", "installerHostKey", "installerAccessKey"]) if (olds[k] !== undefined) carried[k] = olds[k];
    if (done.includes("reboot") || phasesOf(news).every((p) => done.includes(p))) {
        // Installed: only stored details (such as connection) change. The toplevel stays what was installed.
        return { outs: defined({ ...news, ...carried, toplevel: olds.toplevel, diskoScript: olds.diskoScript ?? news.diskoScript, phasesCompleted: done }) };
    }
    const outs = await runPhases(id, news, done, carried);
    return { outs: defined(outs) };
}

export async function read(id: string, props: Props): Promise<{ id: string; props: Props }> {
    return { id, props };
}

export async function del(id: string, props: Props): Promise<void> {
    logger(props.__nixosName ?? "nixos-install")("delete", `removed from the stack; ${describe(props)} keeps running the installed system`);
}
