/**
 * The binary-cache stand-in (tests/testbed/cache.ts) fails where real caches fail:
 * - a push to a cache served read-only (nix-serve, harmonia: GET and HEAD only) fails on Nix's
 *   upload, an HTTP PUT: Nix's src/libstore/http-binary-cache-store.cc `upsertFile` throws
 *   UploadToHTTP "while uploading to HTTP binary cache at '<url>': …" (NixOS/nix@0034ad1, l.156-168;
 *   filetransfer.cc sends a request's data with CURLOPT_UPLOAD, a PUT);
 * - an unsigned push lands, but a target with Nix's default `require-sigs` takes nothing from it:
 *   src/libstore/build/substitution-goal.cc skips a substitute whose info is untrusted ("ignoring
 *   substitute for … not signed by any of the keys in 'trusted-public-keys'"; Nix 2.8 words it
 *   "does not have a valid signature for path"), and the path stays invalid.
 */
import { execFileSync, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { binaryCache, TestCache } from "../../testbed/cache";
import type { Host } from "../../testbed/host";
import { nixEnv } from "../../testbed/nix";
import { hostsForThisFile } from "../../testbed/per-file";

const createHost = hostsForThisFile();
let cacheHost: Host;
let target: Host;
let signed: TestCache;
let unsigned: TestCache;
beforeAll(async () => {
    [cacheHost, target] = await Promise.all([createHost({ kind: "debian", nix: false }), createHost({ kind: "debian" })]);
    signed = await binaryCache(cacheHost, { port: 8080 });
    unsigned = await binaryCache(cacheHost, { unsigned: true, port: 8081 });
});
afterAll(() => [signed, unsigned].forEach((c) => c?.stop()));

/** A new input-addressed path, built here: unsigned, as the deployer's builds are (content-addressed ones need no signature). */
function built(name: string): string {
    const expr = `derivation { name = "${name}"; system = builtins.currentSystem; builder = "/bin/sh"; args = [ "-c" "echo ${name}-${Date.now()} > $out" ]; }`;
    return execFileSync("nix-build", ["--no-out-link", "-E", expr], { env: nixEnv(), encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] }).trim();
}

const nixCopy = (to: string, p: string) => spawnSync("nix", ["--extra-experimental-features", "nix-command", "copy", "--to", to, p], { env: nixEnv(), encoding: "utf8" });

/** The target's substitution from `cache` alone, as the provider runs it (root, require-sigs default). */
const realiseOn = (c: TestCache, p: string) => target.exec(`nix-store --realise ${p} --option substituters ${c.url} --option trusted-public-keys '${c.publicKey}' 2>&1; nix-store --check-validity ${p} && echo VALID`);

describe("the binary cache stand-in", () => {
    it("refuses a push to its served URL as a read-only cache refuses Nix's HTTP PUT", () => {
        const p = built("pnx-readonly");
        const r = nixCopy(signed.readOnlyPushTo, p);
        expect(r.status).not.toBe(0);
        expect(r.stderr).toMatch(/while uploading to HTTP binary cache at 'http:\/\/[\d.]+:8080'/);
        expect(r.stderr).toMatch(/501/);
        expect(fs.readdirSync(signed.dir).filter((f) => f.startsWith(path.basename(p).slice(0, 32)))).toEqual([]);
    });

    it("takes an unsigned push, which a target with require-sigs does not substitute", async () => {
        const p = built("pnx-unsigned");
        expect(nixCopy(unsigned.pushTo, p).status).toBe(0);
        const narinfo = fs.readFileSync(path.join(unsigned.dir, `${path.basename(p).slice(0, 32)}.narinfo`), "utf8");
        expect(narinfo).not.toMatch(/^Sig:/m);
        const r = await realiseOn(unsigned, p);
        expect(r.stdout).toMatch(/does not have a valid signature|not signed by any of the keys/);
        expect(r.stdout).not.toMatch(/VALID/);
    });

    it("serves a signed push, which the target substitutes", async () => {
        const p = built("pnx-signed");
        expect(nixCopy(signed.pushTo, p).status).toBe(0);
        expect((await realiseOn(signed, p)).stdout).toMatch(/VALID/);
    });
});
