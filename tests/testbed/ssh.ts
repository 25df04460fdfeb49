/** SSH from tests to test hosts, through the product's own connection layer. */
import { SshConnection, ExecOutput } from "../../provider/ssh/connection";
import { clientKey } from "./state";
import type { Host } from "./host";

/** Opens a verified connection to the host as `user` with the run's client key, pinning its current host key. */
export function sshTo(host: Host, opts: { user?: string; password?: string; pin?: string | false; port?: number } = {}): Promise<SshConnection> {
    return SshConnection.open({
        host: host.address,
        port: opts.port ?? host.port,
        user: opts.user ?? "root",
        privateKey: opts.password ? undefined : clientKey().privateKey,
        password: opts.password,
        hostKey: opts.pin === false ? undefined : (opts.pin ?? host.hostKey),
        dialErrorLimit: 1,
        // A handshake on a loaded 2-core machine took more than 5 s once (a fresh-clone run).
        perDialTimeout: 10,
    });
}

/** Runs one command over a fresh SSH connection and closes it. */
export async function sshRun(host: Host, command: string, opts: Parameters<typeof sshTo>[1] = {}): Promise<ExecOutput> {
    const c = await sshTo(host, opts);
    try {
        return await c.exec(command);
    } finally {
        c.close();
    }
}
