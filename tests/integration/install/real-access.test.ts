/**
 * NixosInstall on hosts shaped like real cloud machines: root may not log in, sshd on another
 * port, password-only logins, a login user the new system does not declare, a ZFS root. The kexec
 * image behaves as nixos-images' does (see tests/fixtures/kexec/run): it carries only authorized_keys
 * files, listens on 22, and the old system answers for 6 s after kexec/run returns.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import * as hooks from "../../../provider/resources/install";
import { buildKexecTarball } from "../../testbed/kexec";
import { fixtureCopy } from "../../testbed/nix";
import { hostsForThisFile } from "../../testbed/per-file";
import { sshRun } from "../../testbed/ssh";
import { clientKey } from "../../testbed/state";
import { checked } from "./helpers";

const createHost = hostsForThisFile();
let dir: string;
let image: string;
beforeAll(() => {
    dir = fixtureCopy();
    image = buildKexecTarball(fs.mkdtempSync(path.join(os.tmpdir(), "pnx-kexec-")));
});
const flake = (name: string) => `path:${dir}/flake#${name}`;

describe("NixosInstall on cloud-shaped hosts", () => {
    it("installs as a sudo user where root may not log in and sshd listens on 2222: the installer is reached as root on 22", async () => {
        const h = await createHost({ disks: [128], permitRootLogin: "no", sshPort: 2222, extraUser: { name: "admin" } });
        await expect(sshRun(h, "true")).rejects.toThrow(/Permission denied|exited|failed/); // root is refused by the old system
        const inputs = await checked({ connection: { host: h.address, port: 2222, user: "admin", privateKey: clientKey().privateKey, hostKey: h.hostKey }, flake: flake("web"), kexecTarball: image });
        const { outs } = await hooks.create(inputs);
        expect(outs.phasesCompleted).toEqual(["kexec", "disko", "install", "reboot"]);
        await h.waitUp();
        expect(await h.bootKind()).toBe("nixos");
        expect((await h.execOk("readlink /run/current-system")).trim()).toBe(inputs.toplevel);
    });

    it("installs over a password-only login: a key derived from the password is put where kexec/run carries it, and never stored", async () => {
        const h = await createHost({ disks: [128], permitRootLogin: "no", authorizedKeys: [], extraUser: { name: "admin", password: "admin-pw-7", authorizedKeys: false } });
        const inputs = await checked({ connection: { host: h.address, user: "admin", password: "admin-pw-7", hostKey: h.hostKey }, flake: flake("web"), kexecTarball: image, phases: ["kexec"] });
        const first = await hooks.create(inputs);
        expect(first.outs.phasesCompleted).toEqual(["kexec"]);
        expect(await h.bootKind()).toBe("installer");
        const carried = (await h.execOk("cat /root/.ssh/authorized_keys")).trim().split("\n");
        expect(carried).toHaveLength(1);
        expect(first.outs.installerAccessKey).toBeUndefined();
        // A run with no state at all (as after a killed `pulumi up`) derives the same key, reaches
        // the installer with it, and the install completes.
        const { outs } = await hooks.create({ ...inputs, phases: ["kexec", "disko", "install", "reboot"] });
        expect(outs.phasesCompleted).toEqual(["kexec", "disko", "install", "reboot"]);
        expect(outs.installerAccessKey).toBeUndefined();
        await h.waitUp();
        expect((await h.execOk("readlink /run/current-system")).trim()).toBe(inputs.toplevel);
    });

    it.each([
        ["root with the old host key the image carries", true],
        ["root trusted on first use, when no host key is pinned", false],
    ])("resumes in the installer when the run that kexec'd recorded nothing (killed): %s", async (_how, pinned) => {
        const h = await createHost({ disks: [128], permitRootLogin: "no", extraUser: { name: "admin" } });
        const inputs = await checked({ connection: { host: h.address, user: "admin", privateKey: clientKey().privateKey, hostKey: pinned ? h.hostKey : undefined }, flake: flake("web"), kexecTarball: image });
        await hooks.create({ ...inputs, phases: ["kexec"] });
        expect(await h.bootKind()).toBe("installer");
        const boots = h.bootCount();
        // As after a SIGKILL: no state at all, so the engine creates again.
        const { outs } = await hooks.create(inputs);
        expect(outs.phasesCompleted).toEqual(["kexec", "disko", "install", "reboot"]);
        expect(h.bootCount()).toBe(boots + 1); // no second kexec: only the final reboot
        await h.waitUp();
        expect((await h.execOk("readlink /run/current-system")).trim()).toBe(inputs.toplevel);
    });

    it("adopts the system a killed run installed, as root on 22, when the old login (admin on 2222) is gone", async () => {
        const h = await createHost({ disks: [128], permitRootLogin: "no", sshPort: 2222, extraUser: { name: "admin" } });
        const inputs = await checked({ connection: { host: h.address, port: 2222, user: "admin", privateKey: clientKey().privateKey, hostKey: h.hostKey }, flake: flake("web-root-only"), kexecTarball: image });
        const first = await hooks.create(inputs);
        await h.waitUp();
        const boots = h.bootCount();
        // The same program with no state, as after a `pulumi up` killed during the reboot.
        const { outs } = await hooks.create(inputs);
        expect(outs.phasesCompleted).toEqual(["kexec", "disko", "install", "reboot"]);
        expect(outs.hostKey).toBe(first.outs.hostKey);
        expect(h.bootCount()).toBe(boots);
    });

    it("checks the installed system as root when the old login user is not in the new configuration", async () => {
        const h = await createHost({ disks: [128], permitRootLogin: "no", extraUser: { name: "admin" } });
        const inputs = await checked({ connection: { host: h.address, user: "admin", privateKey: clientKey().privateKey, hostKey: h.hostKey }, flake: flake("web-root-only"), kexecTarball: image });
        const { outs } = await hooks.create(inputs);
        expect(outs.phasesCompleted).toEqual(["kexec", "disko", "install", "reboot"]);
        await h.waitUp();
        expect((await h.exec("id admin")).code).not.toBe(0);
        expect((await h.execOk("readlink /run/current-system")).trim()).toBe(inputs.toplevel);
    });

    it("exports the ZFS pool before the reboot, so the installed system imports its root", async () => {
        const h = await createHost({ disks: [128] });
        const inputs = await checked({ connection: { host: h.address, privateKey: clientKey().privateKey, hostKey: h.hostKey }, flake: flake("web-zfs"), kexecTarball: image, timeouts: { reboot: 20 } });
        const { outs } = await hooks.create(inputs);
        expect(outs.phasesCompleted).toEqual(["kexec", "disko", "install", "reboot"]);
        await h.waitUp();
        expect((await h.execOk("readlink /run/current-system")).trim()).toBe(inputs.toplevel);
    });
});
