/**
 * Local processes in a pipe to the target: each one's exit, whether it failed on its own (not
 * stopped by us), its stderr; and the join of a source, its progress and a compressor.
 */
import { spawn } from "node:child_process";
import { PassThrough, Readable } from "node:stream";
import type { CopyProgress } from "./progress";

export interface LocalProcess {
    child: ReturnType<typeof spawn>;
    exited: Promise<number | null>;
    /** Ends it (SIGTERM) and drops its unread output, so that "close" can come. */
    stop(): void;
    failed(): boolean;
    stderr(): string;
}

export function localProcess(cmd: string, args: string[], env: NodeJS.ProcessEnv | undefined, stdin: "ignore" | "pipe"): LocalProcess {
    const child = spawn(cmd, args, { env: env ?? process.env, stdio: [stdin, "pipe", "pipe"] });
    const stderr: Buffer[] = [];
    child.stderr!.on("data", (d: Buffer) => stderr.push(d));
    let stopped = false;
    let code: number | null | undefined;
    const exited = new Promise<number | null>((resolve, reject) => {
        child.on("error", reject);
        child.on("close", (c) => resolve((code = c)));
    });
    // Its output may sit unread behind a stalled pipe: dropped, so that "close" can come.
    const stop = () => {
        if (child.exitCode === null && child.signalCode === null) {
            stopped = true;
            child.kill("SIGTERM");
        }
        child.stdout!.destroy();
    };
    return { child, exited, stop, failed: () => !stopped && code !== undefined && code !== 0, stderr: () => Buffer.concat(stderr).toString() };
}

/** source | progress | [compressor]: returns what the target reads. */
export function plumb(source: Readable, compressor: LocalProcess | undefined, progress: CopyProgress): PassThrough {
    // Consume the source at once: Node resumes (and so discards) a child's unread stdout when it exits.
    const stream = new PassThrough();
    source.pipe(progress);
    if (!compressor) return progress.pipe(stream);
    compressor.child.stdin!.on("error", () => undefined);
    progress.pipe(compressor.child.stdin!);
    progress.countWire(compressor.child.stdout!);
    return compressor.child.stdout!.pipe(stream);
}
