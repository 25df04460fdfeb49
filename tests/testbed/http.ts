/**
 * A real HTTP server (python3's http.server) serving a folder of this machine from a test host's
 * network namespace: other hosts reach it over the bridge as they would a server on the network.
 * It ignores credentials and query strings, as a file server behind a presigned URL would accept them.
 */
import { spawn } from "node:child_process";
import type { Host } from "./host";

export interface HttpServer {
    /** http://<host>:<port> */
    url: string;
    stop(): void;
}

export async function httpServer(host: Host, dir: string, probe: string, port = 8080): Promise<HttpServer> {
    const server = spawn("ip", ["netns", "exec", host.netns, "python3", "-m", "http.server", String(port), "--bind", "0.0.0.0", "--directory", dir], { stdio: "ignore" });
    const url = `http://${host.address}:${port}`;
    await waitForHttp(host, `${url}/${probe}`);
    return { url, stop: () => server.kill() };
}

/** Waits (at most 10 s) until `url` answers from inside the host. */
async function waitForHttp(host: Host, url: string): Promise<void> {
    for (let i = 0; i < 100; i++) {
        const r = await host.exec(`python3 -c 'import urllib.request,sys; urllib.request.urlopen(sys.argv[1], timeout=1)' ${url}`);
        if (r.code === 0) return;
        await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`test bed: ${url} did not answer within 10 s`);
}
