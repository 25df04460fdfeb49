/**
 * Bounds Nix evaluations and builds per provider process. All dynamic resources of a stack share
 * one provider process, so twenty machines do not start twenty evaluations on a two-core box.
 */
import * as os from "node:os";

/** At most `limit` at once. A freed slot passes straight to the next waiter, so no newcomer can take it in between. */
export class Semaphore {
    private active = 0;
    private readonly queue: (() => void)[] = [];
    constructor(readonly limit: number) {}

    async run<T>(fn: () => Promise<T>): Promise<T> {
        if (this.active >= this.limit) await new Promise<void>((r) => this.queue.push(r));
        else this.active++;
        try {
            return await fn();
        } finally {
            const next = this.queue.shift();
            if (next) next();
            else this.active--;
        }
    }
}

/** Evaluation is memory- and CPU-heavy (a NixOS evaluation takes about 1 GiB and one core). */
export function evaluationLimit(): number {
    const fromEnv = Number(process.env.PULUMI_NIXOS_MAX_EVALUATIONS);
    if (Number.isInteger(fromEnv) && fromEnv > 0) return fromEnv;
    return Math.max(1, Math.floor(os.cpus().length / 2));
}

let evaluations: Semaphore | undefined;
let builds: Semaphore | undefined;

export function limitEvaluation<T>(fn: () => Promise<T>): Promise<T> {
    evaluations ??= new Semaphore(evaluationLimit());
    return evaluations.run(fn);
}

/** Builds run one at a time: Nix parallelises inside a build already. */
export function limitBuild<T>(fn: () => Promise<T>): Promise<T> {
    builds ??= new Semaphore(1);
    return builds.run(fn);
}
