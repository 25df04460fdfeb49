/**
 * What the engine stores for each resource besides the user's inputs: what check() evaluated and
 * what the hooks recorded. The engine hands every hook plain, untyped objects (`Raw`); the hooks
 * read them through these schemas, so each key has one type and one meaning in every phase.
 */
import { z } from "zod";
import { INSTALL_PHASES } from "./install";

/** A hook's argument as the engine passes it: inputs and outputs, untyped. */
export type Raw = Record<string, unknown>;

/** Optional text fields, one per name. */
function optionalStrings<K extends string>(...names: K[]): { [P in K]: z.ZodOptional<z.ZodString> } {
    return Object.fromEntries(names.map((n) => [n, z.string().optional()])) as { [P in K]: z.ZodOptional<z.ZodString> };
}

export const drvSchema = z.object({ out: z.string(), drv: z.string() });
export type Drv = z.infer<typeof drvSchema>;

/** Added by check(): the evaluated store paths. "__" keys never show in `preview --diff`. */
export const installEvaluatedSchema = z.object({
    toplevel: z.string().optional(),
    diskoScript: z.string().optional(),
    /** The disk image an install by image writes (its store path). */
    image: z.string().optional(),
    /**
     * The system that image holds, when it is not `toplevel`: disko's image builder installs the
     * configuration as changed for its build VM (device names, GRUB devices). The machine boots it
     * until the first NixosRebuild switches to `toplevel`.
     */
    imageToplevel: z.string().optional(),
    __drvs: z.object({ toplevel: drvSchema, diskoScript: drvSchema, formatScript: drvSchema, mountScript: drvSchema, image: drvSchema, imageToplevel: drvSchema }).partial().default({}),
    __nixosName: z.string().optional(),
    /** The fingerprint of the locked flake and attribute these paths were evaluated from. */
    __evaluation: z.string().optional(),
});
export type InstallEvaluated = z.infer<typeof installEvaluatedSchema>;

export type InstallPhase = (typeof INSTALL_PHASES)[number];

/**
 * What the install run records, phase by phase: the salt of a password's host key (from the start),
 * `disks` (facts), the installer's host key and the made access key (kexec, until the reboot), the
 * installed host key and hardware text (install), the system an image put on the disk (install by
 * image: read from its system profile), the boot id and time (reboot).
 */
export const installRecordedSchema = z.object({
    phasesCompleted: z.array(z.enum(INSTALL_PHASES)).default([]),
    disks: z.array(z.string()).optional(),
    ...optionalStrings("installerHostKey", "installerAccessKey", "hostKey", "hostKeyFingerprint", "hardwareConfig", "bootId", "installedAt", "installedToplevel"),
    /** The random salt of a host key derived from a password (provider/ssh/derived-key.ts): not secret. */
    keySalt: z.string().optional(),
});
export type InstallRecorded = z.infer<typeof installRecordedSchema>;

/** Added by check(): the evaluated toplevel and the package changes against the deployed one. */
export const rebuildEvaluatedSchema = z.object({
    toplevel: z.string().optional(),
    packageChanges: z.array(z.string()).optional(),
    __drvs: z.object({ toplevel: drvSchema }).partial().default({}),
    __nixosName: z.string().optional(),
    __evaluation: z.string().optional(),
});
export type RebuildEvaluated = z.infer<typeof rebuildEvaluatedSchema>;

/** What a deploy records (a failed deploy that reached the machine records the first four). */
export const rebuildRecordedSchema = z.object({
    ...optionalStrings("hostKey", "hostKeyFingerprint", "currentSystem", "initialSystem", "previousToplevel", "bootId", "activationOutput", "activatedAt"),
    generation: z.number().optional(),
    lastAction: z.enum(["switch", "boot", "test", "dry-activate"]).optional(),
    changes: z.array(z.string()).optional(),
});
export type RebuildRecorded = z.infer<typeof rebuildRecordedSchema>;

/** NixosInstall's stored state as the hooks return it: inputs, what check() evaluated, what the run recorded. */
export type InstallOutputs = Raw & Partial<InstallEvaluated> & Partial<InstallRecorded>;

/** NixosRebuild's stored state as the hooks return it. */
export type RebuildOutputs = Raw & Partial<RebuildEvaluated> & Partial<RebuildRecorded>;

/** Reads the keys of `schema` from a hook's argument; a stored value of another type is a bug. */
export function readState<S extends z.ZodTypeAny>(schema: S, raw: Raw, what: string): z.infer<S> {
    const r = schema.safeParse(raw);
    if (!r.success) throw new Error(`the stored ${what} state is not what this provider wrote: ${r.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`);
    return r.data;
}
