/** Building (realising) evaluated derivations on the deployer. */
import { NixosDeployError } from "../errors";
import { mustLocal, runLocal } from "./local";

/** Builds the derivations and checks each produces the output path that preview showed. */
export async function realise(drvs: { drv: string; out: string }[], env: NodeJS.ProcessEnv = process.env): Promise<void> {
    const todo = drvs.filter((d) => d.drv);
    if (todo.length === 0) return;
    const out = await mustLocal("build", "cannot build the system", "nix-store", ["--realise", ...todo.map((d) => d.drv)], { env });
    const built = new Set(out.trim().split("\n"));
    for (const d of todo) {
        if (!built.has(d.out)) {
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

/** The closure of paths in the local store, dependencies first. */
export async function closureOf(paths: string[], env: NodeJS.ProcessEnv = process.env): Promise<string[]> {
    const out = await mustLocal("copy", "cannot compute the closure", "nix-store", ["--query", "--requisites", ...paths], { env });
    return out.trim().split("\n").filter(Boolean);
}
