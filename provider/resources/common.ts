/** Pieces every resource's hooks share: input parsing with property-named failures, evaluation, logging. */
import { z } from "zod";
import { NixosDeployError } from "../errors";
import { evaluateImage, SystemPaths } from "../nix/eval";
import { imageSystem } from "../nix/image-system";
import { Evaluated, evaluateSource, Recorded } from "../nix/evaluations";
import { checkFailures, containsUnknown, knownIssues } from "../schema/common";
import { sourceOf, sourceSchema } from "../schema/source";
import { Drv, installEvaluatedSchema } from "../schema/state";

/** What a check recorded: NixosRebuild's `__drvs` hold the toplevel only, a subset of NixosInstall's. */
const recordedSchema = installEvaluatedSchema.pick({ __evaluation: true, __drvs: true });

export interface CheckFailure {
    property: string;
    reason: string;
}

/** Inputs without the keys a hook adds itself. */
export function userInputs(news: Record<string, unknown>, computed: readonly string[]): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    // "__" keys belong to the engine (__provider) or to us; they are never user inputs.
    for (const [k, v] of Object.entries(news)) if (!computed.includes(k) && !k.startsWith("__") && v !== undefined) out[k] = v;
    return out;
}

/** The engine's own "__" inputs (the serialized provider), which check() must hand back. */
export function engineInputs(news: Record<string, unknown>): Record<string, unknown> {
    return Object.fromEntries(Object.entries(news).filter(([k]) => k.startsWith("__") && k !== "__drvs" && k !== "__evaluation"));
}

/** Parses inputs; returns failures naming each property, ignoring values still unknown in preview. */
export function parseInputs<S extends z.ZodTypeAny>(schema: S, raw: Record<string, unknown>): { value?: z.infer<S>; failures: CheckFailure[] } {
    const r = schema.safeParse(raw);
    if (r.success) return { value: r.data, failures: [] };
    return { failures: checkFailures(knownIssues(r.error, raw), raw) };
}

/** Parses inputs that check() already accepted; a failure here is a bug, reported as such. */
export function mustParse<S extends z.ZodTypeAny>(schema: S, raw: Record<string, unknown>, computed: readonly string[]): z.infer<S> {
    const r = schema.safeParse(userInputs(raw, computed));
    if (!r.success) throw new Error(`invalid inputs: ${checkFailures(r.error.issues).map((f) => `${f.property}: ${f.reason}`).join("; ")}`);
    return r.data;
}

/** Evaluates the source of the inputs into store paths, or a failure on the source's property. */
export async function evaluateInputs(
    raw: Record<string, unknown>,
    v: { flake?: string; nixosConfiguration?: { file: string; nixPath?: Record<string, string> }; storePaths?: { toplevel: string; diskoScript?: string } },
    recorded: Recorded,
): Promise<{ evaluated?: Evaluated; failures: CheckFailure[] }> {
    const property = v.flake !== undefined ? "flake" : v.nixosConfiguration !== undefined ? "nixosConfiguration" : "storePaths";
    if (containsUnknown(raw[property])) return { failures: [] };
    try {
        return { evaluated: await evaluateSource(sourceOf(v), process.cwd(), process.env, recorded), failures: [] };
    } catch (e) {
        const msg = e instanceof NixosDeployError ? [e.shortMessage.replace(/^evaluate on localhost failed: /, ""), e.hint, e.stderrTail?.split("\n").slice(-3).join(" ")].filter(Boolean).join("; ") : String(e);
        return { failures: [{ property, reason: msg }] };
    }
}

/**
 * Evaluates a source's disk image (config.system.build.<attribute>) and the NixOS system it holds
 * (disko's image builder installs its own variant of the configuration: nix/image-system.ts), or a
 * failure naming imageAttribute (storePaths for prebuilt paths). Like the system's paths, an image
 * evaluated from an unchanged locked flake (`evaluation`, the fingerprint check() just computed)
 * with the same attribute is reused from the last check (`olds`) without a `nix eval`.
 */
export async function evaluateImageInput(
    v: Parameters<typeof sourceOf>[0] & { imageAttribute: string },
    reuse: { evaluation?: string; olds: Record<string, unknown> } = { olds: {} },
): Promise<{ drv?: Drv; system?: Drv; failures: CheckFailure[] }> {
    const olds = reuse.olds as { __evaluation?: unknown; imageAttribute?: unknown; __drvs?: { image?: Drv; imageToplevel?: Drv } };
    if (reuse.evaluation && olds.__evaluation === reuse.evaluation && (olds.imageAttribute ?? "diskoImages") === v.imageAttribute && olds.__drvs?.image?.out) {
        return { drv: olds.__drvs.image, system: olds.__drvs.imageToplevel, failures: [] };
    }
    try {
        const drv = await evaluateImage(sourceOf(v), v.imageAttribute, process.cwd(), process.env);
        return { drv, system: await imageSystem(drv.drv, process.env), failures: [] };
    } catch (e) {
        const msg = e instanceof NixosDeployError ? [e.shortMessage.replace(/^evaluate on localhost failed: /, ""), e.hint].filter(Boolean).join("; ") : String(e);
        return { failures: [{ property: v.storePaths ? "storePaths" : "imageAttribute", reason: msg }] };
    }
}

/** What the last check of this resource evaluated, from its stored inputs (`__evaluation`, `__drvs`). */
export function recordedEvaluation(olds: Record<string, unknown>): Recorded {
    const r = recordedSchema.safeParse(olds);
    if (!r.success || !r.data.__evaluation || !r.data.__drvs.toplevel) return {};
    const d = r.data.__drvs;
    const paths: SystemPaths = { toplevel: d.toplevel!.out, toplevelDrv: d.toplevel!.drv };
    for (const k of ["diskoScript", "formatScript", "mountScript"] as const) {
        if (d[k]) Object.assign(paths, { [k]: d[k]!.out, [`${k}Drv`]: d[k]!.drv });
    }
    return { key: r.data.__evaluation, paths };
}

/**
 * The shared first half of check(): validate (ignoring values unknown in preview), then evaluate
 * the source. Returns the inputs to hand back (user inputs plus the engine's "__" keys) and the
 * evaluated paths, or the failures.
 */
export async function validateAndEvaluate<S extends z.ZodTypeAny>(
    schema: S,
    computed: readonly string[],
    news: Record<string, unknown>,
    olds: Record<string, unknown> = {},
): Promise<{ failures: CheckFailure[]; inputs?: Record<string, unknown>; paths?: SystemPaths; evaluation?: string }> {
    const raw = userInputs(news, computed);
    const { value, failures } = parseInputs(schema, raw);
    if (failures.length) return { failures };
    const inputs = { ...raw, ...engineInputs(news) };
    // Values unknown until the update (preview) failed validation: the source is evaluated anyway
    // when it is known, because evaluation needs no connection.
    const source = value ?? knownSource(raw);
    if (!source) return { failures: [], inputs };
    const ev = await evaluateInputs(raw, source, recordedEvaluation(olds));
    if (ev.failures.length) return { failures: ev.failures };
    return { failures: [], inputs, paths: ev.evaluated?.paths, evaluation: ev.evaluated?.key };
}

function knownSource(raw: Record<string, unknown>): z.infer<typeof sourceSchema> | undefined {
    const picked = { flake: raw.flake, nixosConfiguration: raw.nixosConfiguration, storePaths: raw.storePaths };
    if (containsUnknown(picked)) return undefined;
    const r = sourceSchema.safeParse(picked);
    return r.success ? r.data : undefined;
}

/** A progress line on the stack's diagnostics, prefixed with the resource name (hooks get no URN). */
export function logger(name: string): (phase: string, line: string) => void {
    return (phase, line) => {
        // The engine shows a dynamic provider's console output as diagnostics on the stack.
        console.log(`${name}: ${phase}: ${line}`);
    };
}

/** An error that makes the engine keep the resource with these outputs (an init error). */
export function partialFailure(err: unknown, id: string, properties: Record<string, unknown>): Error {
    const msg = err instanceof Error ? err.message : String(err);
    const e = new Error(msg) as Error & { id: string; properties: Record<string, unknown>; reasons: string[] };
    e.id = id;
    e.properties = properties;
    e.reasons = [msg];
    return e;
}

/** Outputs without undefined values, which the engine's serializer rejects ("Unexpected struct type"). */
export function defined<T>(v: T): T {
    if (Array.isArray(v)) return v.map(defined) as unknown as T;
    if (v && typeof v === "object") {
        return Object.fromEntries(Object.entries(v).filter(([, x]) => x !== undefined).map(([k, x]) => [k, defined(x)])) as T;
    }
    return v;
}
