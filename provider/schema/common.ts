/**
 * Input validation shared by the resources. Every default is defined here, once; the TSDoc in
 * sdk/ states the same defaults and tests/unit/schema checks schema.json against these schemas.
 */
import { z } from "zod";
import { utils } from "ssh2";
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

/** Seconds: at most a day, so that no wait is unbounded by input. */
export const seconds = (max: number) => z.number().int().positive().max(max, `must be at most ${max} seconds`);

/** A private key ssh2 can read (with its passphrase when encrypted); never echoed in the reason. */
export function readableKey(v: { privateKey?: string; privateKeyPassword?: string }, ctx: z.RefinementCtx, path: string[] = ["privateKey"]): void {
    if (v.privateKey === undefined || v.privateKey === UNKNOWN || v.privateKeyPassword === UNKNOWN) return;
    const k = utils.parseKey(v.privateKey, v.privateKeyPassword);
    if (!(k instanceof Error) && !(Array.isArray(k) ? k[0] : k).isPrivateKey()) {
        ctx.addIssue({ code: z.ZodIssueCode.custom, path, message: "is a public key; give the private key" });
    } else if (k instanceof Error) {
        const encrypted = /encrypted|passphrase/i.test(k.message);
        ctx.addIssue({
            code: z.ZodIssueCode.custom,
            path,
            message: encrypted ? "is encrypted: set privateKeyPassword" : "is not a private key ssh2 can read (OpenSSH or PEM); give the key itself, not a path or a public key",
        });
    }
}

const baseConnection = {
    host: z.string().min(1, "must not be empty"),
    port: z.number().int().min(1).max(65535).default(22),
    user: z.string().min(1).default("root"),
    privateKey: z.string().optional(),
    privateKeyPassword: z.string().optional(),
    password: z.string().optional(),
    agentSocketPath: z.string().optional(),
    hostKey: hostKey.optional(),
    dialErrorLimit: z.number().int().min(-1).max(1000).default(10),
    perDialTimeout: seconds(600).default(15),
};

export const connectionSchema = z
    .object({ ...baseConnection, proxy: z.object(baseConnection).strict().superRefine((v, ctx) => readableKey(v, ctx)).optional() })
    .strict()
    .superRefine((v, ctx) => readableKey(v, ctx));

export type Connection = z.infer<typeof connectionSchema>;

/**
 * The path a failure names. The engine prints the value of the property a check failure names, so
 * a failure never names an object (a connection, a key pair, an extra file): it names the key inside
 * it that is wrong (an unknown key, the content of a file), whose value the engine cannot print.
 */
const SECRET_HOLDERS = ["connection", "hostKeyPair", "diskEncryptionKeys", "extraFiles"];

function leafPath(i: z.ZodIssue, raw: unknown): (string | number)[] {
    if (!SECRET_HOLDERS.includes(String(i.path[0]))) return i.path;
    let v: unknown = raw;
    for (const p of i.path) v = v && typeof v === "object" ? (v as Record<string | number, unknown>)[p] : undefined;
    if (!v || typeof v !== "object" || Array.isArray(v) || i.path.length === 0) return i.path;
    const keys = Object.keys(v);
    const child = i.code === z.ZodIssueCode.unrecognized_keys ? i.keys[0] : keys.includes("content") ? "content" : keys.includes("privateKey") ? "privateKey" : keys[0];
    return child === undefined ? i.path : [...i.path, child];
}

/** A zod error as Pulumi check failures: one per issue, naming the property path. */
export function checkFailures(issues: z.ZodIssue[], raw?: unknown): { property: string; reason: string }[] {
    return issues.map((i) => {
        const property = (raw === undefined ? i.path : leafPath(i, raw)).map((p) => String(p)).join(".");
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
