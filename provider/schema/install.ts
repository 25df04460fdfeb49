/** NixosInstall's inputs: validation and every default. */
import { z } from "zod";
import { connectionSchema } from "./common";
import { buildOn, exactlyOneSource, sourceFields } from "./source";

export const INSTALL_PHASES = ["kexec", "disko", "install", "reboot"] as const;

const absolutePath = z.string().regex(/^\/(?!.*(^|\/)\.\.(\/|$)).+/, "must be an absolute path without '..'");

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
        }
    });

export const installSchema = z
    .object({
        connection: connectionSchema,
        ...sourceFields,
        phases: z.array(z.enum(INSTALL_PHASES)).nonempty().default([...INSTALL_PHASES]),
        kexecTarball: z.string().min(1).optional(),
        postKexecSshPort: z.number().int().min(1).max(65535).default(22),
        diskoMode: z.enum(["disko", "format", "mount"]).default("disko"),
        buildOn,
        substituteOnDestination: z.boolean().default(true),
        extraFiles: z.record(absolutePath, extraFile).default({}),
        diskEncryptionKeys: z.record(absolutePath, z.string()).default({}),
        copyHostKeys: z.boolean().default(false),
        hostKeyPair: z.union([z.enum(["generate", "keep"]), z.object({ privateKey: z.string().min(1) }).strict()]).default("generate"),
        hardwareConfig: z.enum(["none", "nixos-generate-config", "nixos-facter"]).default("none"),
        instanceId: z.string().optional(),
        allowReinstall: z.boolean().default(false),
        timeouts: z
            .object({
                connect: z.number().int().positive().default(60),
                kexec: z.number().int().positive().default(600),
                install: z.number().int().positive().default(3600),
                reboot: z.number().int().positive().default(600),
            })
            .strict()
            .default({}),
    })
    .strict()
    .superRefine(exactlyOneSource)
    .superRefine((v, ctx) => {
        if (v.copyHostKeys && typeof v.hostKeyPair === "object") {
            ctx.addIssue({ code: z.ZodIssueCode.custom, path: ["copyHostKeys"], message: "keeps the machine's host keys, so it cannot be combined with hostKeyPair.privateKey; choose one" });
        }
    });

export type InstallInputs = z.infer<typeof installSchema>;

/** Keys check() adds or the engine carries that are not user inputs. */
export const INSTALL_COMPUTED = ["toplevel", "diskoScript", "__nixosName", "__drvs"] as const;
