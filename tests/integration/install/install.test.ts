import * as fs from "node:fs";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import * as hooks from "../../../provider/resources/install";
import { buildKexecTarball } from "../../testbed/kexec";
import { fixtureCopy } from "../../testbed/nix";
import { sshRun } from "../../testbed/ssh";
import { clientKey } from "../../testbed/state";
import { failOnce } from "../../testbed/faults";
import { hostsForThisFile } from "../../testbed/per-file";
import { checked, connectionTo } from "./helpers";

const createHost = hostsForThisFile();
let dir: string;
beforeAll(() => {
    dir = fixtureCopy();
});
let image: string | undefined;
/** The test-bed kexec image, built once for this file; like nixos-images' default, it carries the host keys. */
const kexecImage = () => (image ??= buildKexecTarball(fs.mkdtempSync(path.join(os.tmpdir(), "pnx-kexec-"))));
/** A custom image that does not carry the host keys. */
const keylessImage = () => buildKexecTarball(fs.mkdtempSync(path.join(os.tmpdir(), "pnx-kexec-")), { carryHostKeys: false });

const connection = connectionTo;

describe("NixosInstall hooks", () => {
    it("install onto a Debian host: kexec, disko, install, reboot, and the new system runs with the generated host key", async () => {
        const h = await createHost({ disks: [128] });
        const inputs = await checked({ connection: connection(h), flake: `path:${dir}/flake#web`, kexecTarball: kexecImage() });
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
        const inputs = await checked({ connection: connection(h), flake: `path:${dir}/flake#web`, kexecTarball: kexecImage() });
        const err = await hooks.create(inputs).catch((e) => e);
        expect(err.message).toMatch(/^facts on root@10\.123\.0\.\d+ failed: the target has 768 MiB of RAM, but the kexec installer needs at least 1536 MiB/);
        expect(err.properties.phasesCompleted).toEqual([]);
        expect(await h.bootKind()).toBe("debian");
    });
});

describe("NixosInstall kexec", () => {
    it("downloads the kexec image by URL on the target, and phases [\"kexec\"] stops in the installer", async () => {
        const h = await createHost({ disks: [64] });
        const tarball = kexecImage();
        // Served on the test network's bridge address only, as a mirror of nixos-images would be.
        let requests = 0;
        const server = http.createServer((req, res) => {
            requests++;
            if (req.url !== `/${path.basename(tarball)}`) return void res.writeHead(404).end();
            res.writeHead(200, { "content-type": "application/gzip" });
            fs.createReadStream(tarball).pipe(res);
        });
        await new Promise<void>((r) => server.listen(0, "10.123.0.1", r));
        try {
            const url = `http://10.123.0.1:${(server.address() as AddressInfo).port}/${path.basename(tarball)}`;
            const { outs } = await hooks.create(await checked({ connection: connection(h), flake: `path:${dir}/flake#web`, kexecTarball: url, phases: ["kexec"] }));
            expect(outs.phasesCompleted).toEqual(["kexec"]);
            expect(requests).toBe(1);
            expect(await h.bootKind()).toBe("installer");
            expect((await h.exec("mountpoint -q /mnt")).code).not.toBe(0);
        } finally {
            server.close();
        }
    });

    it("refuses disko and install on a running Debian when the phases leave out kexec, before touching a disk", async () => {
        const h = await createHost({ disks: [64] });
        await h.execOk("echo precious-data | dd of=/dev/vda conv=notrunc status=none");
        const err = await hooks.create(await checked({ connection: connection(h), flake: `path:${dir}/flake#web`, phases: ["disko", "install", "reboot"] })).catch((e) => e);
        expect(err.message).toMatch(/^facts on \S+ failed: the machine runs debian, not a NixOS installer, and the phases do not include kexec/);
        expect(err.message).toContain('add "kexec" to phases');
        expect(err.properties.phasesCompleted).toEqual([]);
        expect(await h.execOk("head -c 14 /dev/vda")).toBe("precious-data\n");
    });
});

describe("NixosInstall host keys through kexec", () => {
    it("keeps the old system's host keys with copyHostKeys, even when the kexec image does not carry them", async () => {
        const h = await createHost({ disks: [128] });
        const old = h.hostKey;
        const { outs } = await hooks.create(await checked({ connection: connection(h), flake: `path:${dir}/flake#web`, kexecTarball: keylessImage(), copyHostKeys: true }));
        expect(outs.hostKey).toBe(old);
        expect(outs.phasesCompleted).toEqual(["kexec", "disko", "install", "reboot"]);
        await h.waitUp();
        expect(h.hostKey).toBe(old);
        expect(await h.execOk("stat -c %a /etc/ssh/ssh_host_ed25519_key")).toBe("600\n");
    });
});

describe("NixosInstall access", () => {
    it("installs through a bastion as a user whose sudo asks for a password, then resumes as root in the installer", async () => {
        const [h, bastion] = await Promise.all([createHost({ disks: [128], extraUser: { name: "ops", password: "ops-sudo-pw-4" } }), createHost({ name: "bastion" })]);
        const inputs = await checked({
            connection: connection(h, { user: "ops", password: "ops-sudo-pw-4", proxy: { host: bastion.address, privateKey: clientKey().privateKey, hostKey: bastion.hostKey } }),
            flake: `path:${dir}/flake#web`,
            kexecTarball: kexecImage(),
            phases: ["kexec"],
        });
        const first = await hooks.create(inputs);
        expect(first.outs.phasesCompleted).toEqual(["kexec"]);
        expect(await h.bootKind()).toBe("installer");
        // The next run finds the installer, which has no "ops": root, with the key recorded at the kexec.
        const { outs } = await hooks.update(first.id, first.outs, { ...inputs, phases: ["kexec", "disko", "install"] });
        expect(outs.phasesCompleted).toEqual(["kexec", "disko", "install"]);
        expect(await h.bootKind()).toBe("installer");
        expect((await h.execOk("readlink -f /mnt/nix/var/nix/profiles/system")).trim()).toBe(inputs.toplevel);
        // The bastion only forwarded: it saw no install.
        expect((await bastion.exec("ls /root/kexec")).code).not.toBe(0);
    });
});

describe("NixosInstall resume", () => {
    it("fails in each phase in turn; every re-run resumes at the failed phase, with one kexec, one format and one install", async () => {
        const h = await createHost({ disks: [128] });
        const inputs = await checked({ connection: connection(h), flake: `path:${dir}/flake#web`, kexecTarball: kexecImage(), timeouts: { reboot: 8 } });
        const all = ["kexec", "disko", "install", "reboot"];
        const boots = h.bootCount();

        // kexec: unpacking the image fails before the machine changes.
        await failOnce(h, "cpio");
        let err = await hooks.create(inputs).catch((e) => e);
        expect(err.message).toMatch(/^kexec on \S+ failed: the kexec script did not start the installer/);
        expect(err.properties.phasesCompleted).toEqual([]);
        expect(h.bootCount()).toBe(boots);

        // disko: the disk is read-only (the flag outlives the kexec), so formatting fails.
        await h.execOk("blockdev --setro /dev/vda");
        err = await hooks.update(err.id, err.properties, inputs).catch((e) => e);
        expect(err.message).toMatch(/^disko on \S+ failed/);
        expect(err.properties.phasesCompleted).toEqual(["kexec"]);
        expect(`${err.properties.installerHostKey}\n`).toBe(await h.execOk("cut -d' ' -f1-2 /etc/ssh/ssh_host_ed25519_key.pub"));
        expect(await h.bootKind()).toBe("installer");
        const installerBoot = h.bootCount();
        await h.execOk("blockdev --setrw /dev/vda");

        // install: nixos-install fails once. The installer, with its own host key, is accepted on resume.
        await failOnce(h, "nixos-install");
        err = await hooks.update(err.id, err.properties, inputs).catch((e) => e);
        expect(err.message).toMatch(/^install on \S+ failed: nixos-install failed/);
        expect(err.properties.phasesCompleted).toEqual(["kexec", "disko"]);
        expect(h.bootCount()).toBe(installerBoot);
        await h.execOk("mkdir -p /mnt/srv && echo keep-me > /mnt/srv/marker");

        // reboot: the machine refuses to go down once.
        await failOnce(h, "reboot");
        err = await hooks.update(err.id, err.properties, inputs).catch((e) => e);
        expect(err.message).toMatch(/^reboot on \S+ failed: the machine did not go down within 8 s/);
        expect(err.properties.phasesCompleted).toEqual(["kexec", "disko", "install"]);
        expect(err.properties.hostKey).toMatch(/^ssh-ed25519 /);

        const { outs } = await hooks.update(err.id, err.properties, inputs);
        expect(outs.phasesCompleted).toEqual(all);
        expect(outs.installerHostKey).toBeUndefined();
        await h.waitUp();
        expect(h.bootCount()).toBe(installerBoot + 1);
        expect(h.hostKey).toBe(outs.hostKey);
        // Nothing was formatted or installed twice.
        expect(await h.execOk("cat /srv/marker; grep -c ' install ' /var/lib/testbed/activations.log")).toBe("keep-me\n1\n");
    });
});
