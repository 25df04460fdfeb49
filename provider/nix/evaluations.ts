/**
 * Evaluations shared, batched and skipped. A flake is evaluated purely: what it evaluates to
 * depends only on its locked source (`nix flake metadata`: the locked reference with its narHash,
 * and the lock of every input) and the attribute. So, per fingerprint of those:
 * - a check whose fingerprint equals the one recorded at the last check reuses the recorded paths,
 *   and runs no `nix eval` at all;
 * - one provider process evaluates a fingerprint once (NixosInstall and NixosRebuild of a machine
 *   share it, and so do checks that run at the same time);
 * - the nixosConfigurations of one flake asked for together are evaluated in one `nix eval`.
 * A flake with an unlocked input, and non-flake sources (impure: `<nixpkgs>`, files), are
 * evaluated every time.
 */
import { createHash } from "node:crypto";
import type { Source } from "../schema/source";
import { configurationName, evaluate, evaluateConfigurations, flakeAttr, SystemPaths } from "./eval";
import { limitEvaluation } from "./limit";
import { runLocal } from "./local";

export interface Evaluated {
    paths: SystemPaths;
    /** The fingerprint of the flake and attribute, when the flake is locked; record it for the next check. */
    key?: string;
}

/** What the last check recorded: its fingerprint and the paths it evaluated. */
export interface Recorded {
    key?: string;
    paths?: SystemPaths;
}

/** How long checks that arrive together wait for each other before their flake is evaluated. */
const BATCH_WINDOW_MS = 25;

const memo = new Map<string, Promise<SystemPaths>>();
const fingerprints = new Map<string, Promise<LockedFlake | undefined>>();
const batches = new Map<string, Batch>();

export async function evaluateSource(source: Source, cwd: string, env: NodeJS.ProcessEnv, recorded: Recorded = {}): Promise<Evaluated> {
    if (source.kind !== "flake") return { paths: await limitEvaluation(() => evaluate(source, cwd, env)) };
    const { flake, attr } = flakeAttr(source.flake);
    const locked = await lockedFlake(flake, cwd, env);
    if (!locked) return { paths: await limitEvaluation(() => evaluate(source, cwd, env)) };
    const key = createHash("sha256").update(JSON.stringify([locked.fingerprint, attr])).digest("hex").slice(0, 32);
    if (recorded.key === key && recorded.paths?.toplevel) return { paths: recorded.paths, key };
    let paths = memo.get(key);
    if (!paths) {
        const name = configurationName(attr);
        paths = name !== undefined ? batchFor(flake, locked.fingerprint, cwd, env).add(name) : limitEvaluation(() => evaluate(source, cwd, env));
        memo.set(key, paths);
        // A failure is not kept: the next check tries again (and reports its own error).
        paths.catch(() => memo.delete(key));
    }
    return { paths: await paths, key };
}

interface LockedFlake {
    fingerprint: string;
}

/** The locked flake's fingerprint, or undefined when some input is not locked. One `nix flake metadata` per flake at a time. */
function lockedFlake(flake: string, cwd: string, env: NodeJS.ProcessEnv): Promise<LockedFlake | undefined> {
    const id = JSON.stringify([cwd, flake]);
    let p = fingerprints.get(id);
    if (!p) {
        p = readLock(flake, cwd, env);
        fingerprints.set(id, p);
        // Only shared while it runs: the flake may be edited between two checks.
        void p.finally(() => fingerprints.delete(id));
    }
    return p;
}

interface Metadata {
    locked?: { narHash?: string };
    locks?: { nodes?: Record<string, { locked?: unknown; inputs?: unknown }>; root?: string };
}

async function readLock(flake: string, cwd: string, env: NodeJS.ProcessEnv): Promise<LockedFlake | undefined> {
    // A failure here (a flake that does not exist) is left to the evaluation, which explains it.
    const r = await runLocal("nix", ["flake", "metadata", "--json", flake], { cwd, env });
    if (r.code !== 0) return undefined;
    const m = JSON.parse(r.stdout) as Metadata;
    if (!m.locked?.narHash) return undefined;
    const nodes = m.locks?.nodes ?? {};
    const unlocked = Object.entries(nodes).some(([name, n]) => name !== (m.locks?.root ?? "root") && !n.locked);
    if (unlocked) return undefined;
    return { fingerprint: JSON.stringify([m.locked, m.locks]) };
}

function batchFor(flake: string, fingerprint: string, cwd: string, env: NodeJS.ProcessEnv): Batch {
    const id = JSON.stringify([cwd, fingerprint]);
    let b = batches.get(id);
    if (!b) {
        b = new Batch(flake, cwd, env, () => batches.delete(id));
        batches.set(id, b);
    }
    return b;
}

/** The configurations of one locked flake asked for within BATCH_WINDOW_MS, evaluated in one process. */
class Batch {
    private readonly waiting = new Map<string, { resolve: (p: SystemPaths) => void; reject: (e: unknown) => void }[]>();

    constructor(private readonly flake: string, private readonly cwd: string, private readonly env: NodeJS.ProcessEnv, private readonly closed: () => void) {
        setTimeout(() => void this.run(), BATCH_WINDOW_MS);
    }

    add(name: string): Promise<SystemPaths> {
        return new Promise((resolve, reject) => {
            const list = this.waiting.get(name) ?? [];
            list.push({ resolve, reject });
            this.waiting.set(name, list);
        });
    }

    private async run(): Promise<void> {
        this.closed();
        const names = [...this.waiting.keys()];
        const all = names.length > 1 ? await limitEvaluation(() => evaluateConfigurations(this.flake, names, this.cwd, this.env)).catch(() => undefined) : undefined;
        // One alone, or a joint evaluation that failed: each is evaluated alone, so each check gets its own error.
        for (const name of names) {
            const one = all ? Promise.resolve(all[name]) : limitEvaluation(() => evaluate({ kind: "flake", flake: `${this.flake}#${name}` }, this.cwd, this.env));
            one.then(
                (p) => this.waiting.get(name)!.forEach((w) => w.resolve(p)),
                (e: unknown) => this.waiting.get(name)!.forEach((w) => w.reject(e)),
            );
        }
    }
}
