/**
 * Evaluating a NixOS configuration to its store paths without building anything. This runs in
 * check(), so `pulumi preview` shows the toplevel and disko script before anything changes.
 */
import * as path from "node:path";
import { NixosDeployError } from "../errors";
import type { Source } from "../schema/source";
import { mustLocal, runLocal } from "./local";

export interface SystemPaths {
    toplevel: string;
    toplevelDrv: string;
    diskoScript?: string;
    diskoScriptDrv?: string;
    formatScript?: string;
    formatScriptDrv?: string;
    mountScript?: string;
    mountScriptDrv?: string;
}

// Both Nix 2.8 and current Nix accept --apply and --json on `nix eval`.
const APPLY = `b: let p = n: if b ? \${n} then { out = b.\${n}.outPath; drv = b.\${n}.drvPath; } else null; in
  { toplevel = p "toplevel"; diskoScript = p "diskoScript"; formatScript = p "formatScript"; mountScript = p "mountScript"; }`;

interface Raw {
    [k: string]: { out: string; drv: string } | null;
}

function fromRaw(raw: Raw): SystemPaths {
    const r: SystemPaths = { toplevel: raw.toplevel!.out, toplevelDrv: raw.toplevel!.drv };
    for (const k of ["diskoScript", "formatScript", "mountScript"] as const) {
        const v = raw[k];
        if (v) {
            r[k] = v.out;
            r[`${k}Drv` as const] = v.drv;
        }
    }
    return r;
}

/** Splits "./infra#web" into the flake and the attribute path of its NixOS configuration. */
export function flakeAttr(ref: string): { flake: string; attr: string } {
    const i = ref.lastIndexOf("#");
    const flake = ref.slice(0, i);
    const frag = ref.slice(i + 1);
    // "#web" and "#host.example.com" name nixosConfigurations.<name>, as with nixos-rebuild; a
    // full attribute path starts with the flake output it reads.
    const attr = /^(nixosConfigurations|packages|legacyPackages)\./.test(frag) ? frag : `nixosConfigurations.${JSON.stringify(frag)}`;
    return { flake, attr };
}

/** The name of a nixosConfigurations attribute, when `attr` is one (those can be evaluated together). */
export function configurationName(attr: string): string | undefined {
    const m = /^nixosConfigurations\.("(?:[^"\\]|\\.)*"|[A-Za-z0-9_'-]+)$/.exec(attr);
    return m ? (m[1].startsWith('"') ? (JSON.parse(m[1]) as string) : m[1]) : undefined;
}

/** A Nix string literal holding `text`. */
const nixString = (text: string) => JSON.stringify(text).replace(/\$\{/g, "\\${");

/**
 * Evaluates several nixosConfigurations of one flake in one `nix eval`: one process, and what the
 * configurations share (nixpkgs, modules) is evaluated once. Names the flake lacks are left out of
 * the result. Undefined when any of them fails: evaluated alone, each then gets its own error.
 */
export async function evaluateConfigurations(flake: string, names: string[], cwd: string, env: NodeJS.ProcessEnv = process.env): Promise<Record<string, SystemPaths> | undefined> {
    const wanted = `builtins.filter (n: cs ? \${n}) (builtins.fromJSON ${nixString(JSON.stringify(names))})`;
    const apply = `cs: builtins.listToAttrs (map (n: { name = n; value = (${APPLY}) cs.\${n}.config.system.build; }) (${wanted}))`;
    const r = await runLocal("nix", ["eval", "--json", `${flake}#nixosConfigurations`, "--apply", apply], { cwd, env });
    if (r.code !== 0) return undefined;
    const raw = JSON.parse(r.stdout) as Record<string, Raw>;
    return Object.fromEntries(Object.entries(raw).map(([n, v]) => [n, fromRaw(v)]));
}

/** Evaluates the store paths of a source. `cwd` resolves relative flake refs and files. */
export async function evaluate(source: Source, cwd: string, env: NodeJS.ProcessEnv = process.env): Promise<SystemPaths> {
    if (source.kind === "storePaths") {
        return { toplevel: source.toplevel, toplevelDrv: "", diskoScript: source.diskoScript };
    }
    if (source.kind === "flake") {
        const { flake, attr } = flakeAttr(source.flake);
        const r = await runLocal("nix", ["eval", "--json", `${flake}#${attr}.config.system.build`, "--apply", APPLY], { cwd, env });
        if (r.code !== 0) throw await explainFlakeFailure(source.flake, flake, r.stderr, cwd, env);
        return fromRaw(JSON.parse(r.stdout));
    }
    const file = path.resolve(cwd, source.file);
    const include = Object.entries(source.nixPath).flatMap(([k, v]) => ["-I", `${k}=${path.resolve(cwd, v)}`]);
    const expr = `(${APPLY}) (import <nixpkgs/nixos> { }).config.system.build`;
    const out = await mustLocal("evaluate", `cannot evaluate the NixOS configuration ${file}`, "nix", ["eval", "--json", "--impure", "--expr", expr, "-I", `nixos-config=${file}`, ...include], { cwd, env });
    return fromRaw(JSON.parse(out));
}

/**
 * The disk image derivation of a configuration: `config.system.build.<attribute>` (disko's
 * "diskoImages" by default). Evaluated apart from the system's paths, and only for resources that
 * write or make images: an image's derivation costs an evaluation of its own (disko's builds a VM).
 */
export async function evaluateImage(source: Source, attribute: string, cwd: string, env: NodeJS.ProcessEnv = process.env): Promise<{ out: string; drv: string }> {
    if (source.kind === "storePaths") {
        if (!source.image) throw new NixosDeployError({ host: "localhost", phase: "evaluate", what: "storePaths has no image", hint: "add storePaths.image: the store path of a built disk image" });
        return { out: source.image, drv: "" };
    }
    const apply = "d: { out = d.outPath; drv = d.drvPath; }";
    const what = `cannot evaluate the disk image config.system.build.${attribute}`;
    const hint = 'name the configuration\'s image attribute in imageAttribute (disko: "diskoImages"; nixpkgs\' image modules: "image")';
    let r;
    if (source.kind === "flake") {
        const { flake, attr } = flakeAttr(source.flake);
        r = await runLocal("nix", ["eval", "--json", `${flake}#${attr}.config.system.build.${attribute}`, "--apply", apply], { cwd, env });
    } else {
        const file = path.resolve(cwd, source.file);
        const include = Object.entries(source.nixPath).flatMap(([k, v]) => ["-I", `${k}=${path.resolve(cwd, v)}`]);
        r = await runLocal("nix", ["eval", "--json", "--impure", "--expr", `(${apply}) (import <nixpkgs/nixos> { }).config.system.build.${attribute}`, "-I", `nixos-config=${file}`, ...include], { cwd, env });
    }
    if (r.code !== 0) throw new NixosDeployError({ host: "localhost", phase: "evaluate", what, stderr: r.stderr, hint });
    return JSON.parse(r.stdout) as { out: string; drv: string };
}

/** Turns a failed flake evaluation into an error that says what the flake does provide. */
async function explainFlakeFailure(ref: string, flake: string, stderr: string, cwd: string, env: NodeJS.ProcessEnv): Promise<NixosDeployError> {
    const names = await runLocal("nix", ["eval", "--json", `${flake}#nixosConfigurations`, "--apply", "builtins.attrNames"], { cwd, env });
    if (names.code === 0) {
        const list = JSON.parse(names.stdout) as string[];
        const { attr } = flakeAttr(ref);
        if (/does not provide attribute|attribute '.*' missing/.test(stderr)) {
            return new NixosDeployError({
                host: "localhost",
                phase: "evaluate",
                what: `flake ${flake} does not provide ${attr}`,
                stderr,
                hint: list.length ? `it provides nixosConfigurations: ${list.join(", ")}` : "it provides no nixosConfigurations at all",
            });
        }
    }
    return new NixosDeployError({ host: "localhost", phase: "evaluate", what: `cannot evaluate ${ref}`, stderr });
}
