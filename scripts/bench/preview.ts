/**
 * P1a, P1b, P2: previews and a no-op `up` of 20 NixosMachines from one flake (the fixture's
 * web-fleet-NN, each evaluation about 1 s and 400 MiB, none shared), through the real engine with
 * `nix` and `nix-store` counted.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { promisify } from "node:util";
import { execFile } from "node:child_process";
import { programStack } from "../../tests/e2e/stack";
import { createHost, Host } from "../../tests/testbed/host";
import { countingNix, nixEnv } from "../../tests/testbed/nix";
import { clientKey } from "../../tests/testbed/state";
import { ratio, Row, seconds, timed } from "./report";

const FLEET = 20;
const name = (i: number) => `web-fleet-${String(i + 1).padStart(2, "0")}`;

export async function previewFigures(dir: string): Promise<Row[]> {
    const hosts = await Promise.all(Array.from({ length: FLEET }, (_, i) => createHost({ name: `fleet${i + 1}`, kind: "installer", disks: [64] })));
    const nix = countingNix();
    const s = await programStack(path.join(__dirname, "fleet"), "bench", { pathFirst: nix.dir });
    const machines = hosts.map((h, i) => ({ name: h.name, host: h.address, hostKey: h.hostKey, flake: `path:${dir}/flake#${name(i)}` }));
    await s.stack.setConfig("privateKeyFile", { value: clientKey().privateKeyPath });
    await s.stack.setConfig("machines", { value: JSON.stringify(machines) });
    const up = await s.stack.up();
    const toplevels = up.outputs.toplevels.value as Record<string, string>;

    // P1a: nothing changed; the baseline is the same stack with store paths, which evaluate nothing.
    const evals = nix.calls("nix eval");
    const noop = await timed(() => s.stack.preview());
    const noopEvals = nix.calls("nix eval") - evals;
    await s.stack.setConfig("machines", { value: JSON.stringify(machines.map((m) => ({ ...m, toplevel: toplevels[m.name] }))) });
    await s.stack.setConfig("source", { value: "storePaths" });
    const stored = await timed(() => s.stack.preview());
    await s.stack.removeConfig("source");

    // P1b: the flake changed (every machine's root keys); the baseline is one `nix eval` of all 20.
    const keys = path.join(dir, "flake", "authorized_keys");
    const original = { text: fs.readFileSync(keys, "utf8"), stat: fs.statSync(keys) };
    fs.appendFileSync(keys, "# changed\n");
    const changed = await timed(() => s.stack.preview());
    const names = JSON.stringify(hosts.map((_, i) => name(i)));
    const apply = `cs: map (n: cs.\${n}.config.system.build.toplevel.drvPath) (builtins.fromJSON ''${names}'')`;
    const oneEval = await timed(() => promisify(execFile)("nix", ["--extra-experimental-features", "nix-command flakes", "eval", "--json", `path:${dir}/flake#nixosConfigurations`, "--apply", apply], { env: nixEnv(), maxBuffer: 16 << 20 }));
    // Back as it was, its time included: a path flake's lastModified is part of its locked source.
    fs.writeFileSync(keys, original.text);
    fs.utimesSync(keys, original.stat.atime, original.stat.mtime);

    // P2: a no-op `up`: no connection to any machine, no build.
    const accepted = async (hs: Host[]) => (await Promise.all(hs.map((h) => h.acceptedConnections()))).reduce((a, n) => a + n, 0);
    const [c0, builds0] = [await accepted(hosts), nix.calls("nix-store --realise") + nix.calls("nix build")];
    const noopUp = await timed(() => s.stack.up());
    const connections = (await accepted(hosts)) - c0;
    const builds = nix.calls("nix-store --realise") + nix.calls("nix build") - builds0;
    await Promise.all(hosts.map((h) => h.destroy()));

    return [
        {
            id: "P1a",
            what: `no-op \`pulumi preview\`, ${FLEET} NixosMachines, one unchanged flake`,
            value: `${seconds(noop.ms)}, ${noopEvals} \`nix eval\``,
            baseline: `${seconds(stored.ms)} (the same ${FLEET} from store paths)`,
            ratio: ratio(noop.ms, stored.ms),
            goal: "0 `nix eval`; ≤ 1.3×",
            met: noopEvals === 0 && noop.ms <= 1.3 * stored.ms,
            notes: `summary ${JSON.stringify(noop.result.changeSummary)}; ${nix.calls("nix flake metadata")} \`nix flake metadata\` calls in the whole run.`,
        },
        {
            id: "P1b",
            what: `preview after the flake changed, ${FLEET} machines`,
            value: seconds(changed.ms),
            baseline: `${seconds(oneEval.ms)} (one \`nix eval\` of all ${FLEET} toplevels)`,
            ratio: ratio(changed.ms, oneEval.ms),
            goal: "≤ 1.3×",
            met: changed.ms <= 1.3 * oneEval.ms,
            notes: `summary ${JSON.stringify(changed.result.changeSummary)}.`,
        },
        {
            id: "P2",
            what: "no-op `pulumi up`",
            value: `${connections} TCP connections accepted by the ${FLEET} machines, ${builds} builds, ${seconds(noopUp.ms)}`,
            baseline: "—",
            goal: "0 SSH connections, 0 builds",
            met: connections === 0 && builds === 0,
        },
    ];
}
