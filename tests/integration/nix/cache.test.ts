/**
 * Installs through a binary cache on a test host of its own (tests/testbed/cache.ts): the deployer
 * pushes the closure once, each target substitutes from the cache over the bridge, checking the
 * signatures, and the deployer sends almost nothing to the targets.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as install from "../../../provider/resources/install";
import { binaryCache, TestCache } from "../../testbed/cache";
import type { Host } from "../../testbed/host";
import { fixtureCopy } from "../../testbed/nix";
import { hostsForThisFile } from "../../testbed/per-file";
import { clientKey } from "../../testbed/state";

const createHost = hostsForThisFile();
let dir: string;
let cache: TestCache;
let cacheHost: Host;
beforeAll(async () => {
    dir = fixtureCopy();
    cacheHost = await createHost({ kind: "debian", nix: false });
    cache = await binaryCache(cacheHost);
});
afterAll(() => cache?.stop());

describe("NixosInstall with a binary cache", () => {
    it("pushes the closure once; three installs substitute it from the cache, signed, and the deployer sends each target under a tenth of it", async () => {
        const hosts = await Promise.all([1, 2, 3].map(() => createHost({ kind: "installer", disks: [256] })));
        const before = hosts.map((h) => h.sentBytes());
        const cacheBefore = cacheHost.receivedBytes();
        const lines: string[] = [];
        const log = console.log;
        console.log = (l: string) => lines.push(l);
        try {
            const checked = await Promise.all(
                hosts.map((h) =>
                    install.check({}, { connection: { host: h.address, privateKey: clientKey().privateKey, hostKey: h.hostKey }, flake: `path:${dir}/flake#web-text`, phases: ["disko", "install"], cache: { url: cache.url, publicKey: cache.publicKey, pushTo: cache.pushTo } }),
                ),
            );
            await Promise.all(checked.map((c) => install.create(c.inputs!)));
        } finally {
            console.log = log;
        }
        const toplevel = (await install.check({}, { connection: { host: "192.0.2.1", password: "x" }, flake: `path:${dir}/flake#web-text` })).inputs!.toplevel as string;
        expect(lines.filter((l) => l.includes("pushing the closure to the binary cache"))).toHaveLength(2); // the disko script's closure and the system's
        expect(cache.narinfos()).toBeGreaterThan(5);
        for (const h of hosts) {
            // Substituted paths keep the cache's signature; a path the deployer sent has none.
            const sigs = await h.execOk(`nix path-info --extra-experimental-features nix-command --store /mnt --sigs --recursive ${toplevel} | grep -c ${cache.publicKey.split(":")[0]}: || true`);
            expect(Number(sigs.trim())).toBeGreaterThan(5);
        }
        // The cache's link carried the closure to each target (xz-compressed hex text: over 15 MiB
        // each); what reached the targets besides is the deployer's: SSH and what the cache lacks.
        const fromCache = cacheHost.receivedBytes() - cacheBefore;
        const reached = hosts.reduce((a, h, i) => a + h.sentBytes() - before[i], 0);
        expect(fromCache).toBeGreaterThan(3 * (15 << 20));
        expect(reached - fromCache).toBeLessThan(3 * (5 << 20));
        expect(lines.some((l) => /substituted \d+ of \d+ missing paths/.test(l))).toBe(true);
    });

    it("names the cache when the deployer cannot push to it", async () => {
        const h = await createHost({ kind: "installer", disks: [128] });
        const checked = await install.check({}, { connection: { host: h.address, privateKey: clientKey().privateKey, hostKey: h.hostKey }, flake: `path:${dir}/flake#web`, phases: ["disko"], cache: { url: cache.url, publicKey: cache.publicKey, pushTo: "file:///proc/no-cache-here" } });
        const err = await install.create(checked.inputs!).catch((e) => e);
        expect(err.message).toMatch(/pushing the closure to the binary cache http:\/\/[\d.]+:8080 failed/);
    });
});
