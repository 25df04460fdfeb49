/**
 * NixosInstall's dynamic-provider hooks. check() validates and evaluates (no host is touched);
 * diff() decides replace vs. refuse; create() runs the phases and resumes through update() after a
 * failure; delete() leaves the machine as it is.
 */
import { randomUUID } from "node:crypto";
import { NixosDeployError } from "../errors";
import { INSTALL_COMPUTED, INSTALL_PHASES, installSchema } from "../schema/install";
import { defined, logger, validateAndEvaluate } from "./common";
import { runPhases } from "./install-phases";

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
