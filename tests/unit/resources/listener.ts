/** A TCP listener on 127.0.0.1 that counts connections: hooks given bad or stored-only inputs must not dial. */
import * as net from "node:net";
import { afterAll, beforeAll } from "vitest";

export interface Listener {
    port: number;
    connections: number;
}

/** One listener for the calling test file, opened before its tests and closed after them. */
export function countingListener(): Listener {
    const l: Listener = { port: 0, connections: 0 };
    let server: net.Server;
    beforeAll(async () => {
        server = net.createServer((s) => {
            l.connections++;
            s.destroy();
        });
        await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
        l.port = (server.address() as net.AddressInfo).port;
    });
    afterAll(() => server.close());
    return l;
}
