/**
 * NixosInstall's run: the phases in order (build, facts, kexec, disko, install, reboot), one method
 * each. A phase runs when it is asked for and not yet completed; what each one completes and
 * learns is recorded in `outs`, which a failure hands to the engine as the resource's state, so the
 * next `pulumi up` resumes after the last completed phase.
 */
import { NixosDeployError } from "../errors";
import { mustBeLocal, realise } from "../nix/build";
import { limitBuild } from "../nix/limit";
import type { PhaseContext } from "../phases/context";
import { phase } from "../phases/context";
import { disko } from "../phases/disko";
import { failOnProblems, gatherFacts, kexecProblems, keyValues, Facts } from "../phases/facts";
import { NIXOS_DEFAULTS, onDisk, placementProblems, readSystemLayout, refuseHiddenByEtcOverlay, SystemLayout } from "../phases/placement";
import { install, planHostKey } from "../phases/install";
import { newKeySalt } from "../ssh/derived-key";
import { InstallerAccess, installerAccess, installerLogin, kexec } from "../phases/kexec";
import { rebootInto, releaseDisks } from "../phases/reboot";
import { fingerprint, parseHostKey, sameHostKey } from "../ssh/hostkey";
import { sh } from "../ssh/shell";
import { Target } from "../ssh/target";
import { INSTALL_COMPUTED, InstallInputs, installSchema } from "../schema/install";
import { Drv, InstallEvaluated, installEvaluatedSchema, InstallOutputs, InstallPhase, InstallRecorded, installRecordedSchema, Raw, readState } from "../schema/state";
import { defined, logger, mustParse, partialFailure } from "./common";

/**
 * Runs the phases not completed yet (`recorded.phasesCompleted`), carrying what earlier runs
 * recorded; throws an init error carrying what was done.
 */
export async function runPhases(id: string, props: Raw, recorded: Partial<InstallRecorded>): Promise<InstallOutputs> {
    const run = new InstallRun(props, recorded);
    try {
        for (const step of INSTALL_STEPS) await step.run(run);
        return run.outs;
    } catch (err) {
        throw partialFailure(err, id, defined(run.outs));
    } finally {
        run.ctx.target.close();
    }
}

/**
 * The install, step by step: build and facts run every time; each phase runs when `phases` asks
 * for it and no earlier run completed it (the resume is that lookup in `phasesCompleted`). What a
 * step records is kept in the state and carried into the next run; the kexec's keys only until
 * the reboot.
 */
export const INSTALL_STEPS: readonly { name: "build" | "facts" | InstallPhase; records: readonly (keyof InstallRecorded)[]; run(r: InstallRun): Promise<void> }[] = [
    { name: "build", records: ["keySalt"], run: (r) => r.build() },
    { name: "facts", records: ["disks"], run: (r) => r.facts() },
    { name: "kexec", records: ["installerHostKey", "installerAccessKey"], run: (r) => r.kexec() },
    { name: "disko", records: [], run: (r) => r.disko() },
    { name: "install", records: ["hostKey", "hostKeyFingerprint", "hardwareConfig", "installedToplevel"], run: (r) => r.install() },
    { name: "reboot", records: ["bootId", "installedAt"], run: (r) => r.reboot() },
];

/** What a resumed run carries from the last one: everything a step records. */
export const INSTALL_CARRIED = INSTALL_STEPS.flatMap((s) => s.records);

class InstallRun {
    readonly v: InstallInputs;
    readonly ctx: PhaseContext;
    private readonly evaluated: InstallEvaluated;
    /** What this run and earlier ones recorded; the engine stores it with the inputs. */
    private readonly recorded: InstallRecorded;
    /** As the last run left them: the keys a resume trusts. */
    private readonly carried: Partial<InstallRecorded>;
    /** The key that reaches the installer as root; a random one (agent logins) is kept, secret, for a resume. */
    private access!: InstallerAccess;
    /** The installed system's host key, planned before anything runs. */
    private readonly hostKeys: ReturnType<typeof planHostKey>;
    private current!: Facts;
    /** Where the built system mounts what, and where its sshd reads the host key. */
    private system!: SystemLayout;

    constructor(private readonly props: Raw, carried: Partial<InstallRecorded>) {
        this.v = mustParse(installSchema, props, INSTALL_COMPUTED);
        this.evaluated = readState(installEvaluatedSchema, props, "NixosInstall");
        this.carried = carried;
        this.recorded = readState(installRecordedSchema, { ...carried, phasesCompleted: [...(carried.phasesCompleted ?? [])] }, "NixosInstall");
        this.hostKeys = planHostKey(this.v, carried.keySalt ?? newKeySalt());
        if (this.hostKeys.keySalt) this.recorded.keySalt = this.hostKeys.keySalt;
        this.ctx = { target: new Target({ ...this.v.connection }), log: logger(this.evaluated.__nixosName ?? "nixos-install"), env: process.env, cwd: process.cwd() };
    }

    /** The inputs with everything recorded so far: the resource's outputs. */
    get outs(): InstallOutputs {
        return { ...this.props, ...this.recorded };
    }

    private get drvs(): InstallEvaluated["__drvs"] {
        return this.evaluated.__drvs;
    }

    /** The evaluated system; check() always evaluates a known source before create or update. */
    private get toplevel(): string {
        if (!this.evaluated.toplevel) throw new Error("no evaluated toplevel: check() did not evaluate the source");
        return this.evaluated.toplevel;
    }

    /** Asked for, and not completed by an earlier run. */
    private want(p: InstallPhase): boolean {
        return this.v.phases.includes(p) && !this.recorded.phasesCompleted.includes(p);
    }

    private completed(p: InstallPhase): void {
        if (!this.recorded.phasesCompleted.includes(p)) this.recorded.phasesCompleted.push(p);
    }

    /** Only the toplevel and the disko scripts of the chosen mode; buildOn "remote" leaves them to the target. */
    async build(): Promise<void> {
        const script = this.v.diskoMode === "disko" ? "diskoScript" : (`${this.v.diskoMode}Script` as const);
        const needed = [this.drvs.toplevel, this.drvs[script], this.drvs.mountScript].filter((d): d is Drv => d !== undefined);
        if (this.v.buildOn !== "remote") await limitBuild(() => phase(this.ctx, "build", () => realise(needed, process.env)));
        await mustBeLocal(needed.filter((d) => !d.drv).map((d) => d.out));
        // A system built by the target only is not read here: NixOS's defaults are assumed for it.
        this.system = this.v.buildOn === "remote" ? NIXOS_DEFAULTS : readSystemLayout(this.toplevel);
    }

    async facts(): Promise<void> {
        const { target } = this.ctx;
        this.access = installerAccess(this.v.connection, this.carried.installerAccessKey);
        this.current = await phase(this.ctx, "facts", async () => {
            // A resumed install may find the kexec'd installer, or the installed system, answering.
            // …or the system an earlier run installed, presenting the host key planned for it.
            const alsoAccept = [this.carried.installerHostKey, this.carried.hostKey, this.hostKeys.expected].filter((k): k is string => k !== undefined && k !== "");
            if (!(await reachInstaller(target, this.v, this.carried, this.access, this.hostKeys.expected))) await target.reconnect("facts", this.v.timeouts.connect, { alsoAccept });
            // Whichever key answered (or was trusted on first use) is pinned for the rest of this run.
            target.options = { ...target.options, hostKey: target.hostKey, alsoAccept: [] };
            const f = await gatherFacts(this.ctx);
            this.ctx.log("facts", `${f.distro}${f.variant ? " " + f.variant : ""} on ${f.arch}, ${f.ramMiB} MiB RAM, disks: ${f.disks.map((d) => d.name).join(", ") || "none"}`);
            return f;
        });
        this.recorded.disks = this.current.disks.map((d) => d.name);
        if (this.installedEarlier()) return;
        refuseBeforeChanges(this.ctx, this.current, this.v, (p) => this.want(p), this.recorded.phasesCompleted);
        if (this.want("install")) refusePlacement(this.ctx, placementProblems(this.system, { extraFiles: Object.keys(this.v.extraFiles), hostKey: true }));
        if (this.want("install")) refuseHiddenByEtcOverlay(this.ctx.target.name, this.system, { extraFiles: Object.keys(this.v.extraFiles), hostKey: true });
    }

    private installedEarlier(): boolean {
        return adoptInstalled(this.ctx, this.current, { toplevel: this.toplevel, planned: this.hostKeys.expected, phases: this.v.phases }, this.recorded);
    }

    async kexec(): Promise<void> {
        const v = this.v;
        const onInstaller = this.current.isInstaller;
        if (!onInstaller && (this.want("disko") || this.want("install")) && !v.phases.includes("kexec")) {
            // disko and nixos-install belong in an installer: on the running system they would
            // format the disks it runs from.
            throw new NixosDeployError({
                host: this.ctx.target.name,
                phase: "facts",
                what: `the machine runs ${this.current.distro || "an unknown system"}, not a NixOS installer, and the phases do not include kexec`,
                hint: 'add "kexec" to phases, or boot the machine into a NixOS installer first',
            });
        }
        if (v.phases.includes("kexec") && !onInstaller && (this.want("kexec") || this.want("disko") || this.want("install"))) {
            failOnProblems(this.ctx, kexecProblems(this.current, { customImage: v.kexecTarball !== undefined }));
            if (this.access.generated) this.recorded.installerAccessKey = this.access.privateKey;
            const o = { tarball: v.kexecTarball, postKexecSshPort: v.postKexecSshPort, timeoutS: v.timeouts.kexec, keepHostKeys: v.copyHostKeys || v.hostKeyPair === "keep", access: this.access };
            this.current = await phase(this.ctx, "kexec", () => kexec(this.ctx, this.current, o));
            // Recorded so that a resumed run accepts the installer this run trusted.
            this.recorded.installerHostKey = this.ctx.target.hostKey;
        }
        if (v.phases.includes("kexec")) this.completed("kexec");
    }

    private script(key: "diskoScript" | "formatScript" | "mountScript"): Drv | undefined {
        // storePaths give a prebuilt diskoScript and no derivation.
        if (key === "diskoScript" && !this.drvs.diskoScript && this.evaluated.diskoScript) return { out: this.evaluated.diskoScript, drv: "" };
        return this.drvs[key];
    }

    private runDisko(mode: "disko" | "format" | "mount", keys: Record<string, string>, allowReinstall: boolean): Promise<void> {
        const chosen = this.script(mode === "disko" ? "diskoScript" : `${mode}Script`);
        const v = this.v;
        const mount = this.drvs.mountScript;
        const resume = mount ? { toplevel: this.toplevel, mountScript: mount.out, mountScriptDrv: mount.drv || undefined } : undefined;
        return disko(this.ctx, { mode, script: chosen?.out, scriptDrv: chosen?.drv || undefined, buildOn: v.buildOn, diskEncryptionKeys: keys, allowReinstall, substitute: v.substituteOnDestination, cache: v.cache, resume });
    }

    async disko(): Promise<void> {
        const v = this.v;
        if (this.want("disko")) {
            await phase(this.ctx, "disko", async () => {
                await this.runDisko(v.diskoMode, v.diskEncryptionKeys, v.allowReinstall);
                // disko's formatScript only formats: mounting is the mountScript's job.
                if (v.diskoMode === "format") await this.runDisko("mount", {}, false);
            });
            this.completed("disko");
        } else if (v.phases.includes("disko") && this.want("install") && this.drvs.mountScript) {
            // Resuming after disko: an installer that rebooted has nothing mounted any more.
            const mounted = await this.ctx.target.run(sh`mountpoint -q /mnt`, { phase: "disko", allowFailure: true });
            if (mounted.code !== 0) await phase(this.ctx, "disko", () => this.runDisko("mount", v.diskEncryptionKeys, false));
        }
    }

    async install(): Promise<void> {
        if (!this.want("install")) return;
        const v = this.v;
        const r = await phase(this.ctx, "install", () =>
            install(this.ctx, {
                toplevel: this.toplevel,
                toplevelDrv: this.drvs.toplevel?.drv || undefined,
                buildOn: v.buildOn,
                substitute: v.substituteOnDestination,
                cache: v.cache,
                // Written where they live on disk: through the configuration's bind mounts, which do not exist yet.
                extraFiles: Object.fromEntries(Object.entries(v.extraFiles).map(([f, spec]) => [onDisk(this.system, f), spec])),
                copyHostKeys: v.copyHostKeys,
                hostKeyPair: this.hostKeys.hostKeyPair,
                hostKeyPath: onDisk(this.system, this.system.hostKeyPath),
                hardwareConfig: v.hardwareConfig,
                timeoutS: v.timeouts.install,
            }),
        );
        this.recorded.hostKey = r.hostKey;
        this.recorded.hostKeyFingerprint = fingerprint(parseHostKey(r.hostKey).blob);
        this.recorded.hardwareConfig = r.hardwareConfig;
        this.recorded.installedToplevel = this.toplevel;
        this.completed("install");
    }

    async reboot(): Promise<void> {
        if (!this.want("reboot")) return;
        // After the reboot: the configured login (port, user, credentials), not the installer's.
        const { host: _host, proxy: _proxy, ...login } = this.v.connection;
        const boot = await phase(this.ctx, "reboot", async () => {
            if (this.current.isInstaller) await releaseDisks(this.ctx);
            return rebootInto(this.ctx, { toplevel: this.toplevel, expectedHostKey: this.recorded.hostKey ?? "", login, timeoutS: this.v.timeouts.reboot });
        });
        this.recorded.bootId = boot.bootId;
        this.recorded.installedAt = new Date().toISOString();
        this.completed("reboot");
        delete this.recorded.installerHostKey;
        delete this.recorded.installerAccessKey;
    }
}

/**
 * The machine already runs this very system with the planned host key: an earlier run installed it
 * and was killed before its state was recorded. Records what its reboot would have, with every
 * phase done, and drops the installer's keys.
 */
export function adoptInstalled(ctx: PhaseContext, f: Facts, o: { toplevel: string; planned?: string; phases: readonly InstallPhase[] }, recorded: InstallRecorded): boolean {
    const t = ctx.target;
    if (!f.isNixos || f.isInstaller || f.currentSystem !== o.toplevel || !o.planned || !sameHostKey(t.hostKey, o.planned)) return false;
    ctx.log("facts", `the machine already runs ${o.toplevel} with the planned host key: installed by an earlier run`);
    recorded.hostKey = t.hostKey;
    recorded.hostKeyFingerprint = t.hostKeyFingerprint;
    recorded.bootId = f.bootId;
    recorded.installedAt = new Date().toISOString();
    for (const p of o.phases) if (!recorded.phasesCompleted.includes(p)) recorded.phasesCompleted.push(p);
    delete recorded.installerHostKey;
    delete recorded.installerAccessKey;
    return true;
}

/**
 * Resuming after a kexec: the installer may still run, reached as root on the post-kexec port with
 * the deployer's key, presenting the key recorded when it came up or, when no state was recorded
 * (the run was killed), the old host key that nixos-images' image carries; with no key pinned at
 * all, whichever key answers, trusted on first use as the configured login would be. Tried
 * briefly, and kept when it is an installer, or the installed system presenting the host key
 * planned for it (`expected`: the old login user or port may be gone there); otherwise the
 * configured connection is used.
 */
async function reachInstaller(target: Target, v: InstallInputs, carried: Partial<InstallRecorded>, access: InstallerAccess, expected?: string): Promise<boolean> {
    const recorded = carried.installerHostKey !== undefined && carried.installerHostKey !== "";
    const known = [recorded ? carried.installerHostKey : undefined, v.connection.hostKey].filter((k): k is string => typeof k === "string" && k !== "");
    // No key known: trusted on first use, as the configured connection would be.
    const keys = known.length ? [...known, ...(expected ? [expected] : [])] : [];
    const configured = target.options;
    try {
        await target.reconnect("facts", recorded ? 10 : 1, { ...installerLogin(access, v.postKexecSshPort), hostKey: keys[0], alsoAccept: keys.slice(1) });
        if (expected && sameHostKey(target.hostKey, expected)) return true;
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
/** Files the install would write where the installed system would not find them: refused before anything changes. */
export function refusePlacement(ctx: PhaseContext, problems: string[]): void {
    if (!problems.length) return;
    throw new NixosDeployError({
        host: ctx.target.name,
        phase: "facts",
        what: problems.join("; "),
        hint: "with a tmpfs root (impermanence) only disk-backed mounts outlive a boot: keep the host key and extra files there, as the configuration's persistence does",
    });
}

function refuseBeforeChanges(ctx: PhaseContext, f: Facts, v: InstallInputs, want: (p: InstallPhase) => boolean, done: InstallPhase[]): void {
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
