/**
 * Once per `vitest run`: gives the run an id, makes its client key, and afterwards removes every
 * test host the run recorded (and those of earlier runs whose runner died), by recorded id only.
 * The run's temporary files (TMPDIR for every test, and for what they start: Nix, the engine, npm)
 * go into one folder of its own, removed with its hosts: e2e stacks alone leave about 1.5 GB a run.
 */
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { destroyRecord, removeBridgeIfUnused, alive, HostRecord } from "./testbed/host";
import { clientKey, stateDir } from "./testbed/state";

async function sweep(runId: string): Promise<number> {
    const hostsDir = path.join(stateDir(), "runs", runId, "hosts");
    let n = 0;
    for (const f of fs.existsSync(hostsDir) ? fs.readdirSync(hostsDir) : []) {
        const record = JSON.parse(fs.readFileSync(path.join(hostsDir, f), "utf8")) as HostRecord;
        await destroyRecord(record);
        n++;
    }
    const tmpFile = path.join(stateDir(), "runs", runId, "tmpdir");
    if (fs.existsSync(tmpFile)) fs.rmSync(fs.readFileSync(tmpFile, "utf8"), { recursive: true, force: true });
    fs.rmSync(path.join(stateDir(), "runs", runId), { recursive: true, force: true });
    return n;
}

export async function setup(): Promise<void> {
    const runId = `run-${process.pid}-${Date.now()}`;
    process.env.PULUMI_NIXOS_TESTBED_RUN = runId;
    fs.mkdirSync(path.join(stateDir(), "runs", runId), { recursive: true });
    fs.writeFileSync(path.join(stateDir(), "runs", runId, "owner.pid"), String(process.pid));
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), `pnx-${runId}-`));
    fs.writeFileSync(path.join(stateDir(), "runs", runId, "tmpdir"), tmp);
    process.env.TMPDIR = tmp;
    // Leftovers of runs whose runner is gone.
    for (const old of fs.readdirSync(path.join(stateDir(), "runs"))) {
        if (old === runId) continue;
        const ownerFile = path.join(stateDir(), "runs", old, "owner.pid");
        const owner = fs.existsSync(ownerFile) ? Number(fs.readFileSync(ownerFile, "utf8")) : 0;
        if (!owner || !alive(owner)) {
            const n = await sweep(old);
            if (n) console.log(`test bed: removed ${n} host(s) left over by ${old}`);
        }
    }
    clientKey();
    // The e2e tier installs the package the way users get it: from `npm pack` of the current build.
    const root = path.resolve(__dirname, "..");
    execFileSync(process.execPath, [path.join(root, "node_modules/typescript/bin/tsc"), "-p", path.join(root, "tsconfig.json")], { stdio: "inherit" });
    const packDir = path.join(stateDir(), "runs", runId, "pack");
    fs.mkdirSync(packDir, { recursive: true });
    const name = execFileSync("npm", ["pack", "--silent", "--pack-destination", packDir, root], { cwd: root }).toString().trim().split("\n").pop()!;
    process.env.PULUMI_NIXOS_PACKED = path.join(packDir, name);
}

export async function teardown(): Promise<void> {
    const runId = process.env.PULUMI_NIXOS_TESTBED_RUN!;
    const n = await sweep(runId);
    if (n) console.log(`test bed: global teardown removed ${n} host(s) a test left behind`);
    await removeBridgeIfUnused();
}
