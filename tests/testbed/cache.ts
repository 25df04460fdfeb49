/**
 * A Nix binary cache on a test host of its own: a signed `file://` cache directory on this
 * machine, served over HTTP from the host (http.ts), so targets fetch it over the bridge like any
 * cache on the network.
 */
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { Host } from "./host";
import { httpServer } from "./http";
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
    const server = await httpServer(host, dir, "nix-cache-info");
    return {
        url: server.url,
        publicKey: fs.readFileSync(pub, "utf8").trim(),
        pushTo: `file://${dir}?secret-key=${secret}&compression=zstd`,
        dir,
        narinfos: () => fs.readdirSync(dir).filter((f) => f.endsWith(".narinfo")).length,
        stop: () => {
            server.stop();
            fs.rmSync(work, { recursive: true, force: true });
        },
    };
}
