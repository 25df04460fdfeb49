/**
 * P4: a rebuild switch (with magic rollback) of 49 machines at once against one alone.
 * P8: ten installs through a binary cache on a host of its own: the bytes the deployer sends
 * (its push to the cache, and what reaches the targets besides the cache's traffic) against one
 * closure's NAR size.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as install from "../../provider/resources/install";
import * as rebuild from "../../provider/resources/rebuild";
import { binaryCache } from "../../tests/testbed/cache";
import { createHost, Host } from "../../tests/testbed/host";
import { installFixture } from "../../tests/testbed/install";
import { buildFixture, nixEnv } from "../../tests/testbed/nix";
import { clientKey } from "../../tests/testbed/state";
import { execFileSync } from "node:child_process";
import { mib, ratio, Row, seconds, silent, timed } from "./report";

/** Milliseconds of CPU the whole machine has spent busy since boot: /proc/stat's first line, in USER_HZ (100), less idle and iowait. */
function machineBusy(): number {
    const ticks = fs.readFileSync("/proc/stat", "utf8").split("\n")[0].split(/\s+/).slice(1, 9).map(Number);
    const [idle, iowait] = [ticks[3], ticks[4]];
    return (ticks.reduce((a, t) => a + t, 0) - idle - iowait) * 10;
}

/** Runs `fn` over `items`, at most `n` at a time. */
async function pool<T>(items: T[], n: number, fn: (t: T) => Promise<unknown>): Promise<void> {
    const queue = [...items];
    await Promise.all(Array.from({ length: n }, async () => {
        for (let t = queue.shift(); t !== undefined; t = queue.shift()) await fn(t);
    }));
}

export async function manyRebuilds(dir: string, count = 50): Promise<Row> {
    const hosts: Host[] = await Promise.all(Array.from({ length: count }, () => createHost({ kind: "installer", disks: [64] })));
    await pool(hosts, 8, (h) => installFixture(h, dir, "web"));
    const switchTo = async (h: Host) => {
        const r = await rebuild.check({}, { connection: { host: h.address, privateKey: clientKey().privateKey, hostKey: h.hostKey }, flake: `path:${dir}/flake#web-bumped` });
        return silent(() => rebuild.create(r.inputs!));
    };
    const one = await timed(() => switchTo(hosts[0]));
    const [cpu0, busy0] = [process.cpuUsage(), machineBusy()];
    const rest = await timed(() => Promise.all(hosts.slice(1).map(switchTo)));
    const [cpu, busy] = [process.cpuUsage(cpu0), machineBusy() - busy0];
    await Promise.all(hosts.map((h) => h.destroy()));
    return {
        id: "P4",
        what: `rebuild switch of ${count - 1} hosts at once (magic rollback, each confirmed)`,
        value: seconds(rest.ms),
        baseline: `${seconds(one.ms)} (one host)`,
        ratio: ratio(rest.ms, one.ms),
        goal: "≤ 2×",
        met: rest.ms <= 2 * one.ms,
        notes: `the one host went first, so it also paid the build; the ${count - 1} then found it built. The provider's own CPU time for the ${count - 1}: ${seconds((cpu.user + cpu.system) / 1000)}; the whole machine's: ${seconds(busy)} of the ${seconds(rest.ms * os.cpus().length)} its ${os.cpus().length} cores had, because every target's sshd, nix-store and activation run on them too.`,
    };
}

const du = (dir: string): number => fs.readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).reduce((a, e) => a + fs.statSync(path.join(e.parentPath, e.name)).size, 0);

export async function cacheInstalls(dir: string, count = 10): Promise<Row> {
    const cacheHost = await createHost({ kind: "debian", nix: false });
    const cache = await binaryCache(cacheHost);
    const hosts = await Promise.all(Array.from({ length: count }, () => createHost({ kind: "installer", disks: [256] })));
    const toplevel = await buildFixture(dir, "web-big");
    const closureBytes = Number(execFileSync("nix", ["--extra-experimental-features", "nix-command", "path-info", "-S", "--json", toplevel], { env: nixEnv(), encoding: "utf8" }).match(/"closureSize":(\d+)/)![1]);
    const [reached0, served0] = [hosts.map((h) => h.sentBytes()), cacheHost.receivedBytes()];
    const run = await timed(() =>
        Promise.all(
            hosts.map(async (h) => {
                const c = await install.check({}, { connection: { host: h.address, privateKey: clientKey().privateKey, hostKey: h.hostKey }, flake: `path:${dir}/flake#web-big`, phases: ["disko", "install"], cache: { url: cache.url, publicKey: cache.publicKey, pushTo: cache.pushTo } });
                return silent(() => install.create(c.inputs!));
            }),
        ),
    );
    const served = cacheHost.receivedBytes() - served0;
    const reached = hosts.reduce((a, h, i) => a + h.sentBytes() - reached0[i], 0);
    const pushed = du(cache.dir);
    const deployer = pushed + reached - served;
    cache.stop();
    await Promise.all([cacheHost, ...hosts].map((h) => h.destroy()));
    return {
        id: "P8",
        what: `${count} installs with \`cache\` (50 MiB closure)`,
        value: `${mib(deployer)} from the deployer`,
        baseline: `${mib(closureBytes)} (one closure)`,
        ratio: ratio(deployer, closureBytes),
        goal: "≤ 1.2×",
        met: deployer <= 1.2 * closureBytes,
        notes: `${mib(pushed)} pushed to the cache (zstd), ${mib(reached - served)} sent to the targets directly (SSH, disko script); the cache served ${mib(served)}; ${seconds(run.ms)} for the ${count} installs.`,
    };
}
