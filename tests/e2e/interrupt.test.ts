/**
 * `pulumi up` interrupted as users interrupt it, during each phase of an install:
 * - Ctrl-C once (SIGINT to the CLI): the engine cancels after the running step;
 * - Ctrl-C twice: the CLI exits at once and its provider with it, recording nothing;
 * - the machine reset (power cycle) under a running install.
 * The same program's next `pulumi up` converges with no hand edits, and a disk whose install had
 * completed is never formatted again.
 */
import { execFileSync, spawn } from "node:child_process";
import * as path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import type { Host } from "../testbed/host";
import { buildKexecTarball } from "../testbed/kexec";
import { buildFixture, fixtureCopy } from "../testbed/nix";
import { hostsForThisFile } from "../testbed/per-file";
import { clientKey } from "../testbed/state";
import { engineRoot } from "./engine";
import { collect, exampleStack, ExampleStack } from "./stack";

const createHost = hostsForThisFile();
let fixtures: string;
beforeAll(() => {
    fixtures = fixtureCopy();
});

async function quickstartFor(host: Host): Promise<ExampleStack> {
    const s = await exampleStack("quickstart", "e2e");
    const cfg = (key: string, value: string) => s.stack.setConfig(key, { value });
    await cfg("host", host.address);
    await cfg("hostKey", host.hostKey);
    await cfg("privateKeyFile", clientKey().privateKeyPath);
    await cfg("flake", `path:${fixtures}/flake#web`);
    await cfg("kexecTarball", buildKexecTarball(path.join(s.workDir, "..")));
    return s;
}

type Fault = "ctrl-c" | "ctrl-c twice" | "reset";

/**
 * `pulumi up` through the CLI, with `fault` done once its output matches `at` (a second Ctrl-C
 * one second after the first). Bounded: the CLI is killed after five minutes. A reset host is
 * back up when this resolves.
 */
function faultedUp(s: ExampleStack, host: Host, at: RegExp, fault: Fault): Promise<{ code: number | null; output: string; faulted: boolean }> {
    let reset: Promise<void> = Promise.resolve();
    return new Promise((resolve) => {
        const cli = spawn(path.join(engineRoot(), "bin", "pulumi"), ["up", "--yes", "--skip-preview", "--non-interactive", "--stack", "e2e"], { cwd: s.workDir, env: s.env });
        let output = "";
        let faulted = false;
        const bound = setTimeout(() => cli.kill("SIGKILL"), 300_000);
        const onData = (d: Buffer) => {
            output += d.toString();
            if (faulted || !at.test(output)) return;
            faulted = true;
            if (fault === "reset") reset = host.powerCycle();
            else cli.kill("SIGINT");
            if (fault === "ctrl-c twice") setTimeout(() => cli.kill("SIGINT"), 1000);
        };
        cli.stdout.on("data", onData);
        cli.stderr.on("data", onData);
        cli.on("close", (code) => {
            clearTimeout(bound);
            // A reset machine is back (booted from its disks) before the next step looks at it.
            void reset.then(() => resolve({ code, output, faulted }));
        });
    });
}

/** The file-system UUID on each of the host's disks: a format makes a new one. */
function diskIds(host: Host): string[] {
    return host.loopDevices.map((l) => {
        try {
            return execFileSync("blkid", ["-o", "value", "-s", "UUID", l], { encoding: "utf8" }).trim();
        } catch {
            return "";
        }
    });
}

/**
 * Whether a system is installed on the disk: the installed system runs, or its profile is in /mnt.
 * The killed run may have asked for the reboot just before it died: a host going down is waited for.
 */
async function installed(host: Host): Promise<boolean> {
    for (let attempt = 1; ; attempt++) {
        await host.waitUp(60);
        try {
            return (await host.bootKind()) === "nixos" || (await host.exec("test -L /mnt/nix/var/nix/profiles/system")).code === 0;
        } catch (e) {
            if (attempt >= 3 || !/is not running/.test(String(e))) throw e;
        }
    }
}

describe("an interrupted pulumi up", () => {
    it.each([
        { phase: "kexec", at: /machine: kexec: uploading/, fault: "ctrl-c twice" },
        { phase: "disko", at: /machine: disko: running the disko script/, fault: "ctrl-c twice" },
        { phase: "the closure copy into /mnt", at: /machine: install: copying/, fault: "ctrl-c twice" },
        { phase: "the reboot", at: /machine: reboot: rebooting/, fault: "ctrl-c twice" },
        { phase: "kexec", at: /machine: kexec: uploading/, fault: "ctrl-c" },
        { phase: "the install", at: /machine: install: started/, fault: "ctrl-c" },
        { phase: "the reboot", at: /machine: reboot: rebooting/, fault: "ctrl-c" },
        { phase: "the install", at: /machine: install: started/, fault: "reset" },
    ] as const)("during $phase ($fault): the next up converges without hand edits or a second format", async ({ at, fault }) => {
        const host = await createHost({ name: "intr", disks: [256] });
        const s = await quickstartFor(host);
        const web = await buildFixture(fixtures, "web");

        const first = await faultedUp(s, host, at, fault);
        expect(first.faulted).toBe(true);
        if (fault !== "ctrl-c") expect(first.code).not.toBe(0);
        if (fault === "reset") expect(first.output).toMatch(/(install|reboot) on \S+ failed/);
        const wasInstalled = await installed(host);
        const before = diskIds(host);

        const up = await s.stack.up(collect(s));
        expect(up.summary.result).toBe("succeeded");
        await host.waitUp();
        expect(await host.bootKind()).toBe("nixos");
        expect((await host.execOk("readlink /run/current-system")).trim()).toBe(web);
        if (wasInstalled) expect(diskIds(host)).toEqual(before);
        expect((await s.stack.preview(collect(s))).changeSummary).toEqual({ same: 3 });
    });
});
