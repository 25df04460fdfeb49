/**
 * P3: the bytes an update sends when one path of a 50 MiB closure changed, against that path's
 * NAR size. P7: a 50 MiB compressible closure over a 20 Mbit/s link (tbf on the host's veth),
 * against the uncompressed copy by hand (`nix copy` over OpenSSH), and the same on the fast bridge.
 */
import { execFileSync } from "node:child_process";
import { copyClosure } from "../../provider/nix/copy";
import * as rebuild from "../../provider/resources/rebuild";
import { Target } from "../../provider/ssh/target";
import { createHost, Host } from "../../tests/testbed/host";
import { copyClosure as copyByHand, installFixture } from "../../tests/testbed/install";
import { buildFixture, nixEnv } from "../../tests/testbed/nix";
import { clientKey } from "../../tests/testbed/state";
import { median, mib, ratio, Row, seconds, silent, timed } from "./report";

const closure = (p: string) => execFileSync("nix-store", ["-qR", p], { env: nixEnv(), encoding: "utf8" }).trim().split("\n");
const narSize = (paths: string[]) => execFileSync("nix-store", ["-q", "--size", ...paths], { env: nixEnv(), encoding: "utf8" }).trim().split("\n").reduce((a, n) => a + Number(n), 0);

export async function updateBytes(dir: string): Promise<Row> {
    const h = await createHost({ kind: "installer", disks: [256] });
    await installFixture(h, dir, "web-parts");
    const connection = { host: h.address, privateKey: clientKey().privateKey, hostKey: h.hostKey };
    const first = await silent(async () => rebuild.create((await rebuild.check({}, { connection, flake: `path:${dir}/flake#web-parts` })).inputs!));
    const next = await rebuild.check(first.outs, { connection, flake: `path:${dir}/flake#web-parts-bumped` });
    const before = h.sentBytes();
    await silent(() => rebuild.update("id", first.outs, next.inputs!));
    const sent = h.sentBytes() - before;
    // Built by the update: what its closure has that the old one had not.
    const old = new Set(closure(first.outs.toplevel!));
    const changed = closure(next.inputs!.toplevel!).filter((p) => !old.has(p));
    await h.destroy();
    const nar = narSize(changed);
    return {
        id: "P3",
        what: "update changing one path (5 MiB) of a 50 MiB closure",
        value: `${mib(sent)} sent`,
        baseline: `${mib(nar)} (NAR size of the ${changed.length} changed paths)`,
        ratio: ratio(sent, nar),
        goal: "≤ 1.1×",
        met: sent <= 1.1 * nar,
        notes: "bytes sent are the host veth's counter: SSH, the activation's commands and the copy.",
    };
}

/** A host running the fixture's web, its link limited to `mbit` when given. */
async function hostWithWeb(dir: string, mbit?: number): Promise<Host> {
    const h = await createHost({ kind: "installer", disks: [256] });
    await installFixture(h, dir, "web");
    if (mbit) await h.shapeLink(mbit);
    return h;
}

async function copyPair(dir: string, text: string, mbit?: number): Promise<{ ours: number; byHand: number; how: string }> {
    const a = await hostWithWeb(dir, mbit);
    const lines: string[] = [];
    const t = new Target({ host: a.address, privateKey: clientKey().privateKey, hostKey: a.hostKey });
    const ours = await timed(() => copyClosure(t, [text], { phase: "copy", log: (l) => lines.push(l) }));
    t.close();
    await a.destroy();
    const b = await hostWithWeb(dir, mbit);
    const byHand = await timed(() => copyByHand(b, text));
    await b.destroy();
    return { ours: ours.ms, byHand: byHand.ms, how: lines[0] ?? "" };
}

export async function compressedCopy(dir: string): Promise<Row[]> {
    const text = await buildFixture(dir, "web-text");
    const slow = await copyPair(dir, text, 20);
    // Three rounds on the fast bridge, where a run lasts under a second: the medians.
    const rounds = [await copyPair(dir, text), await copyPair(dir, text), await copyPair(dir, text)];
    const fast = { ours: median(rounds.map((r) => r.ours)), byHand: median(rounds.map((r) => r.byHand)), how: rounds[0].how };
    return [
        {
            id: "P7",
            what: "50 MiB compressible closure over a 20 Mbit/s link",
            value: seconds(slow.ours),
            baseline: `${seconds(slow.byHand)} (uncompressed, by hand)`,
            ratio: ratio(slow.ours, slow.byHand),
            goal: "≤ 0.6×",
            met: slow.ours <= 0.6 * slow.byHand,
            notes: `the provider logged "${slow.how}". The link is a token bucket (tbf) only: this kernel has no netem, so no delay was added.`,
        },
        {
            id: "P7b",
            what: "the same copy on the fast bridge (no limit; median of 3)",
            value: seconds(fast.ours),
            baseline: `${seconds(fast.byHand)} (by hand)`,
            ratio: ratio(fast.ours, fast.byHand),
            goal: "never slower: ≤ 1.0×",
            met: fast.ours <= fast.byHand,
            notes: `the provider logged "${fast.how}".`,
        },
    ];
}
