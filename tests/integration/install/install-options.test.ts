import { execFileSync, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import * as hooks from "../../../provider/resources/install";
import * as rebuild from "../../../provider/resources/rebuild";
import { derivedHostKey } from "../../../provider/ssh/derived-key";
import type { Host, HostOptions } from "../../testbed/host";
import { buildFixture, fixtureCopy } from "../../testbed/nix";
import { hostsForThisFile } from "../../testbed/per-file";
import { failOnce } from "../../testbed/faults";
import { sshRun } from "../../testbed/ssh";
import { checked, connectionTo } from "./helpers";

const createHost = hostsForThisFile();
let dir: string;
beforeAll(() => {
    dir = fixtureCopy();
});

const installer = (extra: HostOptions = {}): Promise<Host> => createHost({ kind: "installer", disks: [128], ...extra });
const conn = (h: Host) => connectionTo(h);

describe("NixosInstall sources", () => {
    it("installs from a non-flake configuration.nix through <nixpkgs/nixos>", async () => {
        const h = await installer();
        const inputs = await checked({ connection: conn(h), nixosConfiguration: { file: `${dir}/non-flake/configuration.nix`, nixPath: { nixpkgs: `${dir}/nixpkgs` } }, phases: ["disko", "install", "reboot"] });
        expect(inputs.toplevel).toMatch(/-nixos-system-legacy-/);
        const { outs } = await hooks.create(inputs);
        await h.waitUp();
        expect((await h.execOk("readlink /run/current-system")).trim()).toBe(inputs.toplevel);
        expect(outs.phasesCompleted).toEqual(["disko", "install", "reboot"]);
    });

    it("installs prebuilt store paths, like --store-paths", async () => {
        const h = await installer();
        const toplevel = await buildFixture(dir, "web-bumped");
        const diskoScript = await buildFixture(dir, "web-bumped", "diskoScript");
        const { outs } = await hooks.create(await checked({ connection: conn(h), storePaths: { toplevel, diskoScript } }));
        expect(outs.toplevel).toBe(toplevel);
        await h.waitUp();
        expect((await sshRun(h, "hello", { pin: outs.hostKey })).stdout).toBe("hello 2.12.2\n");
    });

    it("says what the flake provides when the configuration name is wrong", async () => {
        const r = await hooks.check({}, { connection: { host: "h" }, flake: `path:${dir}/flake#wbe` });
        expect(r.failures).toHaveLength(1);
        expect(r.failures![0].property).toBe("flake");
        expect(r.failures![0].reason).toMatch(/does not provide nixosConfigurations."wbe".*it provides nixosConfigurations: web, web-big, web-broken/s);
    });
});

describe("NixosInstall files and keys", () => {
    it("writes extra files with modes and owners, keeps disk keys in installer RAM only, and pins the generated host key", async () => {
        const h = await installer();
        const inputs = await checked({
            connection: conn(h),
            flake: `path:${dir}/flake#web`,
            extraFiles: { "/var/lib/app/token": { content: "s3cret-token-value", mode: "0600", owner: "65534:65534" }, "/etc/motd": { content: "hello\n" } },
            diskEncryptionKeys: { "/tmp/disk.key": "disk-key-material-123" },
            phases: ["disko", "install"],
        });
        const { outs } = await hooks.create(inputs);
        // Still in the installer: the key is in RAM (/tmp is tmpfs) and nowhere on the new disk.
        expect(await h.execOk("cat /tmp/disk.key; stat -c %a /tmp/disk.key; findmnt -n -o FSTYPE /tmp")).toBe("disk-key-material-123600\ntmpfs\n");
        expect((await h.exec("grep -rl disk-key-material-123 /mnt")).stdout).toBe("");
        expect(await h.execOk("stat -c '%a %u:%g' /mnt/var/lib/app/token; cat /mnt/var/lib/app/token; stat -c %a /mnt/etc/motd")).toBe("600 65534:65534\ns3cret-token-value644\n");
        expect(await h.execOk("cut -d' ' -f1-2 /mnt/etc/ssh/ssh_host_ed25519_key.pub; stat -c %a /mnt/etc/ssh/ssh_host_ed25519_key")).toBe(`${outs.hostKey}\n600\n`);
        // Reboot as a resumed update: the generated key is what the new system must present.
        const boots = h.bootCount();
        const done = await hooks.update("id", outs, { ...inputs, phases: ["disko", "install", "reboot"] });
        await h.waitForReboot(boots);
        expect(done.outs.phasesCompleted).toEqual(["disko", "install", "reboot"]);
        expect(h.hostKey).toBe(outs.hostKey);
    });

    it("refuses after the reboot when another host key answers", async () => {
        const h = await installer();
        const inputs = await checked({ connection: conn(h), flake: `path:${dir}/flake#web`, phases: ["disko", "install"] });
        const { outs } = await hooks.create(inputs);
        // Someone swaps the key on the new disk: the machine that comes back is not the one we installed.
        await h.execOk("ssh-keygen -q -t ed25519 -N '' -f /tmp/other && cp /tmp/other /mnt/etc/ssh/ssh_host_ed25519_key && cp /tmp/other.pub /mnt/etc/ssh/ssh_host_ed25519_key.pub");
        const err = await hooks.update("id", outs, { ...inputs, phases: ["disko", "install", "reboot"], timeouts: { reboot: 20 } }).catch((e) => e);
        expect(err.message).toMatch(/^reboot on root@\S+ failed: the machine came back with a host key that is neither the installed system's \(SHA256:\S+\) nor the one it had before the reboot: it offered SHA256:\S+/);
        expect(err.message).toContain("otherwise something else answers at this address");
        expect(err.properties.phasesCompleted).toEqual(["disko", "install"]);
    });
});

describe("NixosInstall safety and resume", () => {
    it("resumes after a failed install without formatting again, and refuses a new disk layout on an installed machine", async () => {
        const h = await installer();
        const inputs = await checked({ connection: conn(h), flake: `path:${dir}/flake#web` });
        // (A missing extra-file source used to fail here; it is refused at check now.)
        await failOnce(h, "nixos-install");
        const err = await hooks.create(inputs).catch((e) => e);
        expect(err.message).toMatch(/^install on \S+ failed: nixos-install failed/);
        expect(err.properties.phasesCompleted).toEqual(["kexec", "disko"]);
        await h.execOk("mkdir -p /mnt/srv && echo keep-me > /mnt/srv/marker");
        const fixed = await checked({ connection: conn(h), flake: `path:${dir}/flake#web` });
        const { outs } = await hooks.update(err.id, err.properties, fixed);
        expect(outs.phasesCompleted).toEqual(["kexec", "disko", "install", "reboot"]);
        await h.waitUp();
        expect(await h.execOk("cat /srv/marker")).toBe("keep-me\n");

        const relayout = await checked({ connection: fixed.connection, flake: `path:${dir}/flake#web-two-disks` });
        await expect(hooks.diff(err.id, outs, relayout)).rejects.toThrow(/disk layout changed .* reinstalling wipes \/dev\/vda; set allowReinstall: true/s);
        expect(await hooks.diff(err.id, outs, { ...relayout, allowReinstall: true })).toMatchObject({ replaces: ["diskoScript"] });
        // A configuration change alone is NixosRebuild's business.
        const bumped = await checked({ connection: fixed.connection, flake: `path:${dir}/flake#web-bumped` });
        expect(await hooks.diff(err.id, outs, bumped)).toMatchObject({ changes: false });
    });

    it("refuses to format a disk that holds another installed system unless allowed", async () => {
        const h = await installer();
        const inputs = await checked({ connection: conn(h), flake: `path:${dir}/flake#web`, phases: ["disko", "install"] });
        await hooks.create(inputs);
        await h.execOk("umount -R /mnt");
        const other = await checked({ connection: conn(h), flake: `path:${dir}/flake#web-bumped`, phases: ["disko", "install"] });
        const err = await hooks.create(other).catch((e) => e);
        expect(err.message).toMatch(/disko on \S+ failed: refusing to format: \/dev\/vda already holds an installed NixOS/);
        expect((await hooks.create({ ...other, allowReinstall: true })).outs.phasesCompleted).toEqual(["disko", "install"]);
    });

    it("writes the host key where the configuration's sshd reads it (services.openssh.hostKeys), and the reboot verifies it", async () => {
        const h = await installer();
        const inputs = await checked({ connection: conn(h), flake: `path:${dir}/flake#web-key-elsewhere`, phases: ["disko", "install", "reboot"] });
        const { outs } = await hooks.create(inputs);
        await h.waitUp();
        expect(h.hostKey).toBe(outs.hostKey);
        const r = await sshRun(h, "cut -d' ' -f1-2 /var/lib/ssh/ssh_host_ed25519_key.pub; ls /etc/ssh", { pin: outs.hostKey });
        const [key, ...etcSsh] = r.stdout.trim().split("\n");
        expect(key).toBe(outs.hostKey);
        expect(etcSsh.filter((f) => f.startsWith("ssh_host_"))).toEqual([]);
    });

    it("refuses a tmpfs root whose host key would be lost at boot before disko formats anything", async () => {
        const h = await installer();
        const err = await hooks.create(await checked({ connection: conn(h), flake: `path:${dir}/flake#web-tmpfs-root`, phases: ["disko", "install", "reboot"] })).catch((e) => e);
        expect(err.message).toMatch(/^facts on \S+ failed: the host key's path \/etc\/ssh\/ssh_host_ed25519_key \(services\.openssh\.hostKeys\) is on \/, a tmpfs/);
        expect((await h.exec("blkid -o value -s TYPE /dev/vda")).stdout.trim()).toBe("");
    });

    it("refuses system.etc.overlay, which would hide the host key written to the disk's /etc, before disko formats anything", async () => {
        const h = await installer();
        const before = await h.execOk("head -c 4194304 /dev/vda | sha256sum");
        const err = await hooks.create(await checked({ connection: conn(h), flake: `path:${dir}/flake#web-etc-overlay`, phases: ["disko", "install", "reboot"] })).catch((e) => e);
        expect(err.message).toMatch(/^facts on \S+ failed: the host key's path \/etc\/ssh\/ssh_host_ed25519_key \(services\.openssh\.hostKeys\) is under \/etc, which system\.etc\.overlay mounts over at boot/);
        expect(await h.execOk("head -c 4194304 /dev/vda | sha256sum")).toBe(before);
    });

    it("recognises the system it installed when the run's state was lost after the reboot: same host key, nothing run again", async () => {
        const h = await installer();
        const inputs = await checked({ connection: conn(h), flake: `path:${dir}/flake#web` });
        const first = await hooks.create(inputs);
        await h.waitUp();
        const boots = h.bootCount();
        const uuid = (await h.execOk("blkid -o value -s UUID /dev/vda")).trim();
        // The same program again with no state, as after a `pulumi up` killed during the reboot.
        const { outs } = await hooks.create(inputs);
        expect(outs.phasesCompleted).toEqual(["kexec", "disko", "install", "reboot"]);
        expect(outs.hostKey).toBe(first.outs.hostKey);
        expect(h.bootCount()).toBe(boots);
        expect((await h.execOk("blkid -o value -s UUID /dev/vda")).trim()).toBe(uuid);
    });

    it("mounts, never formats, a disk that holds the system being installed (an earlier run's state was lost)", async () => {
        const h = await installer();
        const inputs = await checked({ connection: conn(h), flake: `path:${dir}/flake#web`, phases: ["disko", "install"] });
        await hooks.create(inputs);
        await h.execOk("echo keep-me > /mnt/srv-marker && umount -R /mnt");
        const uuid = (await h.execOk("blkid -o value -s UUID /dev/vda")).trim();
        // The same inputs again, with nothing recorded: as after a killed `pulumi up`.
        const { outs } = await hooks.create(inputs);
        expect(outs.phasesCompleted).toEqual(["disko", "install"]);
        expect((await h.execOk("blkid -o value -s UUID /dev/vda")).trim()).toBe(uuid);
        expect(await h.execOk("cat /mnt/srv-marker")).toBe("keep-me\n");
    });

    it.each([
        ["under a subvolume-like folder (btrfs @)", "@"],
        ["on a separate /nix file system", "nix-fs"],
    ])("refuses to format a disk whose installed system lives %s", async (_where, layout) => {
        const h = await installer();
        const inputs = await checked({ connection: conn(h), flake: `path:${dir}/flake#web`, phases: ["disko", "install"] });
        const profile = layout === "@" ? "/m/@/nix/var/nix/profiles" : "/m/var/nix/profiles";
        await h.execOk(`mkfs.ext4 -q -F /dev/vda && mkdir -p /m && mount /dev/vda /m && mkdir -p ${profile} && ln -s /nix/store/00000000000000000000000000000000-nixos-system-old ${profile}/system && umount /m`);
        const err = await hooks.create(inputs).catch((e) => e);
        expect(err.message).toMatch(/refusing to format: \/dev\/vda already holds an installed NixOS/);
        // Untouched: the old system's profile is still there.
        expect((await h.exec(`mount /dev/vda /m && test -L ${profile}/system; r=$?; umount /m; exit $r`)).code).toBe(0);
    });

    it("never starts a second nixos-install while one of an earlier run still runs there", async () => {
        const h = await installer();
        const inputs = await checked({ connection: conn(h), flake: `path:${dir}/flake#web`, phases: ["disko", "install"], timeouts: { install: 5 } });
        // An interrupted earlier run's nixos-install, still holding the machine's install lock.
        await h.execOk("mkdir -p /run/pulumi-nixos && (setsid flock /run/pulumi-nixos/nixos-install.lock sleep 60 </dev/null >/dev/null 2>&1 &)");
        const err = await hooks.create(inputs).catch((e) => e);
        expect(err.message).toMatch(/^install on \S+ failed: nixos-install of an earlier run is still running on the machine \(waited 5 s\)/);
        expect(err.properties.phasesCompleted).toEqual(["disko"]);
        expect((await h.exec("test -e /mnt/nix/var/nix/profiles/system")).code).not.toBe(0);
    });

    it('formats with diskoMode "format", then mounts, as disko\'s formatScript does not', async () => {
        const h = await installer();
        const { outs } = await hooks.create(await checked({ connection: conn(h), flake: `path:${dir}/flake#web`, phases: ["disko", "install"], diskoMode: "format" }));
        expect(outs.phasesCompleted).toEqual(["disko", "install"]);
        expect((await h.execOk("findmnt -n -o SOURCE /mnt")).trim()).toBe("/dev/vda");
    });
});

describe("NixosInstall access", () => {
    it("logs in as root with a password only", async () => {
        const h = await installer({ rootPassword: "root-pw-5" });
        const inputs = await checked({ connection: { host: h.address, password: "root-pw-5", hostKey: h.hostKey }, flake: `path:${dir}/flake#web`, phases: ["disko", "install"] });
        const { outs } = await hooks.create(inputs);
        expect(outs.phasesCompleted).toEqual(["disko", "install"]);
        expect((await h.execOk("readlink -f /mnt/nix/var/nix/profiles/system")).trim()).toBe(inputs.toplevel);
        // The host key comes from the password through scrypt and a random salt that the state keeps.
        expect(outs.keySalt).toMatch(/^[0-9a-f]{32}$/);
        expect(outs.hostKey).toBe(derivedHostKey({ password: "root-pw-5", salt: outs.keySalt as string }, h.address).publicKey);
    });
});

describe("NixosInstall hardware and host keys", () => {
    it("captures nixos-generate-config's hardware module, and keeps the installer's host key with hostKeyPair keep", async () => {
        const h = await installer({ disks: [128, 64] });
        const before = h.hostKey;
        const { outs } = await hooks.create(await checked({ connection: conn(h), flake: `path:${dir}/flake#web`, hardwareConfig: "nixos-generate-config", hostKeyPair: "keep" }));
        expect(outs.hardwareConfig).toMatch(/^# Do not modify this file!/);
        expect(outs.hardwareConfig).toContain('boot.initrd.availableKernelModules = [ "virtio_pci" "virtio_blk" ];');
        expect(outs.hardwareConfig).toContain("# disks: vda vdb");
        // nixos-anywhere's flags: --no-filesystems, as disko declares them.
        expect(outs.hardwareConfig).not.toContain("fileSystems");
        expect(outs.hostKey).toBe(before);
        await h.waitUp();
        expect(h.hostKey).toBe(before);
    });

    it("captures a nixos-facter report, and installs a given host key pair", async () => {
        const h = await installer({ memMiB: 2048 });
        const keyDir = fs.mkdtempSync(path.join(os.tmpdir(), "pnx-given-key-"));
        execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "", "-f", `${keyDir}/k`]);
        const given = fs.readFileSync(`${keyDir}/k.pub`, "utf8").trim();
        const { outs } = await hooks.create(
            await checked({ connection: conn(h), flake: `path:${dir}/flake#web`, hardwareConfig: "nixos-facter", hostKeyPair: { privateKey: fs.readFileSync(`${keyDir}/k`, "utf8") } }),
        );
        fs.rmSync(keyDir, { recursive: true });
        const report = JSON.parse(outs.hardwareConfig ?? "");
        expect(report.system).toBe("x86_64-linux");
        expect(report.hardware.memory[0].resources[0].range).toBe(2048 * 1024 * 1024);
        expect(report.hardware.disk.map((d: any) => [d.unix_device_names[0], d.resources[0].value])).toEqual([["/dev/vda", 128 * 1024 * 1024]]);
        expect(outs.hostKey).toBe(given);
        await h.waitUp();
        expect(h.hostKey).toBe(given);
    });
});

describe("buildOn remote", () => {
    it("NixosInstall and NixosRebuild let the target build: the deployer only evaluates", async () => {
        const h = await installer();
        const localValid = (p: string) => spawnSync("nix-store", ["--check-validity", p]).status === 0;
        const inputs = await checked({ connection: conn(h), flake: `path:${dir}/flake#web-remote`, buildOn: "remote" });
        const { outs } = await hooks.create(inputs);
        expect(outs.phasesCompleted).toEqual(["kexec", "disko", "install", "reboot"]);
        expect(localValid(inputs.toplevel)).toBe(false);
        expect(localValid(inputs.diskoScript)).toBe(false);
        await h.waitUp();
        expect((await h.execOk("readlink /run/current-system")).trim()).toBe(inputs.toplevel);

        const connection = { ...conn(h), hostKey: outs.hostKey };
        const check = async (olds: Record<string, unknown>, name: string) => {
            const r = await rebuild.check(olds, { __nixosName: "web", connection, flake: `path:${dir}/flake#${name}`, buildOn: "remote", confirmTimeout: 10 });
            expect(r.failures ?? []).toEqual([]);
            return r.inputs!;
        };
        const adopted = (await rebuild.create(await check({}, "web-remote"))).outs;
        const next = await check(adopted, "web-remote-bumped");
        // Nothing is built locally, so the preview compares derivations, and says so.
        expect(next.packageChanges).toEqual(["hello: 2.12.1 → 2.12.3", "(from derivations: the new system is not built yet)"]);
        const deployed = await rebuild.update("id", adopted, next);
        expect(deployed.outs.currentSystem).toBe(next.toplevel);
        expect(localValid(next.toplevel ?? "")).toBe(false);
        expect((await sshRun(h, "hello", { pin: outs.hostKey })).stdout).toBe("hello 2.12.3\n");
    });
});
