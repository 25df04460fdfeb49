/** NixosImage's inputs: validation and every default. */
import { z } from "zod";
import { exactlyOneSource, sourceFields } from "./source";

/** An attribute path under config.system.build. */
export const imageAttributeField = z
    .string()
    .regex(/^[A-Za-z_][A-Za-z0-9_'-]*(\.[A-Za-z_][A-Za-z0-9_'-]*)*$/, 'must be an attribute path under config.system.build, e.g. "diskoImages" or "image"')
    .default("diskoImages");

export const imageSchema = z
    .object({
        ...sourceFields,
        imageAttribute: imageAttributeField,
        format: z.enum(["raw", "qcow2"]).default("raw"),
        // No fixed default: a qcow2's clusters are zlib-compressed unless told otherwise (below).
        compression: z.enum(["none", "zlib", "zstd"]).optional(),
        directory: z.string().min(1).default("nixos-images"),
    })
    .strict()
    .superRefine(exactlyOneSource)
    .superRefine((v, ctx) => {
        if (v.format === "raw" && v.compression !== undefined && v.compression !== "none") {
            ctx.addIssue({ code: z.ZodIssueCode.custom, path: ["compression"], message: 'compresses qcow2 clusters; a raw image is never compressed (use format "qcow2")' });
        }
    })
    .transform((v) => ({ ...v, compression: v.compression ?? defaultCompression(v.format) }));

/**
 * zlib for qcow2: QEMU made the cluster compression type an incompatible feature bit (5.1), so a
 * zstd-compressed qcow2 cannot be opened by an older qemu-img, or one built without zstd, as a
 * cloud's image importer may be; zlib images open everywhere. Raw images are never compressed.
 */
export function defaultCompression(format: "raw" | "qcow2"): "none" | "zlib" {
    return format === "qcow2" ? "zlib" : "none";
}

export type ImageInputs = z.infer<typeof imageSchema>;

/** Keys check() adds: the evaluated toplevel and image store paths. */
export const IMAGE_COMPUTED = ["toplevel", "image", "__nixosName", "__drvs", "__evaluation"] as const;
