/**
 * Every bounded wait of the provider: a Deadline, and `poll`, which retries an attempt with a
 * backoff until it yields a value or the deadline passes. Nothing waits without a bound.
 */
export class Deadline {
    private readonly at: number;

    constructor(readonly seconds: number) {
        this.at = Date.now() + seconds * 1000;
    }

    get passed(): boolean {
        return Date.now() >= this.at;
    }

    get leftMs(): number {
        return Math.max(0, this.at - Date.now());
    }

    /** Whole seconds left, at least 1: the bound to give a nested wait. */
    get leftS(): number {
        return Math.max(1, Math.ceil(this.leftMs / 1000));
    }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export interface PollOptions {
    /** Pause after the first failed attempt. */
    intervalMs: number;
    /** Each pause is this factor longer than the last, up to maxIntervalMs. Default: 1. */
    factor?: number;
    maxIntervalMs?: number;
    /** Give up after this many attempts even before the deadline. */
    attempts?: number;
}

/**
 * Calls `attempt` until it returns something other than undefined, and returns that; undefined
 * once the deadline has passed (or the attempts are used up). The first attempt always runs; none
 * starts after the deadline. An attempt that throws ends the wait.
 */
export async function poll<T>(deadline: Deadline, o: PollOptions, attempt: (n: number) => Promise<T | undefined>): Promise<T | undefined> {
    let interval = o.intervalMs;
    for (let n = 1; ; n++) {
        const v = await attempt(n);
        if (v !== undefined) return v;
        if (deadline.passed || (o.attempts !== undefined && n >= o.attempts)) return undefined;
        // +1 ms: a pause cut short at the deadline ends after it, never a timer tick before.
        await sleep(Math.min(interval, deadline.leftMs + 1));
        // No attempt after the deadline: a late success (a connection that gets in after a rollback
        // began) would be worse than none.
        if (deadline.passed) return undefined;
        interval = Math.min(o.maxIntervalMs ?? Number.POSITIVE_INFINITY, interval * (o.factor ?? 1));
    }
}

/** Waits for a stream to take more input, or to close; leaves no listener behind (a long stream waits thousands of times). */
export function drainedOrClosed(s: NodeJS.EventEmitter): Promise<void> {
    return new Promise((resolve) => {
        const done = () => {
            s.removeListener("drain", done);
            s.removeListener("close", done);
            resolve();
        };
        s.once("drain", done);
        s.once("close", done);
    });
}
