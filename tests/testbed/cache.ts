/**
 * A Nix binary cache on a test host of its own: a signed `file://` cache directory on this
 * machine, served over HTTP by a real server (python3's http.server) in the host's network
 * namespace, so targets fetch it over the bridge like any cache on the network.
 */
import { execFileSync, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { Host } from "./host";
import { nixEnv } from "./nix";

export interface TestCache {
    /** What targets fetch from: http://<host>:8080 */
    url: string;
    publicKey: string;
    /** Where the deployer writes, signing with the cache's secret key. */
    pushTo: string;
    dir: string;
    /** Paths the cache holds (their .narinfo files). */
    narinfos(): number;
    stop(): void;
}

export async function binaryCache(host: Host): Promise<TestCache> {
    const work = fs.mkdtempSync(path.join(os.tmpdir(), "pnx-cache-"));
    const dir = path.join(work, "cache");
    fs.mkdirSync(dir);
    const secret = path.join(work, "cache.sec");
    const pub = path.join(work, "cache.pub");
    execFileSync("nix-store", ["--generate-binary-cache-key", `testbed-cache-${host.id}-1`, secret, pub], { env: nixEnv(), stdio: "pipe" });
    // Nix writes it with the first push too; written now, the cache answers before anything is pushed.
    fs.writeFileSync(path.join(dir, "nix-cache-info"), "StoreDir: /nix/store\nWantMassQuery: 1\nPriority: 40\n");
    const server = spawn("ip", ["netns", "exec", host.netns, "python3", "-m", "http.server", "8080", "--bind", "0.0.0.0", "--directory", dir], { stdio: "ignore" });
    const url = `http://${host.address}:8080`;
    await waitForHttp(host, url);
    return {
        url,
        publicKey: fs.readFileSync(pub, "utf8").trim(),
        pushTo: `file://${dir}?secret-key=${secret}&compression=zstd`,
        dir,
        narinfos: () => fs.readdirSync(dir).filter((f) => f.endsWith(".narinfo")).length,
        stop: () => {
            server.kill();
            fs.rmSync(work, { recursive: true, force: true });
        },
    };
}

/** Waits (at most 10 s) until the server answers from inside the host. */
async function waitForHttp(host: Host, url: string): Promise<void> {
    for (let i = 0; i < 100; i++) {
        const r = await host.exec(`python3 -c 'import urllib.request,sys; urllib.request.urlopen(sys.argv[1], timeout=1)' ${url}/nix-cache-info`);
        if (r.code === 0) return;
        await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`test bed: the binary cache at ${url} did not answer within 10 s`);
}
