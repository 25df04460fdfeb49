/**
 * P5: NixosInstall's phases up to the reboot (disko, copy, install) of a 50 MiB closure against the
 * same steps by hand (`nix copy` over OpenSSH, ssh, nixos-install), on fresh hosts, five rounds;
 * then how long after sshd answers again the reboot is confirmed.
 */
import * as net from "node:net";
import * as install from "../../provider/resources/install";
import { rebootInto } from "../../provider/phases/reboot";
import { Target } from "../../provider/ssh/target";
import { createHost, Host } from "../../tests/testbed/host";
import { installFixture } from "../../tests/testbed/install";
import { clientKey } from "../../tests/testbed/state";
import { median, ratio, Row, seconds, silent, timed } from "./report";

export async function installFigures(dir: string): Promise<Row[]> {
    const byHand: number[] = [];
    const ours: number[] = [];
    const confirmed: number[] = [];
    for (let round = 0; round < 5; round++) {
        let h = await createHost({ kind: "installer", disks: [256] });
        byHand.push((await timed(() => installFixture(h, dir, "web-big", { reboot: false }))).ms);
        await h.destroy();

        h = await createHost({ kind: "installer", disks: [256] });
        const connection = { host: h.address, privateKey: clientKey().privateKey, hostKey: h.hostKey };
        const checked = await install.check({}, { connection, flake: `path:${dir}/flake#web-big`, phases: ["disko", "install"] });
        const run = await timed(() => silent(() => install.create(checked.inputs!)));
        ours.push(run.ms);
        confirmed.push(await rebootLatency(h, run.result.outs.toplevel!, run.result.outs.hostKey!));
        await h.destroy();
    }
    return [
        {
            id: "P5",
            what: "install phases up to the reboot, 50 MiB closure (median of 5)",
            value: seconds(median(ours)),
            baseline: `${seconds(median(byHand))} (the same steps by hand)`,
            ratio: ratio(median(ours), median(byHand)),
            goal: "≤ 1.05×; reboot confirmed within sshd's return + 0.5 s",
            met: median(ours) <= 1.05 * median(byHand) && Math.max(...confirmed) <= 500,
            notes: `rounds: ours ${ours.map((x) => seconds(x)).join(", ")}; by hand ${byHand.map((x) => seconds(x)).join(", ")}. The reboot was confirmed ${confirmed.map((x) => `${Math.round(x)} ms`).join(", ")} after sshd accepted connections again.`,
        },
    ];
}

/** Reboots an installed host with the provider's reboot phase; ms from sshd's return to the confirmation. */
async function rebootLatency(h: Host, toplevel: string, hostKey: string): Promise<number> {
    const target = new Target({ host: h.address, privateKey: clientKey().privateKey, hostKey: h.hostKey });
    const watch = sshdReturn(h.address, 22);
    try {
        await rebootInto({ target, log: () => undefined, env: process.env, cwd: process.cwd() }, { toplevel, expectedHostKey: hostKey, timeoutS: 60 });
        return Number(process.hrtime.bigint() - (await watch.back)) / 1e6;
    } finally {
        watch.stop();
        target.close();
    }
}

/** When the port accepts again after having refused or dropped: attempts of at most 50 ms, every 10 ms. */
function sshdReturn(host: string, port: number): { back: Promise<bigint>; stop: () => void } {
    let stopped = false;
    const back = (async () => {
        let down = false;
        while (!stopped) {
            const ok = await new Promise<boolean>((resolve) => {
                const s = net.connect({ host, port, timeout: 50 }, () => (s.destroy(), resolve(true)));
                s.on("error", () => resolve(false));
                s.on("timeout", () => (s.destroy(), resolve(false)));
            });
            const now = process.hrtime.bigint();
            if (!ok) down = true;
            else if (down) return now;
            await new Promise((r) => setTimeout(r, 10));
        }
        throw new Error("stopped");
    })();
    back.catch(() => undefined);
    return { back, stop: () => (stopped = true) };
}
