/**
 * schema.json, generated from the zod input schemas (the one place defaults live), the SDK's
 * TSDoc (the one place input descriptions live, read by scripts/sdk-docs.ts) and the output shapes
 * below. scripts/gen-schema.ts writes it; a test fails when the file, the schemas or the TSDoc drift.
 */
import { z } from "zod";
import { installSchema } from "./install";
import { rebuildSchema } from "./rebuild";
import { imageSchema } from "./image";

type Json = Record<string, unknown>;

const TOKEN = "pulumi-nodejs:dynamic/nixos";

/** Inputs whose whole value is stored as a secret. */
const SECRET = new Set(["connection", "extraFiles", "diskEncryptionKeys", "hostKeyPair", "kexecTarball"]);

/** Object schemas that become named types, by their path from the resource. */
const NAMED: Record<string, string> = {
    connection: "Connection",
    "connection.proxy": "Proxy",
    nixosConfiguration: "NixosConfiguration",
    storePaths: "StorePaths",
    cache: "Cache",
    "extraFiles.*": "ExtraFile",
    "hostKeyPair|1": "HostKeyPairPrivateKey",
    "NixosInstall.timeouts": "InstallTimeouts",
    "NixosRebuild.timeouts": "RebuildTimeouts",
    "healthChecks.*": "HealthCheck",
};

function unwrap(t: z.ZodTypeAny): { t: z.ZodTypeAny; optional: boolean; def?: unknown } {
    let optional = false;
    let def: unknown;
    for (;;) {
        if (t instanceof z.ZodOptional) {
            optional = true;
            t = t.unwrap();
        } else if (t instanceof z.ZodDefault) {
            optional = true;
            def = t._def.defaultValue();
            t = t._def.innerType;
        } else if (t instanceof z.ZodEffects) {
            t = t.innerType();
        } else if (t instanceof z.ZodLazy) {
            t = t.schema;
        } else return { t, optional, def };
    }
}

class Builder {
    types: Record<string, Json> = {};

    prop(t: z.ZodTypeAny, path: string, resource: string): Json {
        const { t: inner, def } = unwrap(t);
        const out = this.type(inner, path, resource);
        if (def !== undefined && (typeof def !== "object" || def === null)) out.default = def;
        return out;
    }

    type(t: z.ZodTypeAny, path: string, resource: string): Json {
        if (t instanceof z.ZodString) return { type: "string" };
        if (t instanceof z.ZodBoolean) return { type: "boolean" };
        if (t instanceof z.ZodNumber) return { type: t.isInt ? "integer" : "number" };
        if (t instanceof z.ZodEnum) return { type: "string", description: `One of ${(t.options as string[]).map((o) => JSON.stringify(o)).join(", ")}.` };
        if (t instanceof z.ZodUnknown || t instanceof z.ZodAny) return { $ref: "pulumi.json#/Any" };
        if (t instanceof z.ZodArray) return { type: "array", items: this.prop(t.element, `${path}.*`, resource) };
        if (t instanceof z.ZodRecord) return { type: "object", additionalProperties: this.prop(t.valueSchema, `${path}.*`, resource) };
        if (t instanceof z.ZodUnion) {
            return { oneOf: (t.options as z.ZodTypeAny[]).map((o, i) => this.prop(o, `${path}|${i}`, resource)) };
        }
        if (t instanceof z.ZodObject) {
            const name = NAMED[`${resource}.${path}`] ?? NAMED[path.replace(/\.\d+$/, "")] ?? NAMED[path];
            if (!name) throw new Error(`schema: no type name for the object at ${resource}.${path}`);
            const { properties, required } = this.object(t, path, resource);
            this.types[`${TOKEN}:${name}`] = { type: "object", properties, ...(required.length ? { required } : {}) };
            return { $ref: `#/types/${TOKEN}:${name}` };
        }
        throw new Error(`schema: unsupported zod type at ${resource}.${path}`);
    }

    object(t: z.ZodObject<z.ZodRawShape>, path: string, resource: string): { properties: Record<string, Json>; required: string[] } {
        const properties: Record<string, Json> = {};
        const required: string[] = [];
        for (const [k, v] of Object.entries(t.shape)) {
            const p = path ? `${path}.${k}` : k;
            properties[k] = this.prop(v as z.ZodTypeAny, p, resource);
            if (!unwrap(v as z.ZodTypeAny).optional) required.push(k);
        }
        return { properties, required };
    }
}

const hostKeyOutputs = (description: string): Record<string, Json> => ({
    hostKey: { type: "string", description },
    hostKeyFingerprint: { type: "string", description: "SHA256 fingerprint of hostKey." },
});

const OUTPUTS: Record<string, Record<string, Json>> = {
    NixosInstall: {
        toplevel: { type: "string", description: "The installed system's store path, evaluated at preview." },
        diskoScript: { type: "string", description: "The disko script's store path." },
        image: { type: "string", description: "With method \"image\": the disk image's store path, evaluated at preview." },
        ...hostKeyOutputs("The installed system's SSH host key, \"ssh-ed25519 AAAA…\"."),
        hardwareConfig: { type: "string", description: "The captured hardware configuration, or an empty string." },
        bootId: { type: "string", description: "Boot id of the installed system's first boot." },
        installedAt: { type: "string", description: "When the install was confirmed (ISO 8601)." },
        phasesCompleted: { type: "array", items: { type: "string" }, description: "Phases that completed; a failed install resumes after them." },
    },
    NixosImage: {
        path: { type: "string", description: "The image file, <directory>/<name>-<hash>.<format>." },
        format: { type: "string", description: "The file's format, as qemu-img info reads it." },
        sizeBytes: { type: "integer", description: "Bytes of the file." },
        virtualSizeBytes: { type: "integer", description: "Bytes of the disk the image holds." },
        sha256: { type: "string", description: "The file's sha256, hex." },
        toplevel: { type: "string", description: "The system inside the image, evaluated at preview." },
        image: { type: "string", description: "The built image's store path, evaluated at preview." },
        gcRoot: { type: "string", description: "The GC root that keeps the image's store path." },
    },
    NixosRebuild: {
        toplevel: { type: "string", description: "The configuration's store path; after a refresh, the running one." },
        packageChanges: { type: "array", items: { type: "string" }, description: "Package changes against the deployed system, computed at preview." },
        currentSystem: { type: "string", description: "/run/current-system after the last deploy or refresh." },
        previousToplevel: { type: "string", description: "The system that ran before the last deploy." },
        initialSystem: { type: "string", description: "The system that ran before the first deploy." },
        generation: { type: "integer", description: "The system profile's generation after the last deploy." },
        activatedAt: { type: "string", description: "When the last deploy was confirmed (ISO 8601)." },
        bootId: { type: "string", description: "Boot id after the last deploy." },
        changes: { type: "array", items: { type: "string" }, description: "Package changes of the last deploy." },
        ...hostKeyOutputs("The machine's SSH host key, pinned for later connections."),
        activationOutput: { type: "string", description: "dry-activate's report." },
    },
};

const DESCRIPTIONS: Record<string, string> = {
    NixosInstall: "Installs NixOS onto a Linux machine over SSH: host facts, kexec into an installer, disko, closure copy, nixos-install, reboot and a check that the installed system runs.",
    NixosImage: "A disk image of a NixOS configuration as a local file (raw or qcow2) for a cloud's image import, kept from Nix's garbage collector while the resource exists.",
    NixosMachine: "One machine, all in one: NixosInstall puts NixOS on it once, then NixosRebuild keeps it at the configuration over connections pinned to the installed host key.",
    NixosRebuild: "Converges an installed NixOS machine to a configuration (switch, boot, test or dry-activate) with package changes in preview and automatic rollback.",
};

/** Input descriptions by property: each resource's, and the connection's (for Connection and Proxy). */
export type InputDocs = { NixosInstallArgs: Record<string, string>; NixosRebuildArgs: Record<string, string>; NixosImageArgs: Record<string, string>; ConnectionArgs: Record<string, string>; CacheArgs: Record<string, string> };

/** Puts `doc` in front of what the walker said (an enum's "One of …"). */
function describe(props: Record<string, Json>, docs: Record<string, string>): void {
    for (const [k, p] of Object.entries(props)) {
        const doc = docs[k];
        if (doc) props[k] = { ...p, description: [doc, p.description].filter(Boolean).join(" ") };
    }
}

export function packageSchema(version: string, docs: InputDocs): Json {
    const b = new Builder();
    const resources: Record<string, Json> = {};
    for (const [name, schema] of [["NixosInstall", installSchema], ["NixosRebuild", rebuildSchema], ["NixosImage", imageSchema]] as const) {
        const obj = unwrap(schema as unknown as z.ZodTypeAny).t as z.ZodObject<z.ZodRawShape>;
        const { properties: inputs, required } = b.object(obj, "", name);
        describe(inputs, docs[`${name}Args`]);
        for (const k of Object.keys(inputs)) if (SECRET.has(k)) inputs[k] = { ...inputs[k], secret: true };
        const properties: Record<string, Json> = { ...inputs, ...OUTPUTS[name] };
        resources[`${TOKEN}:${name}`] = {
            description: DESCRIPTIONS[name],
            inputProperties: inputs,
            requiredInputs: required,
            properties,
            required: [...required, ...{ NixosInstall: ["toplevel", "phasesCompleted"], NixosRebuild: ["toplevel", "currentSystem"], NixosImage: ["toplevel", "path", "sha256"] }[name]],
        };
    }
    for (const type of ["Connection", "Proxy"]) describe((b.types[`${TOKEN}:${type}`] as { properties: Record<string, Json> }).properties, docs.ConnectionArgs);
    describe((b.types[`${TOKEN}:Cache`] as { properties: Record<string, Json> }).properties, docs.CacheArgs);
    // NixosMachine: a component of the two, with one connection and one source.
    const own = ["connection", "flake", "nixosConfiguration", "storePaths"];
    const rest = (r: string) => Object.fromEntries(Object.entries((resources[`${TOKEN}:${r}`] as { inputProperties: Record<string, Json> }).inputProperties).filter(([k]) => !own.includes(k)));
    b.types[`${TOKEN}:MachineInstall`] = { type: "object", description: "NixosInstall's inputs other than the connection and the source.", properties: rest("NixosInstall") };
    b.types[`${TOKEN}:MachineRebuild`] = { type: "object", description: "NixosRebuild's inputs other than the connection and the source.", properties: rest("NixosRebuild") };
    const installInputs = (resources[`${TOKEN}:NixosInstall`] as { inputProperties: Record<string, Json> }).inputProperties;
    const ref = (r: string) => ({ $ref: `#/resources/${TOKEN.replace("/", "%2F")}:${r}` });
    resources[`${TOKEN}:NixosMachine`] = {
        isComponent: true,
        description: DESCRIPTIONS.NixosMachine,
        inputProperties: {
            ...Object.fromEntries(own.map((k) => [k, installInputs[k]])),
            install: { $ref: `#/types/${TOKEN}:MachineInstall`, description: "NixosInstall's other inputs (phases, kexecTarball, diskoMode, extraFiles, …)." },
            rebuild: { $ref: `#/types/${TOKEN}:MachineRebuild`, description: "NixosRebuild's other inputs (action, healthChecks, confirmTimeout, …)." },
        },
        requiredInputs: ["connection"],
        properties: {
            toplevel: { type: "string", description: "The running system's store path." },
            hostKey: { type: "string", description: "The installed system's SSH host key." },
            install: { ...ref("NixosInstall"), description: "The NixosInstall child." },
            rebuild: { ...ref("NixosRebuild"), description: "The NixosRebuild child, pinned to the install's host key." },
        },
        required: ["toplevel", "hostKey", "install", "rebuild"],
    };
    return {
        name: "pulumi-nodejs",
        displayName: "pulumi-nixos",
        version,
        description: "NixOS machines as Pulumi dynamic resources: install over SSH, then converge with rollback. Package: pulumi-nixos (npm).",
        keywords: ["nixos", "nix", "ssh", "kexec", "disko"],
        license: "Apache-2.0",
        types: b.types,
        resources,
    };
}
