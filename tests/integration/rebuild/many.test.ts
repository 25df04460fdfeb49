import * as fs from "node:fs";
import { beforeAll, describe, expect, it } from "vitest";
import { evaluationLimit } from "../../../provider/nix/limit";
import * as hooks from "../../../provider/resources/rebuild";
import { hostsForThisFile } from "../../testbed/per-file";
import { installFixture } from "../../testbed/install";
import { buildFixture, fixtureCopy } from "../../testbed/nix";
import { sshRun } from "../../testbed/ssh";
import { clientKey } from "../../testbed/state";

let dir: string;
const createHost = hostsForThisFile();
beforeAll(() => {
    dir = fixtureCopy();
});
/** Counts, by polling /proc, how many `nix eval` processes on this machine evaluate `marker` at once. */
function watchEvaluations(marker: string): { stop: () => number } {
    let peak = 0;
    const count = () => {
        let n = 0;
        for (const pid of fs.readdirSync("/proc")) {
            if (!/^\d+$/.test(pid)) continue;
            let argv: string[];
            try {
                argv = fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
            } catch {
                continue;
            }
            // `nix [--extra-experimental-features 'nix-command flakes'] eval …`
            if (/(^|\/)nix$/.test(argv[0]) && argv.find((a, i) => i > 0 && !a.startsWith("--") && a !== "nix-command flakes") === "eval" && argv.some((a) => a.includes(marker))) n++;
        }
        peak = Math.max(peak, n);
    };
    const timer = setInterval(count, 5);
    return {
        stop: () => {
            clearInterval(timer);
            return peak;
        },
    };
}

describe("many machines", () => {
    it("10 hosts converge in parallel, with Nix evaluations bounded per provider process", async () => {
        const hosts = await Promise.all(Array.from({ length: 10 }, (_, i) => createHost({ name: `many${i}`, kind: "installer", disks: [64] })));
        await Promise.all(hosts.map((h) => installFixture(h, dir, "web")));
        const bumped = await buildFixture(dir, "web-bumped");

        // Ten previews at once, as the engine runs them for ten resources: evaluations queue.
        const watch = watchEvaluations(dir);
        const checks = await Promise.all(
            hosts.map((h) =>
                hooks.check({}, { __nixosName: h.name, connection: { host: h.address, privateKey: clientKey().privateKey, hostKey: h.hostKey }, flake: `path:${dir}/flake#web-bumped`, confirmTimeout: 15 }),
            ),
        );
        const peak = watch.stop();
        expect(checks.flatMap((c) => c.failures ?? [])).toEqual([]);
        expect(peak).toBeGreaterThanOrEqual(1);
        expect(peak).toBeLessThanOrEqual(evaluationLimit());

        // Ten deploys at once, each with its own magic-rollback confirmation.
        const outs = await Promise.all(checks.map((c) => hooks.create(c.inputs!)));
        expect(outs.map((o) => o.outs.currentSystem)).toEqual(hosts.map(() => bumped));
        const live = await Promise.all(hosts.map(async (h) => (await sshRun(h, "readlink /run/current-system; hello")).stdout));
        expect(live).toEqual(hosts.map(() => `${bumped}\nhello 2.12.2\n`));
        expect(new Set(outs.map((o) => o.outs.hostKey)).size).toBe(10);
    });
});
