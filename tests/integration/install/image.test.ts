import { execFileSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { growImage } from "../../../provider/phases/image-grow";
import { writeImage } from "../../../provider/phases/image-write";
import * as hooks from "../../../provider/resources/install";
import { Target } from "../../../provider/ssh/target";
import type { Host } from "../../testbed/host";
import { clientKey } from "../../testbed/state";
import { failOnce } from "../../testbed/faults";
import { buildFixture, fixtureCopy, nixEnv } from "../../testbed/nix";
import { hostsForThisFile } from "../../testbed/per-file";
import { sshRun } from "../../testbed/ssh";
import { checked, connectionTo } from "./helpers";

const createHost = hostsForThisFile();
let dir: string;
beforeAll(() => {
    dir = fixtureCopy();
});

const MiB = 1048576;

/** An install by image of fixture configuration `name` onto a rescue host. */
const imageInputs = (h: Parameters<typeof connectionTo>[0], name: string, extra: Record<string, unknown> = {}) =>
    checked({ connection: connectionTo(h), flake: `path:${dir}/flake#${name}`, method: "image", ...extra });

/** Installs fixture configuration `name` by image onto `h`, then waits until the installed system answers. */
async function installedByImage(h: Host, name: string, extra: Record<string, unknown> = {}) {
    const inputs = await imageInputs(h, name, extra);
    const { outs } = await hooks.create(inputs);
    await h.waitUp();
    return { inputs, outs };
}

describe("NixosInstall by image onto a rescue system", () => {
    it("writes a whole-disk ext4 image onto a 512 MiB rescue host, grows the file system to the disk, writes the extra files and the host key, and reboots into it", async () => {
        const h = await createHost({ kind: "rescue", disks: [256] });
        expect(await h.bootKind()).toBe("rescue");
        const inputs = await imageInputs(h, "web", { extraFiles: { "/etc/demo.conf": { content: "demo=1\n", mode: "0600" } } });
        expect(inputs.image).toMatch(/^\/nix\/store\/[a-z0-9]{32}-disko-images-web$/);
        const { outs } = await hooks.create(inputs);
        expect(outs.phasesCompleted).toEqual(["write", "install", "reboot"]);
        await h.waitUp();
        expect(await h.bootKind()).toBe("nixos");
        expect(h.hostKey).toBe(outs.hostKey);
        const r = await sshRun(h, "readlink /run/current-system; cat /etc/demo.conf; stat -c %a /etc/demo.conf; df -B1 --output=size / | tail -1", { pin: outs.hostKey });
        const [current, conf, mode, size] = r.stdout.trim().split("\n");
        expect(current).toBe(inputs.toplevel);
        expect(conf).toBe("demo=1");
        expect(mode).toBe("600");
        // The image was 64 MiB; the file system now spans the 256 MiB disk (less ext4's overhead).
        expect(Number(size)).toBeGreaterThan(200 * MiB);
    });

    it("writes a GPT image, moves the backup header and grows the last partition and its ext4 to the end of the disk", async () => {
        const h = await createHost({ kind: "rescue", disks: [192] });
        const { inputs, outs } = await installedByImage(h, "web-gpt");
        expect(outs.phasesCompleted).toEqual(["write", "install", "reboot"]);
        const r = await sshRun(h, "readlink /run/current-system; sfdisk -d /dev/vda", { pin: outs.hostKey });
        expect(r.stdout.split("\n")[0]).toBe(inputs.toplevel);
        const disk = 192 * 2048;
        // last-lba: the backup header moved to the disk's end (33 sectors of GPT after it).
        expect(r.stdout).toContain(`last-lba: ${disk - 34}`);
        const root = /vda3 : start=\s*(\d+), size=\s*(\d+)/.exec(r.stdout)!;
        expect(Number(root[1]) + Number(root[2])).toBe(disk - 33);
        const fs = await sshRun(h, "dumpe2fs -h /dev/vda3 2>/dev/null | awk -F: '/^Block count/ {c=$2} /^Block size/ {s=$2} END {print c*s}'", { pin: outs.hostKey });
        expect(Number(fs.stdout)).toBeGreaterThan(180 * MiB);
    });

    it("grows the partition of an MBR (dos) image and its ext4 to the end of the disk", async () => {
        const h = await createHost({ kind: "rescue", disks: [160] });
        const { inputs, outs } = await installedByImage(h, "web-dos");
        const r = await sshRun(h, "readlink /run/current-system; sfdisk -d /dev/vda", { pin: outs.hostKey });
        expect(r.stdout.split("\n")[0]).toBe(inputs.toplevel);
        expect(r.stdout).toContain("label: dos");
        expect(r.stdout).toMatch(new RegExp(`vda1 : start=\\s*2048, size=\\s*${160 * 2048 - 2048}, type=83`));
    });

    it("installs a qcow2 image given as storePaths.image, converted to raw on the deployer and the conversion removed after", async () => {
        const h = await createHost({ kind: "rescue", disks: [128] });
        const toplevel = await buildFixture(dir, "web");
        const raw = path.join(await buildFixture(dir, "web", "diskoImages"), "main.raw");
        const work = fs.mkdtempSync(path.join(os.tmpdir(), "pnx-qcow2-"));
        execFileSync("qemu-img", ["convert", "-O", "qcow2", raw, path.join(work, "nixos.qcow2")]);
        const image = execFileSync("nix-store", ["--add", path.join(work, "nixos.qcow2")], { env: nixEnv(), encoding: "utf8" }).trim();
        const inputs = await checked({ connection: connectionTo(h), storePaths: { toplevel, image }, method: "image" });
        expect(inputs.image).toBe(image);
        const { outs } = await hooks.create(inputs);
        expect(outs.phasesCompleted).toEqual(["write", "install", "reboot"]);
        await h.waitUp();
        expect((await sshRun(h, "readlink /run/current-system", { pin: outs.hostKey })).stdout.trim()).toBe(toplevel);
        expect(fs.existsSync(path.join(os.tmpdir(), "pulumi-nixos-images", `${path.basename(image)}.raw`))).toBe(false);
    });

    it("grows a btrfs root on a GPT image", async () => {
        const h = await createHost({ kind: "rescue", disks: [320] });
        const { inputs, outs } = await installedByImage(h, "web-gpt-btrfs");
        const r = await sshRun(h, "readlink /run/current-system; findmnt -no FSTYPE /nix; df -B1 --output=size /nix | tail -1", { pin: outs.hostKey });
        const [current, fstype, size] = r.stdout.trim().split("\n");
        expect(current).toBe(inputs.toplevel);
        expect(fstype).toBe("btrfs");
        // The image was 160 MiB.
        expect(Number(size)).toBeGreaterThan(300 * MiB);
    });

    it("resumes after a failure past the write without writing the image again", async () => {
        const h = await createHost({ kind: "rescue", disks: [128] });
        const inputs = await imageInputs(h, "web");
        await failOnce(h, "resize2fs");
        const err = await hooks.create(inputs).catch((e) => e);
        expect(err.message).toMatch(/^install on root@10\.123\.0\.\d+ failed: growing the ext4 file system on \/dev\/vda/);
        expect(err.properties.phasesCompleted).toEqual(["write"]);
        const lines: string[] = [];
        const log = console.log;
        console.log = (l: string) => lines.push(l);
        try {
            const { outs } = await hooks.update(err.id, err.properties, inputs);
            expect(outs.phasesCompleted).toEqual(["write", "install", "reboot"]);
        } finally {
            console.log = log;
        }
        expect(lines.filter((l) => / write: /.test(l))).toEqual([]);
        expect(lines.some((l) => / install: grew \/dev\/vda and its ext4 file system to 128 MiB/.test(l))).toBe(true);
        await h.waitUp();
        expect(await h.bootKind()).toBe("nixos");
    });

    it("does not write again an image an earlier run wrote and verified when its state was lost (a killed `pulumi up`)", async () => {
        const h = await createHost({ kind: "rescue", disks: [128] });
        const first = await hooks.create(await imageInputs(h, "web", { phases: ["write"] }));
        expect(first.outs.phasesCompleted).toEqual(["write"]);
        const lines: string[] = [];
        const log = console.log;
        console.log = (l: string) => lines.push(l);
        try {
            // A new resource: nothing recorded.
            const { outs } = await hooks.create(await imageInputs(h, "web"));
            expect(outs.phasesCompleted).toEqual(["write", "install", "reboot"]);
        } finally {
            console.log = log;
        }
        expect(lines.some((l) => l.includes("facts: /dev/vda already holds this image (sha256 matches): not written again"))).toBe(true);
        expect(lines.filter((l) => / write: /.test(l))).toEqual([]);
    });

    it("catches a corrupted transfer with the checksum, zeroes the disk's start so nothing boots from it, and writes again on the next run", async () => {
        const h = await createHost({ kind: "rescue", disks: [128] });
        const inputs = await imageInputs(h, "web");
        await corruptNextWrite(h);
        const err = await hooks.create(inputs).catch((e) => e);
        expect(err.message).toMatch(/^write on root@10\.123\.0\.\d+ failed: the image did not land intact on \/dev\/vda: its first 67108864 bytes have sha256 [0-9a-f]{64}, the image [0-9a-f]{64}/);
        expect(err.properties.phasesCompleted).toEqual([]);
        expect((await h.execOk("head -c 1048576 /dev/vda | tr -d '\\0' | wc -c")).trim()).toBe("0");
        // Nothing on the disk boots: armed or not, the rescue system is all there is.
        h.armRescue();
        await h.reboot();
        expect(await h.bootKind()).toBe("rescue");
        const boots = h.bootCount();
        await h.reboot({ wait: false });
        await expect(h.waitUp(4, boots)).rejects.toThrow(/did not (finish )?boot/);
        h.armRescue();
        await h.powerCycle();
        const { outs } = await hooks.update(err.id, err.properties, { ...inputs, connection: connectionTo(h) });
        expect(outs.phasesCompleted).toEqual(["write", "install", "reboot"]);
    });

    it("refuses a disk that holds an installed NixOS without allowReinstall, before writing anything", async () => {
        const h = await createHost({ kind: "rescue", disks: [128] });
        const first = await imageInputs(h, "web-gpt");
        await hooks.create(first);
        await h.waitUp();
        h.armRescue();
        await h.reboot({ newKeys: true });
        expect(await h.bootKind()).toBe("rescue");
        const before = (await h.execOk("head -c 4194304 /dev/vda | sha256sum")).trim();
        const inputs = await imageInputs(h, "web-bumped");
        const err = await hooks.create(inputs).catch((e) => e);
        expect(err.message).toMatch(/^facts on root@10\.123\.0\.\d+ failed: \/dev\/vda already holds an installed NixOS \(\/nix\/store\/[a-z0-9]{32}-nixos-system-web-[^)]+\); writing the image would replace it/);
        expect(err.message).toContain("set allowReinstall: true");
        expect((await h.execOk("head -c 4194304 /dev/vda | sha256sum")).trim()).toBe(before);
    });

    it("refuses a disk in use and a disk smaller than the image, naming imageDisk when there are several", async () => {
        const h = await createHost({ kind: "rescue", disks: [32, 128] });
        const several = await hooks.create(await imageInputs(h, "web")).catch((e) => e);
        expect(several.message).toMatch(/the machine has 2 disks \(\/dev\/vda, \/dev\/vdb\); which one gets the image is not clear.*set imageDisk/s);
        const small = await hooks.create(await imageInputs(h, "web", { imageDisk: "/dev/vda" })).catch((e) => e);
        expect(small.message).toMatch(/\/dev\/vda has 33554432 bytes, less than the image's 67108864/);
        await h.execOk("mkfs.ext4 -q /dev/vdb && mkdir -p /srv && mount /dev/vdb /srv");
        const busy = await hooks.create(await imageInputs(h, "web", { imageDisk: "/dev/vdb" })).catch((e) => e);
        expect(busy.message).toMatch(/\/dev\/vdb is in use \(\/dev\/vdb on \/srv\)/);
        expect(busy.message).toContain("): the image cannot be written under a running system");
        const unknown = await hooks.create(await imageInputs(h, "web", { imageDisk: "/dev/sdz" })).catch((e) => e);
        expect(unknown.message).toContain("imageDisk /dev/sdz is not a disk of this machine (disks: /dev/vda, /dev/vdb)");
    });

    it("refuses a rescue system without the tools the image's grow needs, before writing", async () => {
        const h = await createHost({ kind: "rescue", disks: [128], removeCommands: ["sfdisk"] });
        const err = await hooks.create(await imageInputs(h, "web-gpt")).catch((e) => e);
        expect(err.message).toMatch(/^facts on root@10\.123\.0\.\d+ failed: the rescue system lacks sfdisk/);
        expect(err.properties.phasesCompleted).toEqual([]);
        expect((await h.execOk("head -c 1048576 /dev/vda | tr -d '\\0' | wc -c")).trim()).toBe("0");
    });

    it("installs an impermanence image (tmpfs root, /nix on a partition): the host key where sshd_config's HostKey says, extra files under /nix, and a verified reboot", async () => {
        const h = await createHost({ kind: "rescue", disks: [160] });
        const { inputs, outs } = await installedByImage(h, "web-impermanent", { extraFiles: { "/nix/persistent/etc/demo.conf": { content: "demo=1\n" } } });
        expect(outs.phasesCompleted).toEqual(["write", "install", "reboot"]);
        expect(h.hostKey).toBe(outs.hostKey);
        const r = await sshRun(h, "readlink /run/current-system; stat -f -c %T /; cut -d' ' -f1-2 /nix/persistent/etc/ssh/ssh_host_ed25519_key.pub; cat /nix/persistent/etc/demo.conf; ls /etc/ssh", { pin: outs.hostKey });
        const [current, rootType, key, conf, ...etcSsh] = r.stdout.trim().split("\n");
        expect(current).toBe(inputs.toplevel);
        expect(rootType).toBe("tmpfs");
        expect(key).toBe(outs.hostKey);
        expect(conf).toBe("demo=1");
        expect(etcSsh.filter((f) => f.startsWith("ssh_host_"))).toEqual([]);
    });

    it.each([
        ["a systemd mount unit, as impermanence does since 2025-04", "web-persisted-etc-ssh"],
        ["an fstab bind, as impermanence did before", "web-persisted-etc-ssh-fstab"],
    ])("follows impermanence's bind of a persisted /etc/ssh made by %s: the host key at NixOS's default path is written under /nix/persistent, and the reboot verifies it", async (_form, name) => {
        const h = await createHost({ kind: "rescue", disks: [160] });
        const { outs } = await installedByImage(h, name);
        expect(h.hostKey).toBe(outs.hostKey);
        const r = await sshRun(h, "stat -f -c %T /; cut -d' ' -f1-2 /nix/persistent/etc/ssh/ssh_host_ed25519_key.pub", { pin: outs.hostKey });
        expect(r.stdout.trim().split("\n")).toEqual(["tmpfs", outs.hostKey]);
    });

    it("refuses a system with system.etc.overlay whose host key path is under /etc, before writing anything", async () => {
        const h = await createHost({ kind: "rescue", disks: [128] });
        const before = await h.execOk("head -c 4194304 /dev/vda | sha256sum");
        const err = await hooks.create(await imageInputs(h, "web-etc-overlay")).catch((e) => e);
        expect(err.message).toMatch(/^facts on root@10\.123\.0\.\d+ failed: the host key's path \/etc\/ssh\/ssh_host_ed25519_key \(services\.openssh\.hostKeys\) is under \/etc, which system\.etc\.overlay mounts over at boot/);
        expect(err.message).toContain("/var/lib/ssh/ssh_host_ed25519_key");
        expect(err.properties.phasesCompleted).toEqual([]);
        expect(await h.execOk("head -c 4194304 /dev/vda | sha256sum")).toBe(before);
    });

    it("writes the host key at the ed25519 entry of services.openssh.hostKeys when no path names its type, leaving the RSA entry to sshd-keygen", async () => {
        const h = await createHost({ kind: "rescue", disks: [128] });
        const { outs } = await installedByImage(h, "web-key-types");
        expect(h.hostKey).toBe(outs.hostKey);
        const r = await sshRun(h, "cut -d' ' -f1-2 /etc/ssh/host_key_main.pub; ssh-keygen -l -f /etc/ssh/host_key_legacy | grep -o '(.*)'", { pin: outs.hostKey });
        expect(r.stdout.trim().split("\n")).toEqual([outs.hostKey, "(RSA)"]);
    });

    it("refuses a tmpfs root whose host key path is on the tmpfs, or an extra file there, before writing anything", async () => {
        const h = await createHost({ kind: "rescue", disks: [160] });
        const before = await h.execOk("head -c 4194304 /dev/vda | sha256sum");
        const err = await hooks.create(await imageInputs(h, "web-tmpfs-root")).catch((e) => e);
        expect(err.message).toMatch(/^facts on root@10\.123\.0\.\d+ failed: the host key's path \/etc\/ssh\/ssh_host_ed25519_key \(services\.openssh\.hostKeys\) is on \/, a tmpfs: sshd would make a new key at every boot/);
        const err2 = await hooks.create(await imageInputs(h, "web-impermanent", { extraFiles: { "/etc/demo.conf": { content: "x" } } })).catch((e) => e);
        expect(err2.message).toMatch(/^facts on root@10\.123\.0\.\d+ failed: extraFiles\["\/etc\/demo\.conf"\] lands on \/, a tmpfs in this configuration \(fileSystems\), so it would be gone at the first boot/);
        expect(await h.execOk("head -c 4194304 /dev/vda | sha256sum")).toBe(before);
    });

    it("fails the install phase when no file system on the disk holds the system, and unmounts what it tried", async () => {
        const h = await createHost({ kind: "rescue", disks: [128] });
        await h.execOk("mkfs.ext4 -q /dev/vda");
        const err = await hooks.create(await imageInputs(h, "web", { phases: ["install"] })).catch((e) => e);
        expect(err.message).toMatch(/^install on root@10\.123\.0\.\d+ failed: no file system on \/dev\/vda holds the system's \/ \(etc\/NIXOS or nix\/var\/nix\/profiles\/system\)/);
        expect((await h.exec("grep -c pulumi-nixos-image /proc/mounts")).stdout.trim()).toBe("0");
    });
});

/**
 * The next `dd` the image write runs flips bytes of what it writes: a transfer that went wrong
 * where SSH's own integrity check cannot see (a rescue system's bad RAM, a disk that lies).
 */
async function corruptNextWrite(h: Parameters<typeof failOnce>[0]): Promise<void> {
    const bin = "/usr/local/sbin/dd";
    const wrapper = `#!/bin/sh
case " $* " in *" of=/dev/vd"*" iflag=fullblock "*) ;; *) exec /usr/bin/dd "$@" ;; esac
[ -e /run/corrupt-once ] || exec /usr/bin/dd "$@"
rm -f /run/corrupt-once
/usr/bin/dd "$@" || exit $?
for a in "$@"; do case $a in of=*) of=\${a#of=} ;; seek=*) s=\${a#seek=} ;; bs=*) b=\${a#bs=} ;; esac; done
printf 'CORRUPTED' | /usr/bin/dd of="$of" bs=1 seek=$((s * b + 4096)) conv=notrunc status=none
`;
    await h.execOk(`mount -o remount,rw /usr/local/sbin && cat > ${bin} && chmod 755 ${bin} && mount -o remount,ro /usr/local/sbin && touch /run/corrupt-once`, wrapper);
}

describe("the grow step on a file system no fixture image carries", () => {
    it("grows an xfs last partition of a GPT disk to the disk's end with xfs_growfs", async () => {
        const h = await createHost({ kind: "rescue", disks: [640] });
        // mkfs.xfs refuses file systems under 300 MiB outside xfsprogs' own test runs (QA_CHECK_FS).
        const sectors = 320 * 2048;
        await h.execOk(`printf 'label: gpt\\nstart=2048, size=${sectors}, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4\\n' | sfdisk -q --no-reread --no-tell-kernel /dev/vda && blockdev --rereadpt /dev/vda && mkfs.xfs -q /dev/vda1`);
        const target = new Target({ host: h.address, privateKey: clientKey().privateKey, hostKey: h.hostKey });
        const lines: string[] = [];
        const ctx = { target, log: (_p: string, l: string) => lines.push(l), env: process.env, cwd: process.cwd() };
        await growImage(ctx, "/dev/vda", { table: "gpt", last: { nr: 1, start: 2048, sectors }, fs: "xfs" }, 60).finally(() => target.close());
        expect(lines.at(-1)).toMatch(/^grew \/dev\/vda1 and its xfs file system to 6[34]\d MiB$/);
        const size = await h.execOk("mkdir -p /run/x && mount -o ro /dev/vda1 /run/x && df -B1 --output=size /run/x | tail -1; umount /run/x");
        // From 320 MiB; xfs keeps about a tenth for its log and metadata.
        expect(Number(size)).toBeGreaterThan(500 * MiB);
    });
});

describe("the image write on a slow link", () => {
    it("compresses when the link is slower than zstd, and reports progress with MiB and rate every 2 s", async () => {
        const h = await createHost({ kind: "rescue", disks: [64] });
        await h.shapeLink(10);
        const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "pnx-image-")), "image.raw");
        // 24 MiB of hex text (compresses to about half) in a 48 MiB image: about 10 s on the link.
        const image = Buffer.alloc(48 * 1048576);
        Buffer.from(randomBytes(12 * 1048576).toString("hex")).copy(image, 8 * 1048576);
        fs.writeFileSync(file, image);
        const lines: string[] = [];
        const target = new Target({ host: h.address, privateKey: clientKey().privateKey, hostKey: h.hostKey });
        const ctx = { target, log: (_p: string, l: string) => lines.push(l), env: process.env, cwd: process.cwd() };
        const sent = h.sentBytes();
        const r = await writeImage(ctx, { file, disk: "/dev/vda", timeoutS: 120 }).finally(() => target.close());
        expect(r.sha256).toBe(createHash("sha256").update(image).digest("hex"));
        expect(lines[0]).toMatch(/^writing 48\.0 MiB to \/dev\/vda, zstd-compressed \(link [\d.]+ MiB\/s/);
        expect(lines.filter((l) => /^written [\d.]+ of 48\.0 MiB \([\d.]+ MiB\/s, [\d.]+ MiB sent compressed\)$/.test(l)).length).toBeGreaterThanOrEqual(1);
        expect(lines).toContain("sent 24.0 MiB of data in 8 records; 24.0 MiB zeroed on the target");
        // The link probe's 1 MiB, then about half of the 24 MiB.
        expect(h.sentBytes() - sent).toBeLessThan(15 * 1048576);
        expect((await h.execOk("head -c 50331648 /dev/vda | sha256sum")).split(" ")[0]).toBe(r.sha256);
    });
});
