/** Building (realising) evaluated derivations on the deployer. */
import { NixosDeployError } from "../errors";
import { mustLocal, runLocal } from "./local";

/**
 * Derivations this provider process built, by derivation: a fleet's machines share one build, and
 * 49 machines on one system do not queue 49 `nix-store --realise` behind the build lock.
 */
const built = new Map<string, Promise<void>>();

/** Builds the derivations (each once per process) and checks each produces the output path that preview showed. */
export async function realise(drvs: { drv: string; out: string }[], env: NodeJS.ProcessEnv = process.env): Promise<void> {
    const todo = drvs.filter((d) => d.drv);
    if (todo.length === 0) return;
    const id = JSON.stringify(todo.map((d) => [d.drv, d.out]).sort());
    let p = built.get(id);
    if (!p) {
        p = build(todo, env);
        built.set(id, p);
        p.catch(() => built.delete(id));
    }
    return p;
}

async function build(todo: { drv: string; out: string }[], env: NodeJS.ProcessEnv): Promise<void> {
    const out = await mustLocal("build", "cannot build the system", "nix-store", ["--realise", ...todo.map((d) => d.drv)], { env });
    const outs = new Set(out.trim().split("\n"));
    for (const d of todo) {
        if (!outs.has(d.out)) {
            throw new NixosDeployError({ host: "localhost", phase: "build", what: `building ${d.drv} did not produce ${d.out}` });
        }
    }
}

/**
 * Prebuilt paths (storePaths) must be in the local store before anything changes on the target:
 * they are copied from here.
 */
export async function mustBeLocal(paths: string[], env: NodeJS.ProcessEnv = process.env): Promise<void> {
    for (const p of paths) {
        const r = await runLocal("nix-store", ["--check-validity", p], { env });
        if (r.code !== 0) {
            throw new NixosDeployError({ host: "localhost", phase: "build", what: `${p} is not in the local Nix store`, hint: "build the store paths (or copy them here) before pulumi up" });
        }
    }
}

/** Closures asked for in this process: a store path's closure never changes. */
const closures = new Map<string, Promise<string[]>>();

/** The closure of paths in the local store, dependencies first. */
export function closureOf(paths: string[], env: NodeJS.ProcessEnv = process.env): Promise<string[]> {
    const id = JSON.stringify([...paths].sort());
    let p = closures.get(id);
    if (!p) {
        p = mustLocal("copy", "cannot compute the closure", "nix-store", ["--query", "--requisites", ...paths], { env }).then((out) => out.trim().split("\n").filter(Boolean));
        closures.set(id, p);
        p.catch(() => closures.delete(id));
    }
    return p;
}
