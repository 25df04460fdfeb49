/**
 * Evaluations shared, batched and skipped. A flake is evaluated purely: what it evaluates to
 * depends only on its locked source (`nix flake metadata`: the locked reference with its narHash
 * and lastModified, and the lock of every input) and the attribute. So, per fingerprint of those:
 * - a check whose fingerprint equals the one recorded at the last check reuses the recorded paths,
 *   and runs no `nix eval` at all;
 * - one provider process evaluates a fingerprint once (NixosInstall and NixosRebuild of a machine
 *   share it, and so do checks that run at the same time);
 * - configurations of one flake are evaluated together in one `nix eval`: those asked for at the
 *   same time, and those this deployer evaluated before (siblings.ts), since the engine checks
 *   one resource at a time.
 * A flake with an unlocked input, and non-flake sources (impure: `<nixpkgs>`, files), are
 * evaluated every time.
 */
import { createHash } from "node:crypto";
import type { Source } from "../schema/source";
import { configurationName, evaluate, evaluateConfigurations, flakeAttr, SystemPaths } from "./eval";
import { limitEvaluation } from "./limit";
import { runLocal } from "./local";
import { forget, remember, rememberedSiblings } from "./siblings";

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
const BATCH_WINDOW_MS = 10;
/**
 * A flake's lock is read again when it was last read longer ago than this: the engine's checks of
 * one preview come one after another, and one `nix flake metadata` each would add up.
 */
export const LOCK_REUSE_MS = 2000;

const memo = new Map<string, Promise<SystemPaths>>();
const locks = new Map<string, { at: number; lock: Promise<string | undefined> }>();
const batches = new Map<string, Batch>();

const keyOf = (fingerprint: string, attr: string) => createHash("sha256").update(JSON.stringify([fingerprint, attr])).digest("hex").slice(0, 32);
/** One attribute, one spelling: "#web" and "#nixosConfigurations.web" share their evaluation. */
const attrOf = (name: string | undefined, attr: string) => (name !== undefined ? `nixosConfigurations.${JSON.stringify(name)}` : attr);

export async function evaluateSource(source: Source, cwd: string, env: NodeJS.ProcessEnv, recorded: Recorded = {}): Promise<Evaluated> {
    if (source.kind !== "flake") return { paths: await limitEvaluation(() => evaluate(source, cwd, env)) };
    const { flake, attr } = flakeAttr(source.flake);
    const fingerprint = await lockedFingerprint(flake, cwd, env);
    if (!fingerprint) return { paths: await limitEvaluation(() => evaluate(source, cwd, env)) };
    const name = configurationName(attr);
    const key = keyOf(fingerprint, attrOf(name, attr));
    if (name !== undefined) remember(cwd, flake, name, env);
    if (recorded.key === key && recorded.paths?.toplevel) return { paths: recorded.paths, key };
    // Evaluated (or being evaluated) in this process; one evaluated ahead may have been dropped.
    const known = await memo.get(key)?.catch(() => undefined);
    if (known) return { paths: known, key };
    const paths = name !== undefined ? batchFor(flake, fingerprint, cwd, env, name).add(name) : limitEvaluation(() => evaluate(source, cwd, env));
    keep(key, paths);
    return { paths: await paths, key };
}

/** Remembers an evaluation for the process; a failure is not kept: the next check tries again. */
function keep(key: string, paths: Promise<SystemPaths>): void {
    memo.set(key, paths);
    paths.catch(() => memo.delete(key));
}

/** The locked flake's fingerprint, or undefined when some input is not locked. */
function lockedFingerprint(flake: string, cwd: string, env: NodeJS.ProcessEnv): Promise<string | undefined> {
    const id = JSON.stringify([cwd, flake]);
    const known = locks.get(id);
    if (known && Date.now() - known.at < LOCK_REUSE_MS) return known.lock;
    const lock = readLock(flake, cwd, env);
    locks.set(id, { at: Date.now(), lock });
    return lock;
}

interface Metadata {
    locked?: { narHash?: string };
    locks?: { nodes?: Record<string, { locked?: unknown }>; root?: string };
}

async function readLock(flake: string, cwd: string, env: NodeJS.ProcessEnv): Promise<string | undefined> {
    // A failure here (a flake that does not exist) is left to the evaluation, which explains it.
    const r = await runLocal("nix", ["flake", "metadata", "--json", flake], { cwd, env });
    if (r.code !== 0) return undefined;
    const m = JSON.parse(r.stdout) as Metadata;
    if (!m.locked?.narHash) return undefined;
    const root = m.locks?.root ?? "root";
    const unlocked = Object.entries(m.locks?.nodes ?? {}).some(([node, n]) => node !== root && !n.locked);
    return unlocked ? undefined : JSON.stringify([m.locked, m.locks]);
}

/** The open batch of this locked flake, or a new one holding the configurations remembered with `name`. */
function batchFor(flake: string, fingerprint: string, cwd: string, env: NodeJS.ProcessEnv, name: string): Batch {
    const id = JSON.stringify([cwd, fingerprint]);
    let b = batches.get(id);
    if (!b) {
        b = new Batch(flake, cwd, env, () => batches.delete(id));
        batches.set(id, b);
        for (const sibling of rememberedSiblings(cwd, flake, name, env)) {
            const key = keyOf(fingerprint, attrOf(sibling, ""));
            if (!memo.has(key)) keep(key, b.add(sibling, true));
        }
    }
    return b;
}

interface Entry {
    /** Evaluated ahead of its check: a failure or absence is dropped, not reported. */
    ahead: boolean;
    waiters: { resolve: (p: SystemPaths) => void; reject: (e: unknown) => void }[];
}

/** Configurations of one locked flake evaluated in one process, BATCH_WINDOW_MS after the first asked. */
class Batch {
    private readonly entries = new Map<string, Entry>();

    constructor(private readonly flake: string, private readonly cwd: string, private readonly env: NodeJS.ProcessEnv, private readonly closed: () => void) {
        setTimeout(() => void this.run(), BATCH_WINDOW_MS);
    }

    add(name: string, ahead = false): Promise<SystemPaths> {
        return new Promise((resolve, reject) => {
            const e = this.entries.get(name) ?? { ahead, waiters: [] };
            e.ahead &&= ahead;
            e.waiters.push({ resolve, reject });
            this.entries.set(name, e);
        });
    }

    private async run(): Promise<void> {
        this.closed();
        const names = [...this.entries.keys()];
        const all = names.length > 1 ? await limitEvaluation(() => evaluateConfigurations(this.flake, names, this.cwd, this.env)).catch(() => undefined) : undefined;
        for (const [name, e] of this.entries) {
            const done = all?.[name];
            if (!done && e.ahead) {
                // Gone from the flake, or failing: not evaluated ahead again until it is asked for.
                forget(this.cwd, this.flake, name, this.env);
                e.waiters.forEach((w) => w.reject(new Error(`${name} was not evaluated ahead`)));
                continue;
            }
            // One alone, or a joint evaluation that failed: each is evaluated alone, so each check gets its own error.
            const one = done ? Promise.resolve(done) : limitEvaluation(() => evaluate({ kind: "flake", flake: `${this.flake}#${name}` }, this.cwd, this.env));
            one.then(
                (p) => e.waiters.forEach((w) => w.resolve(p)),
                (err: unknown) => e.waiters.forEach((w) => w.reject(err)),
            );
        }
    }
}
