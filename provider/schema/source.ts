/** Where a NixOS system comes from: a flake, a non-flake configuration, or prebuilt store paths. */
import { z } from "zod";

// Nix's own alphabet: base-32 hash digits (no e, o, t, u) and the characters a store path name may hold.
const storePath = z.string().regex(/^\/nix\/store\/[0-9a-df-np-sv-z]{32}-[A-Za-z0-9+\-._?=]+$/, "must be a store path like /nix/store/<hash>-<name>");

export const sourceFields = {
    /** "./infra#web" -> nixosConfigurations.web (dots included); "./infra#nixosConfigurations.a.b" is a full attribute path. */
    flake: z.string().regex(/^[^#]+#.+$/, 'must be "<flake>#<name>", e.g. "./infra#web"').optional(),
    nixosConfiguration: z
        .object({
            file: z.string().min(1),
            nixPath: z.record(z.string(), z.string()).optional(),
        })
        .strict()
        .optional(),
    storePaths: z
        .object({
            toplevel: storePath,
            diskoScript: storePath.optional(),
            /** A built disk image (a file, or a folder holding one) for installs by image and NixosImage. */
            image: storePath.optional(),
        })
        .strict()
        .optional(),
};

export type Source =
    | { kind: "flake"; flake: string }
    | { kind: "nixosConfiguration"; file: string; nixPath: Record<string, string> }
    | { kind: "storePaths"; toplevel: string; diskoScript?: string; image?: string };

/** Exactly one of flake, nixosConfiguration, storePaths; issues name the properties. */
export function exactlyOneSource(v: { flake?: unknown; nixosConfiguration?: unknown; storePaths?: unknown }, ctx: z.RefinementCtx): void {
    const given = (["flake", "nixosConfiguration", "storePaths"] as const).filter((k) => v[k] !== undefined);
    if (given.length === 0) {
        ctx.addIssue({ code: z.ZodIssueCode.custom, path: ["flake"], message: "one source is required: set flake, nixosConfiguration or storePaths" });
    } else if (given.length > 1) {
        ctx.addIssue({ code: z.ZodIssueCode.custom, path: [given[1]], message: `only one source may be set, but ${given.join(" and ")} are` });
    }
}

/** The source inputs alone: evaluated in preview even while other inputs (the connection) are unknown. */
export const sourceSchema = z.object(sourceFields).superRefine(exactlyOneSource);

export function sourceOf(v: { flake?: string; nixosConfiguration?: { file: string; nixPath?: Record<string, string> }; storePaths?: { toplevel: string; diskoScript?: string; image?: string } }): Source {
    if (v.flake) return { kind: "flake", flake: v.flake };
    if (v.nixosConfiguration) return { kind: "nixosConfiguration", file: v.nixosConfiguration.file, nixPath: v.nixosConfiguration.nixPath ?? {} };
    return { kind: "storePaths", toplevel: v.storePaths!.toplevel, diskoScript: v.storePaths!.diskoScript, image: v.storePaths!.image };
}

/** Where the system is built: "auto" and "local" on the deployer, "remote" by the target's Nix. */
export const buildOn = z.enum(["auto", "local", "remote"]).default("auto");

/** A binary cache the deployer pushes to once and targets substitute from. */
export const cacheField = z
    .object({
        url: z.string().regex(/^(https?|file|s3):\/\/\S+$/, "must be a binary cache URL: http(s)://, file:// or s3://"),
        publicKey: z.string().regex(/^[^:\s]+:[A-Za-z0-9+/]{43}=$/, 'must be "<name>:<base64 key>", as `nix key convert-secret-to-public` prints'),
        pushTo: z.string().regex(/^[a-z0-9+-]+:\/\/\S+$/, "must be a Nix store URL the deployer can write, e.g. file:///srv/cache?secret-key=/etc/nix/cache.sec").optional(),
    })
    .strict()
    .optional();
