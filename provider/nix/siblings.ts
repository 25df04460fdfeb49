/**
 * Which configurations of a flake this deployer evaluated before, remembered on its disk
 * (`$XDG_CACHE_HOME/pulumi-nixos/configurations.json`, default ~/.cache). The engine checks
 * resources one at a time, so the machines of a fleet never ask together; when the first of them
 * asks, the others it remembers are evaluated in the same `nix eval`, and their checks find the
 * result ready. A name not asked for in 14 days is forgotten, and so is one that made the joint
 * evaluation fail (until it is asked for again).
 */
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

const FORGET_AFTER_MS = 14 * 86400_000;
/** At most this many configurations in one evaluation: a NixOS evaluation takes hundreds of MiB. */
export const MAX_SIBLINGS = 24;

type Memory = Record<string, Record<string, number>>;

function file(env: NodeJS.ProcessEnv): string {
    const base = env.XDG_CACHE_HOME || path.join(env.HOME || os.homedir(), ".cache");
    return path.join(base, "pulumi-nixos", "configurations.json");
}

function read(env: NodeJS.ProcessEnv): Memory {
    try {
        return JSON.parse(fs.readFileSync(file(env), "utf8")) as Memory;
    } catch {
        return {};
    }
}

/** A flake by a hash of where it is: a flake URL may carry a token, which has no place on the disk. */
const flakeId = (cwd: string, flake: string) => createHash("sha256").update(`${path.resolve(cwd)}\n${flake}`).digest("hex").slice(0, 32);

/** The configurations of `flake` asked for recently, newest first, without `except`. */
export function rememberedSiblings(cwd: string, flake: string, except: string, env: NodeJS.ProcessEnv): string[] {
    const seen = read(env)[flakeId(cwd, flake)] ?? {};
    return Object.entries(seen)
        .filter(([n, at]) => n !== except && Date.now() - at < FORGET_AFTER_MS)
        .sort((a, b) => b[1] - a[1])
        .slice(0, MAX_SIBLINGS - 1)
        .map(([n]) => n);
}

/**
 * The cache folder and its parent, one level at a time: Node's recursive mkdir never returns under
 * /proc (it retries ENOENT), and a cache folder whose parent is missing is only a slower run.
 */
function makeDirs(dir: string): void {
    for (const d of [path.dirname(dir), dir]) {
        try {
            fs.mkdirSync(d);
        } catch (e) {
            if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
        }
    }
}

/** Records that `name` of `flake` was asked for now. Best effort: a cache that cannot be written only costs speed. */
export function remember(cwd: string, flake: string, name: string, env: NodeJS.ProcessEnv): void {
    update(env, (memory) => {
        const id = flakeId(cwd, flake);
        memory[id] = { ...memory[id], [name]: Date.now() };
    });
}

/** Drops `name` of `flake` (it failed, or is gone, when evaluated ahead). */
export function forget(cwd: string, flake: string, name: string, env: NodeJS.ProcessEnv): void {
    update(env, (memory) => {
        delete memory[flakeId(cwd, flake)]?.[name];
    });
}

function update(env: NodeJS.ProcessEnv, change: (memory: Memory) => void): void {
    try {
        const memory = read(env);
        change(memory);
        const target = file(env);
        makeDirs(path.dirname(target));
        // Whole or not at all: another provider process may read it meanwhile.
        const tmp = `${target}.${process.pid}.tmp`;
        fs.writeFileSync(tmp, JSON.stringify(memory));
        fs.renameSync(tmp, target);
    } catch {
        // Best effort: a memory that cannot be written only costs speed.
    }
}
