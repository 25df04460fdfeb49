/** Building (realising) evaluated derivations on the deployer. */
import { NixosDeployError } from "../errors";
import { mustLocal } from "./local";

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

/** The closure of paths in the local store, dependencies first. */
export async function closureOf(paths: string[], env: NodeJS.ProcessEnv = process.env): Promise<string[]> {
    const out = await mustLocal("copy", "cannot compute the closure", "nix-store", ["--query", "--requisites", ...paths], { env });
    return out.trim().split("\n").filter(Boolean);
}
