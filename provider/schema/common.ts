/**
 * Input validation shared by the resources. Every default is defined here, once; the TSDoc in
 * sdk/ states the same defaults and tests/unit/schema checks schema.json against these schemas.
 */
import { z } from "zod";
import { parseHostKey } from "../ssh/hostkey";

/** What the engine sends for values not known yet during preview. */
export const UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";

/** True when v, or anything inside it, is still unknown. */
export function containsUnknown(v: unknown): boolean {
    if (v === UNKNOWN) return true;
    if (Array.isArray(v)) return v.some(containsUnknown);
    if (v && typeof v === "object") return Object.values(v).some(containsUnknown);
    return false;
}

const hostKey = z.string().superRefine((v, ctx) => {
    try {
        parseHostKey(v);
    } catch (e) {
        ctx.addIssue({ code: z.ZodIssueCode.custom, message: (e as Error).message.replace(/^hostKey /, "") });
    }
});

const baseConnection = {
    host: z.string().min(1, "must not be empty"),
    port: z.number().int().min(1).max(65535).default(22),
    user: z.string().min(1).default("root"),
    privateKey: z.string().optional(),
    privateKeyPassword: z.string().optional(),
    password: z.string().optional(),
    agentSocketPath: z.string().optional(),
    hostKey: hostKey.optional(),
    dialErrorLimit: z.number().int().min(-1).default(10),
    perDialTimeout: z.number().int().positive().default(15),
};

export const connectionSchema = z
    .object({ ...baseConnection, proxy: z.object(baseConnection).strict().optional() })
    .strict();

export type Connection = z.infer<typeof connectionSchema>;

/** A zod error as Pulumi check failures: one per issue, naming the property path. */
export function checkFailures(issues: z.ZodIssue[], prefix = ""): { property: string; reason: string }[] {
    return issues.map((i) => {
        const property = prefix + i.path.map((p) => String(p)).join(".");
        let reason = i.message;
        if (i.code === z.ZodIssueCode.invalid_type && i.received === "undefined") reason = "is required";
        else if (i.code === z.ZodIssueCode.unrecognized_keys) reason = `unknown ${i.keys.length > 1 ? "properties" : "property"} ${i.keys.map((k) => JSON.stringify(k)).join(", ")}`;
        return { property: property || "(inputs)", reason };
    });
}

/** Drops issues about values that are still unknown (preview): they are checked once known. */
export function knownIssues(err: z.ZodError, raw: unknown): z.ZodIssue[] {
    return err.issues.filter((i) => {
        let v: unknown = raw;
        for (const p of i.path) {
            if (v === UNKNOWN) return false;
            v = v && typeof v === "object" ? (v as Record<string | number, unknown>)[p] : undefined;
        }
        return v !== UNKNOWN;
    });
}
