/**
 * Install by image of layouts that are not a plain root partition at the disk's end, and from
 * rescue systems with old grow tools: what is opened with fstab's options, what is refused before
 * the write (the disk's first 4 MiB unchanged), what grows.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { growImage } from "../../../provider/phases/image-grow";
import * as hooks from "../../../provider/resources/install";
import { Target } from "../../../provider/ssh/target";
import type { Host } from "../../testbed/host";
import { fixtureCopy } from "../../testbed/nix";
import { hostsForThisFile } from "../../testbed/per-file";
import { sshRun } from "../../testbed/ssh";
import { clientKey } from "../../testbed/state";
import { checked, connectionTo } from "./helpers";

const createHost = hostsForThisFile();
let dir: string;
beforeAll(() => {
    dir = fixtureCopy();
});

const MiB = 1048576;
const FIRST_4_MIB = "head -c 4194304 /dev/vda | sha256sum";

const imageInputs = (h: Host, name: string, extra: Record<string, unknown> = {}) =>
    checked({ connection: connectionTo(h), flake: `path:${dir}/flake#${name}`, method: "image", ...extra });

/** Runs `body` with console.log captured; returns what it logged. */
async function logged<T>(body: () => Promise<T>): Promise<{ result: T; lines: string[] }> {
    const lines: string[] = [];
    const log = console.log;
    console.log = (l: string) => lines.push(l);
    try {
        return { result: await body(), lines };
    } finally {
        console.log = log;
    }
}

describe("install by image: layouts", () => {
    it("writes the host key and extra files into the btrfs subvolume that fstab mounts as / (subvol=/rootfs), not the file system's top", async () => {
        const h = await createHost({ kind: "rescue", disks: [320] });
        const inputs = await imageInputs(h, "web-btrfs-subvol", { phases: ["write", "install"], extraFiles: { "/etc/demo.conf": { content: "demo=1\n" } } });
        const { outs } = await hooks.create(inputs);
        expect(outs.phasesCompleted).toEqual(["write", "install"]);
        const r = await h.execOk(
            "mkdir -p /run/x && mount -o ro,subvol=/rootfs /dev/vda3 /run/x && cut -d' ' -f1-2 /run/x/etc/ssh/ssh_host_ed25519_key.pub && cat /run/x/etc/demo.conf; umount /run/x; " +
                "mount -o ro /dev/vda3 /run/x && ls /run/x; df -B1 --output=size /run/x | tail -1; umount /run/x",
        );
        const [key, conf, top, size] = r.trim().split("\n");
        expect(key).toBe(outs.hostKey);
        expect(conf).toBe("demo=1");
        // The top-level subvolume holds only the subvolume: nothing was written beside it.
        expect(top).toBe("rootfs");
        expect(Number(size)).toBeGreaterThan(280 * MiB);
    });

    it("refuses an image whose / is an LVM logical volume at facts, before writing, pointing to method nixos-install", async () => {
        const h = await createHost({ kind: "rescue", disks: [128] });
        const before = await h.execOk(FIRST_4_MIB);
        const err = await hooks.create(await imageInputs(h, "web-lvm")).catch((e) => e);
        expect(err.message).toMatch(
            /^facts on root@10\.123\.0\.\d+ failed: the configuration's \/ \(\/dev\/pool\/root, ext4 in fileSystems\) is an assembled device, not a partition of the image; partition 3 is an LVM physical volume \(LVM2_member\): an install by image opens only plain partition file systems/,
        );
        expect(err.message).toContain('method "nixos-install"');
        expect(err.properties.phasesCompleted).toEqual([]);
        expect(await h.execOk(FIRST_4_MIB)).toBe(before);
    });

    it("refuses an image whose / is in a LUKS container at facts, before writing", async () => {
        const h = await createHost({ kind: "rescue", disks: [128] });
        const before = await h.execOk(FIRST_4_MIB);
        const err = await hooks.create(await imageInputs(h, "web-luks")).catch((e) => e);
        expect(err.message).toMatch(/^facts on root@10\.123\.0\.\d+ failed: the configuration's \/ \(\/dev\/mapper\/crypted, ext4 in fileSystems\) is an assembled device, not a partition of the image; partition 3 is a LUKS container \(crypto_LUKS\)/);
        expect(err.properties.phasesCompleted).toEqual([]);
        expect(await h.execOk(FIRST_4_MIB)).toBe(before);
    });

    it("leaves a trailing swap partition alone and says that / stays at the image's size, instead of growing the swap", async () => {
        const h = await createHost({ kind: "rescue", disks: [160] });
        const inputs = await imageInputs(h, "web-swap-last");
        const { result: outs, lines } = await logged(async () => (await hooks.create(inputs)).outs);
        expect(outs.phasesCompleted).toEqual(["write", "install", "reboot"]);
        expect(lines.some((l) => l.includes("install: partition 4 (swap) ends last, not partition 3 holding /: / is left at the image's size; put it last in the layout"))).toBe(true);
        await h.waitUp();
        const r = await sshRun(h, "readlink /run/current-system; sfdisk -d /dev/vda; blkid -p -o value -s TYPE /dev/vda4", { pin: outs.hostKey });
        expect(r.stdout.split("\n")[0]).toBe(inputs.toplevel);
        // The image's partitions as they were built (96 MiB image): root 3, swap 4 of 16 MiB.
        expect(r.stdout).toMatch(/vda3 : start=\s*20480, size=\s*143327,/);
        expect(r.stdout).toMatch(/vda4 : start=\s*163840, size=\s*32735,/);
        expect(r.stdout.trim().split("\n").at(-1)).toBe("swap");
    });
});

describe("install by image from a rescue system with old tools (util-linux 2.33, e2fsprogs 1.46.5)", () => {
    it("grows a GPT image without sfdisk --relocate, which util-linux 2.33 lacks: -N moves the backup header itself", async () => {
        const h = await createHost({ kind: "rescue", disks: [192], oldTools: true });
        const inputs = await imageInputs(h, "web-gpt");
        const { outs } = await hooks.create(inputs);
        expect(outs.phasesCompleted).toEqual(["write", "install", "reboot"]);
        await h.waitUp();
        const r = await sshRun(h, "sfdisk -d /dev/vda", { pin: outs.hostKey });
        expect(r.stdout).toContain(`last-lba: ${192 * 2048 - 34}`);
        const root = /vda3 : start=\s*(\d+), size=\s*(\d+)/.exec(r.stdout)!;
        expect(Number(root[1]) + Number(root[2])).toBe(192 * 2048 - 33);
    });

    it("refuses at facts an ext4 with orphan_file that e2fsprogs 1.46's e2fsck and resize2fs cannot check or grow, before writing", async () => {
        const h = await createHost({ kind: "rescue", disks: [128], oldTools: true });
        const before = await h.execOk(FIRST_4_MIB);
        const err = await hooks.create(await imageInputs(h, "web-gpt-orphan-file")).catch((e) => e);
        expect(err.message).toMatch(
            /^facts on root@10\.123\.0\.\d+ failed: the image's ext4 on partition 3 has the orphan_file feature, which the rescue system's e2fsprogs \(e2fsck 1\.46\.5 \(30-Dec-2021\)\) cannot check or grow: e2fsck and resize2fs 1\.47\.0 or later are needed/,
        );
        expect(err.message).toContain("-O\" \"^orphan_file");
        expect(err.properties.phasesCompleted).toEqual([]);
        expect(await h.execOk(FIRST_4_MIB)).toBe(before);
    });
});

describe("the grow step's table re-read", () => {
    it("waits while the kernel answers EBUSY (a partition held open for 3 s, as udev's probe after a write) and then grows", async () => {
        const h = await createHost({ kind: "rescue", disks: [128] });
        const sectors = 64 * 2048;
        await h.execOk(`printf 'label: gpt\\nstart=2048, size=${sectors}, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4\\n' | sfdisk -q --no-reread --no-tell-kernel /dev/vda && blockdev --rereadpt /dev/vda && mkfs.ext4 -q /dev/vda1`);
        await h.execOk("mkdir -p /run/hold && setsid sh -c 'mount -o ro /dev/vda1 /run/hold && sleep 3; umount /run/hold' </dev/null >/dev/null 2>&1 & for i in $(seq 50); do mountpoint -q /run/hold && break; sleep 0.1; done; mountpoint -q /run/hold");
        expect((await h.exec("blockdev --rereadpt /dev/vda")).stderr).toContain("Device or resource busy");
        const target = new Target({ host: h.address, privateKey: clientKey().privateKey, hostKey: h.hostKey });
        const lines: string[] = [];
        const ctx = { target, log: (_p: string, l: string) => lines.push(l), env: process.env, cwd: process.cwd() };
        await growImage(ctx, "/dev/vda", { table: "gpt", last: { nr: 1, start: 2048, sectors }, fs: "ext4" }, 60).finally(() => target.close());
        expect(lines.at(-1)).toMatch(/^grew \/dev\/vda1 and its ext4 file system to 127 MiB$/);
    });

    it("gives up after its bounded retries while a partition stays busy, with the kernel's answer, and changes nothing", async () => {
        const h = await createHost({ kind: "rescue", disks: [128] });
        await h.execOk(`printf 'label: gpt\\nstart=2048, size=${64 * 2048}\\n' | sfdisk -q --no-reread --no-tell-kernel /dev/vda && blockdev --rereadpt /dev/vda && mkfs.ext4 -q /dev/vda1 && mkdir -p /run/hold && mount -o ro /dev/vda1 /run/hold`);
        const before = await h.execOk("sfdisk -d /dev/vda");
        const target = new Target({ host: h.address, privateKey: clientKey().privateKey, hostKey: h.hostKey });
        const ctx = { target, log: () => undefined, env: process.env, cwd: process.cwd() };
        const started = Date.now();
        const err = await growImage(ctx, "/dev/vda", { table: "gpt", last: { nr: 1, start: 2048, sectors: 64 * 2048 }, fs: "ext4" }, 60).catch((e) => e).finally(() => target.close());
        expect(err.message).toMatch(/^install on root@10\.123\.0\.\d+ failed: re-reading the partition table of \/dev\/vda \(exit 1\)/);
        expect(err.message).toContain("Device or resource busy");
        // REREAD_TRIES (10) tries, 1 s apart.
        expect(Date.now() - started).toBeGreaterThan(8_000);
        expect(Date.now() - started).toBeLessThan(50_000);
        expect(await h.execOk("sfdisk -d /dev/vda")).toBe(before);
    });
});
