/** NixosInstall's inputs: validation and every default. */
import { z } from "zod";
import * as fs from "node:fs";
import * as path from "node:path";
import { utils } from "ssh2";
import { connectionSchema, seconds, UNKNOWN } from "./common";

/** Local files are read relative to the Pulumi program, as the hooks do. */
const existsLocally = (p: string) => p === UNKNOWN || fs.existsSync(path.resolve(process.cwd(), p));

/** A host private key must be an unencrypted key: the installed sshd reads it without a passphrase. */
function unencryptedKey(k: string, ctx: z.RefinementCtx): void {
    if (k === UNKNOWN) return;
    const parsed = utils.parseKey(k);
    if (parsed instanceof Error || !(Array.isArray(parsed) ? parsed[0] : parsed).isPrivateKey()) ctx.addIssue({ code: z.ZodIssueCode.custom, path: ["privateKey"], message: "is not an unencrypted OpenSSH or PEM private key" });
}

/**
 * Phase sets that cannot work are refused before anything runs: after a kexec the installer has
 * nothing mounted, so install needs disko (diskoMode "mount" mounts existing file systems).
 */
function phasesThatCanRun(v: { phases: string[] }, ctx: z.RefinementCtx): void {
    if (v.phases.includes("kexec") && v.phases.includes("install") && !v.phases.includes("disko")) {
        ctx.addIssue({ code: z.ZodIssueCode.custom, path: ["phases"], message: 'install after kexec needs "disko": the fresh installer has nothing mounted at /mnt (diskoMode "mount" mounts existing file systems)' });
    }
}
import { buildOn, cacheField, exactlyOneSource, sourceFields } from "./source";
import { imageAttributeField } from "./image";

/** Every phase either method has: "write" belongs to installs by image, kexec and disko to the others. */
export const INSTALL_PHASES = ["kexec", "disko", "write", "install", "reboot"] as const;
const NIXOS_INSTALL_PHASES = ["kexec", "disko", "install", "reboot"] as const;
/** An install by image: write the image, grow it and write files into it (install), reboot. */
export const IMAGE_PHASES = ["write", "install", "reboot"] as const;

/** The phases to run; the one place their default is (an install by image: IMAGE_PHASES, see `phasesFor`). */
export const phasesField = z.array(z.enum(INSTALL_PHASES)).nonempty().default([...NIXOS_INSTALL_PHASES]);

/**
 * The phases an install runs: those given, or its method's default. (The schema's default is
 * nixos-install's; an install by image given exactly that list gets its own.)
 */
export function phasesFor(v: { method: string; phases: readonly string[] }): readonly (typeof INSTALL_PHASES)[number][] {
    const defaulted = v.phases.length === NIXOS_INSTALL_PHASES.length && NIXOS_INSTALL_PHASES.every((p, i) => v.phases[i] === p);
    return (v.method === "image" && defaulted ? IMAGE_PHASES : v.phases) as readonly (typeof INSTALL_PHASES)[number][];
}

/** Each method's own phases only; an install by image has no kexec or disko, and keeps no host keys it never had. */
function methodFits(v: { method: string; phases: string[]; copyHostKeys: boolean; hostKeyPair: unknown }, ctx: z.RefinementCtx): void {
    const own: readonly string[] = v.method === "image" ? IMAGE_PHASES : NIXOS_INSTALL_PHASES;
    const foreign = phasesFor(v).filter((p) => !own.includes(p));
    if (foreign.length) ctx.addIssue({ code: z.ZodIssueCode.custom, path: ["phases"], message: `method "${v.method}" has the phases ${own.join(", ")}; ${foreign.join(", ")} ${foreign.length > 1 ? "belong" : "belongs"} to the other method` });
    if (v.method === "image" && (v.copyHostKeys || v.hostKeyPair === "keep")) {
        ctx.addIssue({ code: z.ZodIssueCode.custom, path: [v.copyHostKeys ? "copyHostKeys" : "hostKeyPair"], message: 'an install by image replaces the disk that held the old host keys, and a rescue system\'s keys are not the machine\'s; use hostKeyPair "generate" or a privateKey' });
    }
}

// Anchored, one line, no trailing slash: a newline or ".." must not lead out of /mnt.
const absolutePath = z
    .string()
    .regex(/^(\/[^/\0\n]+)+$/, "must be an absolute file path (no trailing slash, no newline)")
    .refine((p) => !p.split("/").includes(".."), "must be an absolute path without '..'");

const extraFile = z
    .object({
        content: z.string().optional(),
        source: z.string().optional(),
        mode: z.string().regex(/^[0-7]{3,4}$/, 'must be an octal mode like "0600"').optional(),
        // Written from the installer, which has none of the target's users: a name like "app"
        // cannot be resolved there (nixos-anywhere's docs say the same), numeric ids always can.
        owner: z
            .string()
            .regex(/^\d+(:\d+)?$|^root(:root)?$/, 'must be numeric "uid:gid" (or "root"): the installer that writes the file has none of the target\'s users, so a name like "app" cannot be resolved there')
            .optional(),
    })
    .strict()
    .superRefine((f, ctx) => {
        if ((f.content === undefined) === (f.source === undefined)) {
            ctx.addIssue({ code: z.ZodIssueCode.custom, message: "exactly one of content and source must be set" });
        } else if (f.source !== undefined && !existsLocally(f.source)) {
            ctx.addIssue({ code: z.ZodIssueCode.custom, path: ["source"], message: "does not exist on the machine running Pulumi (relative paths are from the Pulumi program)" });
        }
    });

export const installSchema = z
    .object({
        connection: connectionSchema,
        ...sourceFields,
        phases: phasesField,
        kexecTarball: z
            .string()
            .min(1)
            .refine((s) => /^https?:\/\/[^\s]+$/.test(s) || existsLocally(s), "must be an http(s) URL or an existing local file (relative to the Pulumi program)")
            .optional(),
        postKexecSshPort: z.number().int().min(1).max(65535).default(22),
        diskoMode: z.enum(["disko", "format", "mount"]).default("disko"),
        buildOn,
        substituteOnDestination: z.boolean().default(true),
        cache: cacheField,
        extraFiles: z.record(absolutePath, extraFile).default({}),
        diskEncryptionKeys: z.record(absolutePath, z.string()).default({}),
        copyHostKeys: z.boolean().default(false),
        hostKeyPair: z
            .union([z.enum(["generate", "keep"]), z.object({ privateKey: z.string().min(1) }).strict().superRefine((v, ctx) => unencryptedKey(v.privateKey, ctx))])
            .default("generate"),
        hardwareConfig: z.enum(["none", "nixos-generate-config", "nixos-facter"]).default("none"),
        /**
         * "nixos-install" (kexec, disko, nixos-install: any Linux with 1.5 GiB of RAM), or "image":
         * a disk image of the configuration written from a rescue system (no Nix, no RAM floor).
         */
        method: z.enum(["nixos-install", "image"]).default("nixos-install"),
        /** The image to write: an attribute of config.system.build (disko's "diskoImages" by default). */
        imageAttribute: imageAttributeField,
        /** The disk the image is written to, e.g. "/dev/sda" or a /dev/disk/by-id/… link to it; by default the machine's only disk. */
        imageDisk: z.string().regex(/^\/dev\/[A-Za-z0-9/_.:-]+$/, 'must be a device path like "/dev/sda"').optional(),
        instanceId: z.string().optional(),
        allowReinstall: z.boolean().default(false),
        timeouts: z
            .object({
                connect: seconds(3600).default(60),
                kexec: seconds(3600).default(600),
                install: seconds(86400).default(3600),
                reboot: seconds(3600).default(600),
            })
            .strict()
            .default({}),
    })
    .strict()
    .superRefine(exactlyOneSource)
    .superRefine(methodFits)
    .superRefine(phasesThatCanRun)
    .superRefine((v, ctx) => {
        if (v.copyHostKeys && typeof v.hostKeyPair === "object") {
            ctx.addIssue({ code: z.ZodIssueCode.custom, path: ["copyHostKeys"], message: "keeps the machine's host keys, so it cannot be combined with hostKeyPair.privateKey; choose one" });
        }
    });

export type InstallInputs = z.infer<typeof installSchema>;

/** Keys check() adds or the engine carries that are not user inputs. */
export const INSTALL_COMPUTED = ["toplevel", "diskoScript", "image", "imageToplevel", "__nixosName", "__drvs", "__evaluation"] as const;
