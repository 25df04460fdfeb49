/**
 * Dialing a target over SSH: host-key verification on every connection, bounded retries, an
 * optional bastion, and command execution with exit codes. Secrets (keys, passwords) are handed
 * to ssh2 in memory only; they never reach argv, logs or errors.
 */
import type * as net from "node:net";
import { Client, ConnectConfig, ClientChannel } from "ssh2";
import { NixosDeployError } from "../errors";
import { Deadline, poll } from "../wait";
import { fingerprint, formatHostKey, parseHostKey } from "./hostkey";

/** A command ran past its bound (the remote process may still run). */
export class CommandTimeout extends Error {
    constructor(readonly ms: number) {
        super(`command timed out after ${ms} ms`);
    }
}

/** The connection went away while a command ran (a reboot, a reset, a network cut). */
export class ConnectionDropped extends Error {
    constructor() {
        super("the SSH connection closed before the command finished");
    }
}

/** A command that failed because its connection dropped, as Target.run reports it. */
export function isDropped(err: unknown): boolean {
    return err instanceof ConnectionDropped || (err instanceof NixosDeployError && err.cause instanceof ConnectionDropped);
}

export interface ConnectionOptions {
    host: string;
    port?: number;
    user?: string;
    privateKey?: string;
    privateKeyPassword?: string;
    password?: string;
    agentSocketPath?: string;
    /** Pinned host key; when unset the first key seen is trusted and reported. */
    hostKey?: string;
    /** Further keys accepted besides hostKey (a resumed install: the installer's, or the installed system's). */
    alsoAccept?: string[];
    proxy?: ConnectionOptions;
    /** Dial attempts before giving up; -1 retries until `deadline`. Default 10. */
    dialErrorLimit?: number;
    /** Seconds per dial attempt. Default 15. */
    perDialTimeout?: number;
}

export interface ExecOutput {
    stdout: string;
    stderr: string;
    code: number | null;
    signal: string | null;
}

export class HostKeyMismatchError extends NixosDeployError {
    constructor(host: string, phase: string, readonly expected: string, readonly offered: string) {
        super({
            host,
            phase,
            what: `the host key does not match: expected ${expected}, the host offered ${offered}`,
            hint: "if the machine was reinstalled on purpose, update connection.hostKey; otherwise something else answers at this address",
        });
    }
}

export function describeTarget(o: Pick<ConnectionOptions, "host" | "port" | "user">): string {
    return `${o.user ?? "root"}@${o.host}${o.port && o.port !== 22 ? ":" + o.port : ""}`;
}

/** How long dialErrorLimit: -1 keeps dialing: 10 minutes. */
export const UNLIMITED_DIAL_CEILING_MS = 600_000;

/** One verified SSH connection. */
export class SshConnection {
    /** The host key the server presented, "ssh-ed25519 AAAA…". */
    hostKey = "";
    hostKeyFingerprint = "";
    private constructor(readonly client: Client, readonly target: string, readonly hops: Client[]) {}

    /** `sock`, a socket already connected to the target, carries the first attempt (no bastion then). */
    static async open(o: ConnectionOptions, phase = "connect", sock?: net.Socket): Promise<SshConnection> {
        const limit = o.dialErrorLimit ?? 10;
        // -1 retries "without limit", as in @pulumi/command, but never past this ceiling.
        const deadline = new Deadline(UNLIMITED_DIAL_CEILING_MS / 1000);
        let lastErr: unknown;
        const conn = await poll(deadline, { intervalMs: 250, factor: 2, maxIntervalMs: 2000, attempts: limit < 0 ? undefined : limit }, async (n) => {
            try {
                return await SshConnection.dialOnce(o, phase, n === 1 ? sock : undefined);
            } catch (err) {
                if (err instanceof HostKeyMismatchError || isAuthFailure(err)) throw err;
                lastErr = err;
                return undefined;
            }
        });
        if (conn) return conn;
        throw lastErr;
    }

    private static async dialOnce(o: ConnectionOptions, phase: string, connected?: net.Socket): Promise<SshConnection> {
        const { sock, hops } = o.proxy ? await SshConnection.throughBastion(o, o.proxy, phase) : { sock: connected, hops: [] };
        const target = describeTarget(o);
        const keys = new HostKeyCheck(o, target, phase);
        const config: ConnectConfig = {
            host: o.host,
            port: o.port ?? 22,
            username: o.user ?? "root",
            privateKey: o.privateKey,
            passphrase: o.privateKeyPassword,
            password: o.password,
            agent: o.agentSocketPath,
            sock,
            readyTimeout: (o.perDialTimeout ?? 15) * 1000,
            keepaliveInterval: 5000,
            keepaliveCountMax: 3,
            // Verified before authentication: a wrong host never sees our key or password.
            hostVerifier: (key: Buffer) => keys.verify(key),
            algorithms: keys.algorithms(),
        };
        return SshConnection.handshake(config, target, phase, hops, keys);
    }

    /** A forwarded channel to the target through a bastion, and the bastion's own connections. */
    private static async throughBastion(o: ConnectionOptions, proxy: ConnectionOptions, phase: string): Promise<{ sock: ClientChannel; hops: Client[] }> {
        const bastion = await SshConnection.dialOnce(proxy, phase);
        const sock = await new Promise<ClientChannel>((resolve, reject) =>
            bastion.client.forwardOut("127.0.0.1", 0, o.host, o.port ?? 22, (err, ch) => (err ? reject(err) : resolve(ch))),
        ).catch((err: Error) => {
            // The bastion answered but cannot reach the target: it must not stay connected.
            bastion.close();
            throw new NixosDeployError({ host: describeTarget(o), phase, what: `the bastion ${describeTarget(proxy)} cannot reach ${o.host}:${o.port ?? 22}: ${err.message}`, cause: err });
        });
        return { sock, hops: [bastion.client, ...bastion.hops] };
    }

    /** Connects and settles exactly once: ready, an error, or a close mid-handshake. */
    private static handshake(config: ConnectConfig, target: string, phase: string, hops: Client[], keys: HostKeyCheck): Promise<SshConnection> {
        const client = new Client();
        // After the dial settles, a dying peer still reports ECONNRESET here; commands in flight
        // learn of it through "close". Without a listener the error would crash the process.
        client.on("error", () => undefined);
        return new Promise<SshConnection>((resolve, reject) => {
            let settled = false;
            const fail = (e: Error) => {
                if (settled) return;
                settled = true;
                client.end();
                for (const h of hops) h.end();
                reject(keys.mismatch ?? e);
            };
            // A peer that goes away mid-handshake (a machine shutting down) closes the socket
            // without an error event: without this the dial would never settle.
            client.once("close", () => fail(new NixosDeployError({ host: target, phase, what: "cannot open an SSH connection: the connection closed during the handshake" })));
            client.once("ready", () => {
                settled = true;
                const conn = new SshConnection(client, target, hops);
                conn.hostKey = formatHostKey(keys.offered!);
                conn.hostKeyFingerprint = fingerprint(keys.offered!);
                resolve(conn);
            });
            client.once("error", (err) => {
                const hint = isAuthFailureMessage(err.message) ? "check connection.user and the key or password; for root, the target's sshd must permit root logins" : undefined;
                fail(new NixosDeployError({ host: target, phase, what: `cannot open an SSH connection: ${err.message}`, cause: err, hint }));
            });
            // Without TCP_NODELAY every small SSH packet waits for the peer's delayed ACK: about 40 ms per command.
            client.once("connect", () => client.setNoDelay(true));
            client.connect(config);
        });
    }

    /** Runs a command; resolves with its output and exit status whatever the status. */
    exec(command: string, opts: { stdin?: string | Buffer; timeoutMs?: number } = {}): Promise<ExecOutput> {
        return new Promise((resolve, reject) => {
            // The bound covers opening the channel too: on a peer that vanished without a FIN (a
            // kexec, a reset) the open itself may never be answered.
            let channel: ClientChannel | undefined;
            let timedOut = false;
            const timer = opts.timeoutMs
                ? setTimeout(() => {
                      timedOut = true;
                      channel?.close();
                      reject(new CommandTimeout(opts.timeoutMs!));
                  }, opts.timeoutMs)
                : undefined;
            this.startCommand(command, (err, ch) => {
                if (timedOut) return void ch?.close();
                if (err) {
                    if (timer) clearTimeout(timer);
                    return reject(err);
                }
                channel = ch;
                const out: Buffer[] = [];
                const errb: Buffer[] = [];
                ch.on("data", (d: Buffer) => out.push(d));
                ch.stderr.on("data", (d: Buffer) => errb.push(d));
                // If the whole connection drops, the channel may never report its own close.
                const onGone = () => {
                    if (timer) clearTimeout(timer);
                    reject(new ConnectionDropped());
                };
                this.client.once("close", onGone);
                ch.on("close", (code: number | null, signal: string | null) => {
                    this.client.removeListener("close", onGone);
                    if (timer) clearTimeout(timer);
                    resolve({
                        stdout: Buffer.concat(out).toString(),
                        stderr: Buffer.concat(errb).toString(),
                        code: code ?? null,
                        signal: signal ?? null,
                    });
                });
                if (opts.stdin !== undefined) ch.end(opts.stdin);
                else ch.end();
            });
        });
    }

    /**
     * Opens a channel running `command`. sshd may refuse to start a command (a failed fork under
     * load: "Unable to exec"); nothing ran then, so it is tried again, at most three times.
     */
    startCommand(command: string, cb: (err: Error | undefined, ch: ClientChannel) => void, tries = 3): void {
        try {
            this.client.exec(command, (err, ch) => {
                if (err && err.message === "Unable to exec" && tries > 1) {
                    setTimeout(() => this.startCommand(command, cb, tries - 1), 200);
                    return;
                }
                cb(err, ch);
            });
        } catch (e) {
            // The connection went away meanwhile (ssh2 throws "Not connected").
            cb(e as Error, undefined as unknown as ClientChannel);
        }
    }

    close(): void {
        this.client.end();
        for (const h of this.hops) h.end();
    }
}

/**
 * The host key check of one dial: the pinned key (and the others accepted with it), the key the
 * server offered, and the mismatch when it was another.
 */
class HostKeyCheck {
    offered: Buffer | undefined;
    mismatch: HostKeyMismatchError | undefined;
    private readonly pin: ReturnType<typeof parseHostKey> | undefined;
    private readonly accepted: ReturnType<typeof parseHostKey>[];

    constructor(o: ConnectionOptions, private readonly target: string, private readonly phase: string) {
        this.pin = o.hostKey ? parseHostKey(o.hostKey) : undefined;
        this.accepted = this.pin ? [this.pin, ...(o.alsoAccept ?? []).map(parseHostKey)] : [];
    }

    verify(key: Buffer): boolean {
        this.offered = key;
        if (!this.pin) return true;
        if (this.accepted.some((k) => key.equals(k.blob))) return true;
        this.mismatch = new HostKeyMismatchError(this.target, this.phase, fingerprint(this.pin.blob), fingerprint(key));
        return false;
    }

    /** Asks for the pinned key's type, so a host with several keys presents the one we know. */
    algorithms(): ConnectConfig["algorithms"] {
        if (!this.pin) return undefined;
        const algos = [...new Set(this.accepted.flatMap((k) => (k.type === "ssh-rsa" ? ["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"] : [k.type])))];
        return { serverHostKey: algos as never };
    }
}

function isAuthFailureMessage(m: string): boolean {
    return /authentication methods failed|All configured authentication/i.test(m);
}

/** A login the server refused (key or password): final, never retried. */
export function isAuthFailure(err: unknown): boolean {
    return err instanceof NixosDeployError && isAuthFailureMessage(err.message);
}
