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
        compression: z.enum(["none", "zlib", "zstd"]).default("none"),
        directory: z.string().min(1).default("nixos-images"),
    })
    .strict()
    .superRefine(exactlyOneSource)
    .superRefine((v, ctx) => {
        if (v.format === "raw" && v.compression !== "none") {
            ctx.addIssue({ code: z.ZodIssueCode.custom, path: ["compression"], message: 'compresses qcow2 clusters; a raw image is never compressed (use format "qcow2")' });
        }
    });

export type ImageInputs = z.infer<typeof imageSchema>;

/** Keys check() adds: the evaluated toplevel and image store paths. */
export const IMAGE_COMPUTED = ["toplevel", "image", "__nixosName", "__drvs", "__evaluation"] as const;
