/**
 * A Nix binary cache on a test host of its own: a signed `file://` cache directory on this
 * machine, served over HTTP from the host (http.ts), so targets fetch it over the bridge like any
 * cache on the network.
 *
 * It fails where real caches fail (tests/integration/testbed/cache.test.ts):
 * - `readOnlyPushTo` is the served URL itself. Like nix-serve or harmonia, the server only answers
 *   GET and HEAD; Nix's upload is an HTTP PUT (src/libstore/http-binary-cache-store.cc
 *   `upsertFile`, which throws "while uploading to HTTP binary cache at '…'"), so the push fails.
 * - `unsigned: true` makes `pushTo` a push without `?secret-key=`: its narinfos carry no
 *   signature, and a target with Nix's default `require-sigs` takes none of its paths (Nix's
 *   src/libstore/build/substitution-goal.cc refuses a substitute whose info is untrusted).
 */
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { Host } from "./host";
import { httpServer } from "./http";
import { nixEnv } from "./nix";

export interface TestCache {
    /** What targets fetch from: http://<host>:<port> */
    url: string;
    publicKey: string;
    /** Where the deployer writes: signing with the cache's secret key, unless `unsigned`. */
    pushTo: string;
    /** The served URL as a push target, with the secret key: read-only, so Nix's PUT fails. */
    readOnlyPushTo: string;
    dir: string;
    /** Paths the cache holds (their .narinfo files). */
    narinfos(): number;
    stop(): void;
}

export async function binaryCache(host: Host, o: { unsigned?: boolean; port?: number } = {}): Promise<TestCache> {
    const work = fs.mkdtempSync(path.join(os.tmpdir(), "pnx-cache-"));
    const dir = path.join(work, "cache");
    fs.mkdirSync(dir);
    const secret = path.join(work, "cache.sec");
    const pub = path.join(work, "cache.pub");
    execFileSync("nix-store", ["--generate-binary-cache-key", `testbed-cache-${host.id}-${o.port ?? 8080}`, secret, pub], { env: nixEnv(), stdio: "pipe" });
    // Nix writes it with the first push too; written now, the cache answers before anything is pushed.
    fs.writeFileSync(path.join(dir, "nix-cache-info"), "StoreDir: /nix/store\nWantMassQuery: 1\nPriority: 40\n");
    const server = await httpServer(host, dir, "nix-cache-info", o.port);
    return {
        url: server.url,
        publicKey: fs.readFileSync(pub, "utf8").trim(),
        pushTo: o.unsigned ? `file://${dir}?compression=zstd` : `file://${dir}?secret-key=${secret}&compression=zstd`,
        readOnlyPushTo: `${server.url}?secret-key=${secret}`,
        dir,
        narinfos: () => fs.readdirSync(dir).filter((f) => f.endsWith(".narinfo")).length,
        stop: () => {
            server.stop();
            fs.rmSync(work, { recursive: true, force: true });
        },
    };
}
