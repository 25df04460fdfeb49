import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as hooks from "../../../provider/resources/install";
import { createHost, Host } from "../../testbed/host";
import { buildKexecTarball } from "../../testbed/kexec";
import { fixtureCopy } from "../../testbed/nix";
import { sshRun } from "../../testbed/ssh";
import { checked, connectionTo } from "./helpers";

const hosts: Host[] = [];
let dir: string;
beforeAll(() => {
    dir = fixtureCopy();
});
afterAll(async () => {
    await Promise.all(hosts.map((h) => h.destroy()));
});

const connection = connectionTo;

describe("NixosInstall hooks", () => {
    it("install onto a Debian host: kexec, disko, install, reboot, and the new system runs with the generated host key", async () => {
        const h = await createHost({ disks: [128] });
        hosts.push(h);
        const tarball = buildKexecTarball(fs.mkdtempSync(path.join(os.tmpdir(), "pnx-kexec-")));
        const inputs = await checked({ connection: connection(h), flake: `path:${dir}/flake#web`, kexecTarball: tarball });
        expect(inputs.toplevel).toMatch(/-nixos-system-web-/);
        const { outs } = await hooks.create(inputs);
        expect(outs.phasesCompleted).toEqual(["kexec", "disko", "install", "reboot"]);
        await h.waitUp();
        expect(h.hostKey).toBe(outs.hostKey);
        expect(await h.bootKind()).toBe("nixos");
        const r = await sshRun(h, "readlink /run/current-system; cat /proc/sys/kernel/random/boot_id", { pin: outs.hostKey });
        expect(r.stdout).toBe(`${inputs.toplevel}\n${outs.bootId}\n`);
    });

    it("refuses an unreachable RAM requirement before touching the machine", async () => {
        const h = await createHost({ disks: [64], memMiB: 768 });
        hosts.push(h);
        const tarball = buildKexecTarball(fs.mkdtempSync(path.join(os.tmpdir(), "pnx-kexec-")));
        const inputs = await checked({ connection: connection(h), flake: `path:${dir}/flake#web`, kexecTarball: tarball });
        const err = await hooks.create(inputs).catch((e) => e);
        expect(err.message).toMatch(/^facts on root@10\.123\.0\.\d+ failed: the target has 768 MiB of RAM, but the kexec installer needs at least 1536 MiB/);
        expect(err.properties.phasesCompleted).toEqual([]);
        expect(await h.bootKind()).toBe("debian");
    });
});
