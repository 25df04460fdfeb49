/** NixosRebuild's inputs: validation and every default. */
import { z } from "zod";
import { connectionSchema, seconds } from "./common";
import { buildOn, cacheField, exactlyOneSource, sourceFields } from "./source";

export const rebuildSchema = z
    .object({
        connection: connectionSchema,
        ...sourceFields,
        action: z.enum(["switch", "boot", "test", "dry-activate"]).default("switch"),
        magicRollback: z.boolean().default(true),
        confirmTimeout: seconds(3600).default(30),
        healthChecks: z
            .array(z.object({ command: z.string().min(1), timeout: seconds(3600).optional() }).strict())
            .default([]),
        ignoreFailedUnits: z.boolean().default(false),
        rebootOnKernelChange: z.boolean().default(false),
        keepGenerations: z.number().int().min(1).optional(),
        triggers: z.array(z.unknown()).optional(),
        onDelete: z.enum(["retain", "rollback"]).default("retain"),
        substituteOnDestination: z.boolean().default(true),
        cache: cacheField,
        buildOn,
        timeouts: z
            .object({
                connect: seconds(3600).default(60),
                activate: seconds(86400).default(600),
            })
            .strict()
            .default({}),
    })
    .strict()
    .superRefine(exactlyOneSource);

export type RebuildInputs = z.infer<typeof rebuildSchema>;

/** Keys check() adds that are not user inputs. */
export const REBUILD_COMPUTED = ["toplevel", "packageChanges", "__nixosName", "__drvs", "__evaluation"] as const;

/** Keys only create/update/read set; never user inputs. */
export const REBUILD_OUTPUTS = [
    ...REBUILD_COMPUTED,
    "hostKey",
    "hostKeyFingerprint",
    "currentSystem",
    "initialSystem",
    "lastAction",
    "activationOutput",
    "activatedAt",
    "previousToplevel",
    "generation",
    "bootId",
    "changes",
] as const;
