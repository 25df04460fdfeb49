/** In-process SSH peers (ssh2.Server on 127.0.0.1, port 0) for unit tests: no host, no sshd. */
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { Connection, Server, ServerChannel, utils } from "ssh2";
import { formatHostKey } from "../../../provider/ssh/hostkey";

/** A fresh OpenSSH-format ed25519 key pair (ssh2 reads OpenSSH's format, not PKCS#8). */
export function ed25519(): { priv: string; pub: string } {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pnx-key-"));
    try {
        execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", path.join(dir, "k")]);
        const priv = fs.readFileSync(path.join(dir, "k"), "utf8");
        const parsed = utils.parseKey(priv);
        if (parsed instanceof Error) throw parsed;
        return { priv, pub: formatHostKey(parsed.getPublicSSH() as Buffer) };
    } finally {
        fs.rmSync(dir, { recursive: true, force: true });
    }
}

export interface Peer {
    port: number;
    hostKey: string;
    authAttempts: string[];
    /** Client connections open right now. */
    connected(): number;
    /** Ends every client connection at once, as a machine that goes down does. */
    dropAll(): void;
    close(): void;
}

/**
 * A server that accepts `password` (read at each login when it is a function) and hands every
 * exec to `onExec`. With refuseExecs, it refuses that many exec requests first, as sshd does when
 * it cannot start a command. With forward, it is a bastion: it forwards direct-tcpip channels.
 */
export async function sshPeer(password: string | (() => string), onExec: (command: string, ch: ServerChannel) => void, o: { refuseExecs?: number; forward?: boolean } = {}): Promise<Peer> {
    let refuse = o.refuseExecs ?? 0;
    const host = ed25519();
    const authAttempts: string[] = [];
    const clients = new Set<Connection>();
    const server = new Server({ hostKeys: [host.priv] }, (client) => {
        clients.add(client);
        // sshd writes a command's exit status, EOF and close in one go; ssh2 writes them one by one,
        // and with Nagle on each waits for the deployer's delayed ACK (about 130 ms per command).
        (client as unknown as { setNoDelay(on: boolean): void }).setNoDelay(true);
        client.on("close", () => clients.delete(client));
        client.on("authentication", (ctx) => {
            authAttempts.push(ctx.method);
            if (ctx.method === "password" && ctx.password === (typeof password === "string" ? password : password())) ctx.accept();
            else ctx.reject(["password"]);
        });
        client.on("session", (accept) => {
            accept().on("exec", (acc, rej, info) => (refuse-- > 0 ? rej() : onExec(info.command, acc())));
        });
        if (o.forward) client.on("tcpip", (accept, _reject, info) => forward(accept(), info.destIP, info.destPort));
        client.on("error", () => undefined);
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const port = (server.address() as { port: number }).port;
    return { port, hostKey: host.pub, authAttempts, connected: () => clients.size, dropAll: () => clients.forEach((c) => c.end()), close: () => server.close() };
}

/** A bastion's forwarded channel, joined to a TCP connection to the destination. */
function forward(ch: ServerChannel, host: string, port: number): void {
    const sock = net.connect(port, host);
    sock.on("error", () => ch.close());
    ch.on("error", () => sock.destroy());
    ch.pipe(sock).pipe(ch);
}

/** Whether Nagle's algorithm is off on a socket (Node records setNoDelay under a private symbol). */
export function noDelay(sock: net.Socket): boolean {
    const sym = Object.getOwnPropertySymbols(sock).find((s) => s.description === "kSetNoDelay");
    if (!sym) throw new Error("this Node does not record setNoDelay on its sockets");
    return (sock as unknown as Record<symbol, boolean>)[sym];
}

/** A TCP port on loopback that nothing listens on (bound, then released). */
export async function closedPort(): Promise<number> {
    const srv = net.createServer();
    await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
    const port = (srv.address() as net.AddressInfo).port;
    await new Promise((r) => srv.close(r));
    return port;
}
