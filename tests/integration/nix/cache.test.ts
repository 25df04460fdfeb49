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

    /** A disko-only install with `cache`; returns its log lines, and what the cache holds after it. */
    async function diskoWith(c: { url: string; publicKey: string; pushTo: string }, counted: TestCache): Promise<{ lines: string[]; narinfos: number }> {
        const h = await createHost({ kind: "installer", disks: [128] });
        const checked = await install.check({}, { connection: { host: h.address, privateKey: clientKey().privateKey, hostKey: h.hostKey }, flake: `path:${dir}/flake#web`, phases: ["disko"], cache: c });
        const lines: string[] = [];
        const log = console.log;
        console.log = (l: string) => lines.push(l);
        try {
            await install.create(checked.inputs!);
        } finally {
            console.log = log;
        }
        return { lines, narinfos: counted.narinfos() };
    }

    it("sends the closure itself, and says so, when the cache is read-only (Nix's HTTP PUT fails)", async () => {
        const ro = await binaryCache(cacheHost, { port: 8082 });
        try {
            const r = await diskoWith({ url: ro.url, publicKey: ro.publicKey, pushTo: ro.readOnlyPushTo }, ro);
            expect(r.lines.some((l) => /pushing the closure to the binary cache http:\/\/[\d.]+:8082 failed \(while uploading to HTTP binary cache at 'http:\/\/[\d.]+:8082'.*\); the deployer sends the missing paths itself/.test(l))).toBe(true);
            expect(r.lines.some((l) => /copying \d+ of \d+ paths/.test(l))).toBe(true);
            expect(r.narinfos).toBe(0);
        } finally {
            ro.stop();
        }
    });

    it("does not push without a signing key (targets' require-sigs would take nothing), sends the closure itself and says so", async () => {
        const u = await binaryCache(cacheHost, { unsigned: true, port: 8081 });
        try {
            const r = await diskoWith({ url: u.url, publicKey: u.publicKey, pushTo: u.pushTo }, u);
            expect(r.lines.some((l) => /not pushing to the binary cache http:\/\/[\d.]+:8081: cache\.pushTo has no \?secret-key= .*; the deployer sends the missing paths itself/.test(l))).toBe(true);
            expect(r.lines.some((l) => /copying \d+ of \d+ paths/.test(l))).toBe(true);
            expect(r.narinfos).toBe(0);
        } finally {
            u.stop();
        }
    });
});
