/**
 * The one error type of pulumi-nixos. Its message reads "<phase> on <host> failed: <what>",
 * followed by the tail of stderr and a hint where one is known. docs/errors.md lists them.
 */

const ANSI = /\u001b\[[0-9;?]*[ -\/]*[@-~]/g;

/** The last `lines` lines of text, with ANSI escapes removed. */
export function tail(text: string, lines = 40): string {
    const all = text.replace(ANSI, "").replace(/\s+$/, "").split("\n");
    return all.slice(-lines).join("\n");
}

export interface NixosDeployErrorOptions {
    host: string;
    phase: string;
    /** What failed, in one sentence without a trailing period. */
    what: string;
    command?: string;
    exitCode?: number | null;
    signal?: string | null;
    stderr?: string;
    hint?: string;
    cause?: unknown;
}

export class NixosDeployError extends Error {
    readonly host: string;
    readonly phase: string;
    readonly command?: string;
    readonly exitCode?: number | null;
    readonly signal?: string | null;
    readonly stderrTail?: string;
    readonly hint?: string;
    /** The first line of the message, without stderr or hint. */
    readonly shortMessage: string;

    constructor(o: NixosDeployErrorOptions) {
        const short = `${o.phase} on ${o.host} failed: ${o.what}`;
        const stderrTail = o.stderr ? tail(o.stderr) : undefined;
        const parts = [short];
        if (stderrTail) parts.push(stderrTail.split("\n").map((l) => "    " + l).join("\n"));
        if (o.hint) parts.push(`hint: ${o.hint}`);
        super(parts.join("\n"), o.cause !== undefined ? { cause: o.cause } : undefined);
        this.name = "NixosDeployError";
        this.host = o.host;
        this.phase = o.phase;
        this.command = o.command;
        this.exitCode = o.exitCode;
        this.signal = o.signal;
        this.stderrTail = stderrTail;
        this.hint = o.hint;
        this.shortMessage = short;
    }
}
