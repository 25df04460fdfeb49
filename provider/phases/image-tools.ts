/**
 * facts (installs by image): whether the rescue system's grow tools are new enough for the image,
 * asked before the write, as each fails only after it otherwise:
 * - sfdisk: growing a GPT image relies on libfdisk moving the backup header to the disk's end when
 *   it writes, which it does from util-linux 2.32 on (commit 9a8a3b88d, libfdisk/src/gpt.c "This
 *   problem will be corrected by write"). `sfdisk --relocate` would need 2.36 (ee5a16025), so the
 *   grow does not use it.
 * - e2fsck and resize2fs refuse an ext4 with a feature newer than they are (e2fsprogs
 *   e2fsck/unix.c: "Get a newer version of e2fsck!"; resize/main.c: "Filesystem has unsupported
 *   feature(s)"), e.g. orphan_file, which e2fsprogs 1.47 puts in every new ext4.
 * A version the tool does not print (a busybox applet, a vendor build) is not refused.
 */
import { growPlan } from "../image/holders";
import { EXT_FEATURES, ImageLayout } from "../image/layout";
import { sh } from "../ssh/shell";
import type { PhaseContext } from "./context";
import { keyValues } from "./facts";
import { SHORT_MS } from "./image-disk";
import type { SystemLayout } from "./placement";

export const SFDISK_MIN_GPT = "2.32";

/**
 * The first line each tool prints about its version, by tool; a missing tool is absent. resize2fs
 * has no version option and comes with e2fsck in e2fsprogs, so e2fsck's answers for both.
 */
export async function rescueVersions(ctx: PhaseContext): Promise<Map<string, string>> {
    const cmd = sh`v() { command -v "$1" >/dev/null 2>&1 || return 0; printf '%s=' "$1"; shift; "$@" 2>&1 | head -n 1; }
v sfdisk sfdisk --version; v e2fsck e2fsck -V; true`;
    const r = await ctx.target.run(cmd, { phase: "facts", what: "asking the rescue system's sfdisk and e2fsprogs for their versions", timeoutMs: SHORT_MS });
    return keyValues(r.stdout);
}

/**
 * "sfdisk from util-linux 2.33.1" -> [2, 33, 1], "e2fsck 1.47.0 (5-Feb-2023)" -> [1, 47, 0];
 * undefined for anything else (a busybox applet prints its own release).
 */
export function versionOf(line: string | undefined): number[] | undefined {
    const m = /^(?:\S+ from util-linux|e2fsck) (\d+)\.(\d+)(?:\.(\d+))?/.exec(line ?? "");
    return m ? [Number(m[1]), Number(m[2]), Number(m[3] ?? 0)] : undefined;
}

/** Whether version `v` is older than `min` ("1.47.0"). */
export function older(v: number[], min: string): boolean {
    const m = min.split(".").map(Number);
    for (let i = 0; i < 3; i++) if ((v[i] ?? 0) !== (m[i] ?? 0)) return (v[i] ?? 0) < (m[i] ?? 0);
    return false;
}

/** Why the rescue's tools cannot grow this image, each a sentence; empty when they can. */
export function toolProblems(l: ImageLayout, system: SystemLayout, versions: Map<string, string>): string[] {
    const problems: string[] = [];
    const sfdisk = versionOf(versions.get("sfdisk"));
    const plan = growPlan(l, system);
    if (l.table === "gpt" && plan.part && sfdisk && older(sfdisk, SFDISK_MIN_GPT)) {
        problems.push(`the rescue system's sfdisk is ${versions.get("sfdisk")}: growing a GPT image needs util-linux ${SFDISK_MIN_GPT} or later, which moves the backup GPT header to the disk's end`);
    }
    const part = plan.part && l.parts?.find((p) => p.nr === plan.part!.nr);
    const e2fsck = versionOf(versions.get("e2fsck"));
    for (const name of part?.extFeatures ?? []) {
        const since = EXT_FEATURES.find((f) => f.name === name)!.since;
        if (!e2fsck || !older(e2fsck, since)) continue;
        const where = part!.nr ? `partition ${part!.nr}` : "the whole image";
        problems.push(`the image's ${part!.type} on ${where} has the ${name} feature, which the rescue system's e2fsprogs (${versions.get("e2fsck")}) cannot check or grow: e2fsck and resize2fs ${since} or later are needed`);
    }
    return problems;
}

export const RESCUE_TOOLS_HINT =
    'boot a rescue system with newer tools (util-linux >= 2.32, e2fsprogs >= 1.47.0), or build the image\'s ext4 without the feature (disko: extraArgs = [ "-O" "^orphan_file" ]); nothing was written';

/** The problems of `toolProblems` for this rescue system. */
export async function rescueToolProblems(ctx: PhaseContext, l: ImageLayout, system: SystemLayout): Promise<string[]> {
    return toolProblems(l, system, await rescueVersions(ctx));
}
