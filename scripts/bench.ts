/**
 * Benchmarks on the test bed, compared within one run (the machine is shared and noisy):
 * host boot, a 50 MiB install by NixosInstall against the same steps by hand, a rebuild, a 50 MiB
 * install built on the deployer against one built by the target, and one rebuild against nine at once.
 * Run: node node_modules/vite-node/vite-node.mjs scripts/bench.ts   (as root, after npm test's setup)
 */
import * as install from "../provider/resources/install";
import * as rebuild from "../provider/resources/rebuild";
import { createHost, Host } from "../tests/testbed/host";
import { installFixture } from "../tests/testbed/install";
import { fixtureCopy, nixConfig } from "../tests/testbed/nix";
import { clientKey } from "../tests/testbed/state";

process.env.NIX_CONFIG = nixConfig();
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
// Progress lines are silenced while measuring; a depth count keeps concurrent runs from restoring early.
const log = console.log;
let silenced = 0;
const silent = async <T>(fn: () => Promise<T>): Promise<T> => {
    if (silenced++ === 0) console.log = () => undefined;
    try {
        return await fn();
    } finally {
        if (--silenced === 0) console.log = log;
    }
};

async function main(): Promise<void> {
    const dir = fixtureCopy();
    const boots: number[] = [];
    for (let i = 0; i < 10; i++) {
        const t0 = Date.now();
        const h = await createHost();
        boots.push(Date.now() - t0);
        await h.destroy();
    }
    let t0 = Date.now();
    const ten = await Promise.all(Array.from({ length: 10 }, () => createHost()));
    const parallel = Date.now() - t0;
    await Promise.all(ten.map((h) => h.destroy()));

    const byHand: number[] = [];
    const byResource: number[] = [];
    const rebuilds: number[] = [];
    for (let round = 0; round < 3; round++) {
        let h: Host = await createHost({ kind: "installer", disks: [256] });
        t0 = Date.now();
        await installFixture(h, dir, "web-big");
        byHand.push(Date.now() - t0);
        await h.destroy();

        h = await createHost({ kind: "installer", disks: [256] });
        const conn = { host: h.address, privateKey: clientKey().privateKey, hostKey: h.hostKey };
        const checked = await install.check({}, { connection: conn, flake: `path:${dir}/flake#web-big`, phases: ["disko", "install", "reboot"] });
        t0 = Date.now();
        const { outs } = await silent(() => install.create(checked.inputs!));
        byResource.push(Date.now() - t0);

        const r0 = await rebuild.check({}, { connection: { ...conn, hostKey: outs.hostKey }, flake: `path:${dir}/flake#web-big` });
        const first = await silent(() => rebuild.create(r0.inputs!));
        const r1 = await rebuild.check(first.outs, { connection: { ...conn, hostKey: outs.hostKey }, flake: `path:${dir}/flake#web-bumped` });
        t0 = Date.now();
        await silent(() => rebuild.update("id", first.outs, r1.inputs!));
        rebuilds.push(Date.now() - t0);
        await h.destroy();
    }
    // buildOn: the deployer builds and copies 50 MiB, or the target builds from derivations.
    const buildOn: Record<"local" | "remote", number[]> = { local: [], remote: [] };
    for (let round = 0; round < 3; round++) {
        for (const where of ["local", "remote"] as const) {
            const h = await createHost({ kind: "installer", disks: [256] });
            const checked = await install.check({}, { connection: { host: h.address, privateKey: clientKey().privateKey, hostKey: h.hostKey }, flake: `path:${dir}/flake#web-big`, phases: ["disko", "install"], buildOn: where });
            t0 = Date.now();
            await silent(() => install.create(checked.inputs!));
            buildOn[where].push(Date.now() - t0);
            await h.destroy();
        }
    }

    // Ten machines converging at once against one alone, each with its own magic-rollback confirmation.
    const many: Host[] = await Promise.all(Array.from({ length: 10 }, () => createHost({ kind: "installer", disks: [64] })));
    await Promise.all(many.map((h) => installFixture(h, dir, "web")));
    const rebuildOne = async (h: Host) => {
        const r = await rebuild.check({}, { connection: { host: h.address, privateKey: clientKey().privateKey, hostKey: h.hostKey }, flake: `path:${dir}/flake#web-bumped` });
        return silent(() => rebuild.create(r.inputs!));
    };
    t0 = Date.now();
    await rebuildOne(many[0]);
    const oneMs = Date.now() - t0;
    t0 = Date.now();
    await Promise.all(many.slice(1).map(rebuildOne));
    const nineMs = Date.now() - t0;
    await Promise.all(many.map((h) => h.destroy()));

    console.log(
        JSON.stringify(
            {
                hostBootMedianMs: median(boots),
                hostBootMaxMs: Math.max(...boots),
                tenHostsInParallelMs: parallel,
                install50MiB: { byHandMedianMs: median(byHand), nixosInstallMedianMs: median(byResource), ratio: +(median(byResource) / median(byHand)).toFixed(2), byHand, byResource },
                rebuildSwitchWithMagicRollbackMedianMs: median(rebuilds),
                install50MiBBuildOn: { localMedianMs: median(buildOn.local), remoteMedianMs: median(buildOn.remote), ratio: +(median(buildOn.remote) / median(buildOn.local)).toFixed(2), ...buildOn },
                rebuildConcurrency: { oneMachineMs: oneMs, nineMachinesInParallelMs: nineMs, ratio: +(nineMs / oneMs).toFixed(2) },
            },
            null,
            2,
        ),
    );
}

main().catch((e) => {
    console.error(e);
    process.exit(1);
});
