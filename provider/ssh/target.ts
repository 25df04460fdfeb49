/**
 * A target machine as the phases see it: one verified SSH connection at a time, commands that
 * fail with NixosDeployError (host, phase, command, exit code, stderr tail), sudo for non-root
 * users, and bounded waits for the machine to go down and come back.
 */
import { Readable } from "node:stream";
import type { ClientChannel } from "ssh2";
import { NixosDeployError } from "../errors";
import { Command, sh } from "./shell";
import { Deadline, drainedOrClosed, poll } from "../wait";
import { firstAccept } from "./port";
import { CommandTimeout, ConnectionDropped, ConnectionOptions, ExecOutput, HostKeyMismatchError, SshConnection, describeTarget, isAuthFailure } from "./connection";

export interface RunOptions {
    phase: string;
    stdin?: string | Buffer | Readable;
    /** Resolve with the output instead of throwing on a non-zero exit. */
    allowFailure?: boolean;
    timeoutMs?: number;
    /** What the command does, for the error message; defaults to the command itself. */
    what?: string;
    hint?: string;
    /** stdout carries a secret (key material): an error never quotes it. */
    secretOutput?: boolean;
}

export class Target {
    private conn?: SshConnection;

    constructor(public options: ConnectionOptions) {}

    get name(): string {
        return describeTarget(this.options);
    }

    /** The host key seen on the current connection. */
    get hostKey(): string {
        return this.conn?.hostKey ?? "";
    }

    get hostKeyFingerprint(): string {
        return this.conn?.hostKeyFingerprint ?? "";
    }

    async connect(phase: string): Promise<SshConnection> {
        if (!this.conn) this.conn = await SshConnection.open(this.options, phase);
        return this.conn;
    }

    close(): void {
        this.conn?.close();
        this.conn = undefined;
    }

    /**
     * How sudo runs for a login user other than root: "nopasswd", or "password" when sudo asks for
     * one and connection.password is known. Found out once per Target.
     */
    private sudo?: "nopasswd" | "password";

    private async sudoMode(conn: SshConnection): Promise<"nopasswd" | "password"> {
        if (!this.sudo) {
            const probe = await conn.exec("sudo -n true", {});
            this.sudo = probe.code !== 0 && this.options.password !== undefined ? "password" : "nopasswd";
        }
        return this.sudo;
    }

    /**
     * Runs a shell command as root (through sudo when logged in as another user). A sudo password
     * goes in as the first line of the command's stdin (sudo -S), never on a command line; -k makes
     * sudo always read it, so it can never leak into the command's own input.
     */
    async run(cmd: Command, o: RunOptions): Promise<ExecOutput> {
        const command = cmd.text;
        const conn = await this.connect(o.phase);
        const user = this.options.user ?? "root";
        let full = command;
        let stdin = o.stdin;
        if (user !== "root") {
            if ((await this.sudoMode(conn)) === "password") {
                full = sh`sudo -k -S -p '' sh -c ${command}`.text;
                stdin = withFirstLine(`${this.options.password}\n`, stdin);
            } else {
                full = sh`sudo -n sh -c ${command}`.text;
            }
        }
        let r: ExecOutput;
        try {
            r = await execWithStdin(conn, full, { ...o, stdin });
        } catch (e) {
            this.close();
            if (e instanceof CommandTimeout) {
                throw new NixosDeployError({
                    host: this.name,
                    phase: o.phase,
                    what: `${o.what ?? "running a command"}: timed out after ${Math.round(e.ms / 1000)} s`,
                    command,
                    cause: e,
                    hint: "the command may still be running on the target; the next run checks what it finished before repeating it",
                });
            }
            throw new NixosDeployError({ host: this.name, phase: o.phase, what: `${o.what ?? "running a command"}: the connection failed: ${(e as Error).message}`, command, cause: e });
        }
        if (r.code !== 0 && !o.allowFailure) {
            throw new NixosDeployError({
                host: this.name,
                phase: o.phase,
                what: o.what ? `${o.what} (exit ${r.code ?? r.signal})` : `\`${command.length > 120 ? command.slice(0, 117) + "..." : command}\` exited ${r.code ?? r.signal}`,
                command,
                exitCode: r.code,
                signal: r.signal,
                stderr: o.secretOutput ? r.stderr : r.stderr || r.stdout,
                hint:
                    o.hint ??
                    (user !== "root" && /sudo: a password is required/.test(r.stderr)
                        ? `${user} needs passwordless sudo on the target, or set connection.password to the sudo password`
                        : user !== "root" && /incorrect password|try again/i.test(r.stderr)
                          ? `sudo refused connection.password for ${user}`
                          : undefined),
            });
        }
        return r;
    }

    /** Waits until the current connection drops (the machine went down), at most timeoutS seconds. */
    async waitForDisconnect(phase: string, timeoutS: number): Promise<void> {
        const conn = this.conn;
        if (!conn) return;
        const closed = new Promise<void>((resolve) => {
            conn.client.once("close", () => resolve());
            conn.client.once("end", () => resolve());
        });
        const timer = new Promise<"timeout">((r) => setTimeout(() => r("timeout"), timeoutS * 1000).unref());
        const res = await Promise.race([closed, timer]);
        this.close();
        if (res === "timeout") {
            throw new NixosDeployError({ host: this.name, phase, what: `the machine did not go down within ${timeoutS} s` });
        }
    }

    /**
     * Reconnects until the machine answers SSH again, at most timeoutS seconds. A host-key mismatch
     * is final: it is never retried.
     */
    async reconnect(phase: string, timeoutS: number, changes: Partial<ConnectionOptions> = {}): Promise<void> {
        this.close();
        this.options = { ...this.options, ...changes };
        const deadline = new Deadline(timeoutS);
        let last: unknown;
        this.conn = await poll(deadline, { intervalMs: 50, factor: 2, maxIntervalMs: 1000 }, async () => {
            // Direct connections wait for the port first, so a machine coming back is seen at once.
            const sock = this.options.proxy ? undefined : await firstAccept(this.options.host, this.options.port ?? 22, deadline);
            if (sock instanceof Error) {
                last = sock;
                return undefined;
            }
            try {
                return await SshConnection.open({ ...this.options, dialErrorLimit: 1, perDialTimeout: Math.min(this.options.perDialTimeout ?? 15, deadline.leftS) }, phase, sock);
            } catch (e) {
                if (e instanceof HostKeyMismatchError) throw e;
                if (isAuthFailure(e)) throw e;
                last = e;
                return undefined;
            }
        });
        if (this.conn) return;
        throw new NixosDeployError({
            host: describeTarget(this.options),
            phase,
            what: `the machine did not answer SSH again within ${timeoutS} s`,
            cause: last,
            hint: last instanceof Error ? `last attempt: ${last.message.split("\n")[0]}` : undefined,
        });
    }
}

/** stdin with `line` in front of it, whatever form stdin takes. */
function withFirstLine(line: string, stdin: RunOptions["stdin"]): RunOptions["stdin"] {
    if (stdin === undefined) return line;
    if (typeof stdin === "string") return line + stdin;
    if (Buffer.isBuffer(stdin)) return Buffer.concat([Buffer.from(line), stdin]);
    return Readable.from(
        (async function* () {
            yield Buffer.from(line);
            yield* stdin;
        })(),
    );
}

function execWithStdin(conn: SshConnection, command: string, o: RunOptions): Promise<ExecOutput> {
    const stdin = o.stdin;
    if (stdin === undefined || typeof stdin === "string" || Buffer.isBuffer(stdin)) {
        return conn.exec(command, { stdin, timeoutMs: o.timeoutMs });
    }
    // A stream: pipe it into the channel. Whichever side fails first ends the other: a command that
    // exits (or a connection that drops) stops the writing and destroys the source stream, so a
    // local producer (nix-store --export) is never left blocked on a pipe nobody reads.
    return new Promise((resolve, reject) => {
        let settled = false;
        let channel: ClientChannel | undefined;
        const finish = (e: Error | undefined, r?: ExecOutput) => {
            if (settled) return;
            settled = true;
            if (timer) clearTimeout(timer);
            conn.client.removeListener("close", onGone);
            stdin.destroy();
            if (e) {
                channel?.close();
                reject(e);
            } else resolve(r!);
        };
        const onGone = () => finish(new ConnectionDropped());
        conn.client.once("close", onGone);
        const timer = o.timeoutMs ? setTimeout(() => finish(new CommandTimeout(o.timeoutMs!)), o.timeoutMs) : undefined;
        conn.startCommand(command, (err, ch) => {
            if (err) return finish(err);
            if (settled) return void ch.close();
            channel = ch;
            const out: Buffer[] = [];
            const errb: Buffer[] = [];
            ch.on("data", (d: Buffer) => out.push(d));
            ch.stderr.on("data", (d: Buffer) => errb.push(d));
            ch.on("close", (code: number | null, signal: string | null) => {
                finish(undefined, { stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(errb).toString(), code: code ?? null, signal: signal ?? null });
            });
            // Explicit writes with backpressure, then EOF once everything is written.
            (async () => {
                for await (const chunk of stdin) {
                    if (settled) return;
                    if (!ch.write(chunk)) await drainedOrClosed(ch);
                }
                if (!settled) ch.end();
            })().catch((e: Error) => finish(e));
        });
    });
}

