/**
 * Getting a system's paths onto the target, by `buildOn`: built on the deployer and copied
 * ("auto", "local"), or built by the target's own Nix from the derivations ("remote"), like
 * nixos-anywhere's --build-on remote. A store under `root` (/mnt during an install) receives the
 * paths from the target's own store after a remote build.
 */
import { NixosDeployError } from "../errors";
import { Command, sh } from "../ssh/shell";
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

/**
 * The target's script that copies the closure of the paths on its stdin from its own store into the
 * store under `root`. The lists stay in files and reach nix-store through xargs, which splits them
 * under ARG_MAX; each of xargs' chunks is one export | import, in the closure's order, so every
 * chunk's references are valid in `root` by the time it is imported.
 */
export function copyWithinTargetScript(root: string): Command {
    return sh`t=$(mktemp -d) && trap 'rm -rf "$t"' EXIT && xargs -r nix-store --query --requisites > "$t/all" && xargs -r nix-store --store ${root} --check-validity --print-invalid < "$t/all" > "$t/missing" && xargs -r sh -c 'r=$1; shift; nix-store --export "$@" | nix-store --store "$r" --import >/dev/null' sh ${root} < "$t/missing"`;
}

/** Copies the closure of `paths` from the target's own store into the store under `root`. */
async function copyWithinTarget(target: Target, paths: string[], root: string, phase: string): Promise<void> {
    await target.run(copyWithinTargetScript(root), { phase, stdin: paths.join("\n") + "\n", what: `copying the built system into ${root}` });
}
