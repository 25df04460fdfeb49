/**
 * Getting a system's paths onto the target, by `buildOn`: built on the deployer and copied
 * ("auto", "local"), or built by the target's own Nix from the derivations ("remote"), like
 * nixos-anywhere's --build-on remote. A store under `root` (/mnt during an install) receives the
 * paths from the target's own store after a remote build.
 */
import { NixosDeployError } from "../errors";
import { sh } from "../ssh/shell";
import { Target } from "../ssh/target";
import type { Cache } from "./cache";
import { copyClosure } from "./copy";

export type BuildOn = "auto" | "local" | "remote";

export interface Deliverable {
    out: string;
    /** The derivation; absent for prebuilt store paths, which are always copied. */
    drv?: string;
}

export interface DeliverOptions {
    phase: string;
    buildOn: BuildOn;
    root?: string;
    substitute: boolean;
    cache?: Cache;
    log: (line: string) => void;
    env?: NodeJS.ProcessEnv;
    timeoutS?: number;
}

/** True when the deployer must build `items` itself before delivering them. */
export function buildsLocally(buildOn: BuildOn, items: Deliverable[]): boolean {
    return buildOn !== "remote" || items.some((i) => !i.drv);
}

export async function deliver(target: Target, items: Deliverable[], o: DeliverOptions): Promise<{ copied: number }> {
    if (buildsLocally(o.buildOn, items)) {
        const r = await copyClosure(target, items.map((i) => i.out), { phase: o.phase, root: o.root, substitute: o.substitute, cache: o.cache, log: o.log, env: o.env, timeoutS: o.timeoutS });
        return { copied: r.copied };
    }
    const drvs = items.map((i) => i.drv!);
    // The derivations and their sources; the target's substituters may still provide outputs.
    await copyClosure(target, drvs, { phase: o.phase, substitute: false, log: (l) => o.log(`derivations: ${l}`), env: o.env, timeoutS: o.timeoutS });
    o.log(`building ${drvs.length} derivation(s) on the target`);
    const started = Date.now();
    const r = await target.run(sh`xargs -r nix-store --realise`, {
        phase: o.phase,
        stdin: drvs.join("\n") + "\n",
        what: "building on the target failed",
        timeoutMs: (o.timeoutS ?? 3600) * 1000,
    });
    const built = new Set(r.stdout.trim().split("\n"));
    for (const i of items) {
        if (!built.has(i.out)) throw new NixosDeployError({ host: target.name, phase: o.phase, what: `building ${i.drv} on the target did not produce ${i.out}` });
    }
    o.log(`built on the target in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    if (o.root) await copyWithinTarget(target, items.map((i) => i.out), o.root, o.phase);
    return { copied: 0 };
}

/** Copies the closure of `paths` from the target's own store into the store under `root`. */
async function copyWithinTarget(target: Target, paths: string[], root: string, phase: string): Promise<void> {
    await target.run(
        sh`missing=$(xargs -r nix-store --query --requisites | xargs -r nix-store --store ${root} --check-validity --print-invalid) && { [ -z "$missing" ] || nix-store --export $missing | nix-store --store ${root} --import >/dev/null; }`,
        { phase, stdin: paths.join("\n") + "\n", what: `copying the built system into ${root}` },
    );
}
