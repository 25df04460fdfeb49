/**
 * NixosInstall's dynamic-provider hooks. check() validates and evaluates (no host is touched);
 * diff() decides replace vs. refuse; create() runs the phases and resumes through update() after a
 * failure; delete() leaves the machine as it is.
 */
import { randomUUID } from "node:crypto";
import { NixosDeployError } from "../errors";
import { INSTALL_COMPUTED, installSchema, phasesField, phasesFor } from "../schema/install";
import { Drv, InstallEvaluated, InstallOutputs, InstallPhase, installEvaluatedSchema, InstallRecorded, installRecordedSchema, Raw, readState } from "../schema/state";
import { CheckFailure, defined, evaluateImageInput, logger, userInputs, validateAndEvaluate } from "./common";
import { runImageInstall } from "./image-install";
import { INSTALL_CARRIED, runPhases } from "./install-phases";

export async function check(olds: Raw, news: Raw): Promise<{ inputs?: InstallOutputs; failures?: CheckFailure[] }> {
    const ev = await validateAndEvaluate(installSchema, INSTALL_COMPUTED, news, olds);
    if (ev.failures.length || !ev.inputs) return { failures: ev.failures };
    const paths = ev.paths;
    if (!paths) return { inputs: ev.inputs };
    const image = await imageOf(news, { evaluation: ev.evaluation, olds });
    if (image.failures.length) return { failures: image.failures };
    const evaluated: InstallEvaluated = {
        toplevel: paths.toplevel,
        diskoScript: paths.diskoScript,
        __evaluation: ev.evaluation,
        // Derivations to build in create; hidden from the diff display by the "__" prefix.
        __drvs: Object.fromEntries(
            [
                ...(["toplevel", "diskoScript", "formatScript", "mountScript"] as const).filter((k) => paths[k]).map((k) => [k, { out: paths[k]!, drv: paths[`${k}Drv` as const] ?? "" }]),
                ...(image.drv ? [["image", image.drv]] : []),
                ...(image.system && image.system.out !== paths.toplevel ? [["imageToplevel", image.system]] : []),
            ],
        ),
        image: image.drv?.out,
        imageToplevel: image.system && image.system.out !== paths.toplevel ? image.system.out : undefined,
    };
    if (evaluated.imageToplevel) noteImageSystem(news, paths.toplevel, evaluated.imageToplevel);
    return { inputs: defined({ ...ev.inputs, ...evaluated }) };
}

/** Preview says that the image boots another system than the configuration's, and what happens to it. */
function noteImageSystem(news: Raw, toplevel: string, imageToplevel: string): void {
    const name = typeof news.__nixosName === "string" ? news.__nixosName : "nixos-install";
    logger(name)(
        "check",
        `the image holds ${imageToplevel}, the configuration as its image builder changed it (disko: device names and GRUB devices of its build VM), not ${toplevel}; the install verifies the image's system, and the first NixosRebuild switches to the configuration's`,
    );
}

/** An install by image also evaluates its image (check() only; a failure names imageAttribute). */
async function imageOf(news: Raw, reuse: { evaluation?: string; olds: Raw }): Promise<{ drv?: Drv; system?: Drv; failures: CheckFailure[] }> {
    if (news.method !== "image") return { failures: [] };
    const v = installSchema.safeParse(userInputs(news, INSTALL_COMPUTED));
    return v.success ? evaluateImageInput(v.data, reuse) : { failures: [] };
}

/**
 * Inputs whose change is stored without reinstalling: connection details (keys, port, proxy) and
 * the like. toplevel changes are NixosRebuild's job and produce no diff here.
 */
const STORED_ONLY = ["connection", "extraFiles", "timeouts", "allowReinstall", "phases"];

const stored = (p: Raw) => readState(installEvaluatedSchema.merge(installRecordedSchema), p, "NixosInstall");
const connectionOf = (p: Raw) => (p.connection ?? {}) as { host?: unknown; user?: unknown; port?: unknown };

export async function diff(id: string, olds: Raw, news: Raw): Promise<{ changes: boolean; replaces?: string[]; deleteBeforeReplace?: boolean }> {
    const replaces: string[] = [];
    const before = stored(olds);
    const after = readState(installEvaluatedSchema, news, "NixosInstall");
    if ((olds.instanceId ?? null) !== (news.instanceId ?? null)) replaces.push("instanceId");
    if (connectionOf(olds).host !== connectionOf(news).host) replaces.push("connection");
    const installed = before.phasesCompleted.includes("install");
    if (installed && after.diskoScript && before.diskoScript && after.diskoScript !== before.diskoScript) {
        if (news.allowReinstall !== true) {
            const disks = (before.disks ?? []).map((d) => `/dev/${d}`).join(", ") || "its disks";
            throw new NixosDeployError({
                host: describe(news),
                phase: "diff",
                what: `the disk layout changed (disko script ${before.diskoScript} -> ${after.diskoScript}) on a machine that is already installed`,
                hint: `reinstalling wipes ${disks}; set allowReinstall: true to reinstall, or keep the old layout`,
            });
        }
        replaces.push("diskoScript");
    }
    const changed = STORED_ONLY.some((k) => JSON.stringify(olds[k] ?? null) !== JSON.stringify(news[k] ?? null));
    const incomplete = !installed || !before.phasesCompleted.includes("reboot");
    return { changes: replaces.length > 0 || changed || (incomplete && phasesOf(news).length > 0), replaces, deleteBeforeReplace: replaces.length > 0 };
}

/** The phases asked for, defaulted by the schema (check() hands back inputs as given). */
function phasesOf(p: Raw): readonly InstallPhase[] {
    const r = phasesField.safeParse(p.phases);
    // Unknown in preview (computed from another resource): as if all were asked for.
    return phasesFor({ method: String(p.method ?? "nixos-install"), phases: r.success ? r.data : phasesField.parse(undefined) });
}

function describe(p: Raw): string {
    const c = connectionOf(p);
    return `${c.user ?? "root"}@${c.host}${c.port && c.port !== 22 ? ":" + c.port : ""}`;
}

export async function create(inputs: Raw): Promise<{ id: string; outs: InstallOutputs }> {
    const id = randomUUID();
    return { id, outs: defined(inputs.method === "image" ? await runImageInstall(id, inputs, {}) : await runPhases(id, inputs, {})) };
}

export async function update(id: string, olds: Raw, news: Raw): Promise<{ outs: InstallOutputs }> {
    const before = stored(olds);
    const done = before.phasesCompleted;
    const carried: Partial<InstallRecorded> = Object.fromEntries(INSTALL_CARRIED.filter((k) => before[k] !== undefined).map((k) => [k, before[k]]));
    if (done.includes("reboot") || phasesOf(news).every((p) => done.includes(p))) {
        // Installed: only stored details (such as connection) change. The toplevel stays what was installed.
        const after = readState(installEvaluatedSchema, news, "NixosInstall");
        return { outs: defined({ ...news, ...carried, toplevel: before.toplevel, diskoScript: before.diskoScript ?? after.diskoScript, phasesCompleted: done }) };
    }
    const resumed = { ...carried, phasesCompleted: done };
    const outs = news.method === "image" ? await runImageInstall(id, news, resumed) : await runPhases(id, news, resumed);
    return { outs: defined(outs) };
}

export async function read(id: string, props: Raw): Promise<{ id: string; props: Raw }> {
    return { id, props };
}

export async function del(id: string, props: Raw): Promise<void> {
    logger(stored(props).__nixosName ?? "nixos-install")("delete", `removed from the stack; ${describe(props)} keeps running the installed system`);
}
