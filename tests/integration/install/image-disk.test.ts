/**
 * The target disk of an install by image, as the facts see it before anything is written: what
 * keeps it in use beyond a plain mount, a NixOS in a btrfs subvolume, its sector size, a by-id
 * name; and what the write leaves past the image's end.
 */
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import * as hooks from "../../../provider/resources/install";
import type { Host } from "../../testbed/host";
import { holdLikeDeviceMapper } from "../../testbed/holder";
import { buildFixture, fixtureCopy } from "../../testbed/nix";
import { hostsForThisFile } from "../../testbed/per-file";
import { checked, connectionTo } from "./helpers";

const createHost = hostsForThisFile();
let dir: string;
beforeAll(() => {
    dir = fixtureCopy();
});

const imageInputs = (h: Host, name: string, extra: Record<string, unknown> = {}) =>
    checked({ connection: connectionTo(h), flake: `path:${dir}/flake#${name}`, method: "image", ...extra });

const start = (h: Host, disk = "/dev/vda") => h.execOk(`head -c 4194304 ${disk} | sha256sum`);

/** A GPT with an 8 MiB first partition and the rest of the disk as the second. */
const twoPartitions = (disk: string) =>
    `printf 'label: gpt\\nstart=2048, size=16384\\nstart=18432\\n' | sfdisk -q --no-reread --no-tell-kernel ${disk} && blockdev --rereadpt ${disk}`;

describe("the image's target disk: in use beyond a plain mount", () => {
    it("refuses a disk whose btrfs is mounted (its mounts carry an anonymous device number), naming the disk, before writing", async () => {
        const h = await createHost({ kind: "rescue", disks: [256] });
        await h.execOk(`${twoPartitions("/dev/vda")} && mkfs.btrfs -q /dev/vda2 && mkdir -p /mnt/root && mount /dev/vda2 /mnt/root`);
        expect(await h.execOk("awk '$5 == \"/mnt/root\" { print $3 }' /proc/self/mountinfo")).toMatch(/^0:\d+\n$/);
        const before = await start(h);
        const err = await hooks.create(await imageInputs(h, "web")).catch((e) => e);
        expect(err.message).toMatch(/^facts on root@10\.123\.0\.\d+ failed: \/dev\/vda is in use \(\/dev\/vda2 on \/mnt\/root\): the image cannot be written under a running system/);
        expect(err.properties.phasesCompleted).toEqual([]);
        // Mounted through a node that is gone since (as a root the kernel mounted as /dev/root): its
        // mountinfo source names nothing, and the btrfs's own device list still shows the partition.
        await h.execOk("umount /mnt/root && mknod /run/gone b $(stat -L -c '0x%t 0x%T' /dev/vda2) && mount /run/gone /mnt/root && rm /run/gone");
        const gone = await hooks.create(await imageInputs(h, "web")).catch((e) => e);
        expect(gone.message).toContain("/dev/vda is in use (/dev/vda2 in a mounted btrfs)");
        expect(await start(h)).toBe(before);
    });

    it("refuses a disk whose partition a device-mapper device holds (LVM, LUKS), before writing", async () => {
        const h = await createHost({ kind: "rescue", disks: [128] });
        await h.execOk(twoPartitions("/dev/vda"));
        await holdLikeDeviceMapper(h, "/dev/vda2", "dm-0");
        const before = await start(h);
        const err = await hooks.create(await imageInputs(h, "web")).catch((e) => e);
        expect(err.message).toMatch(/^facts on root@10\.123\.0\.\d+ failed: \/dev\/vda is in use \(\/dev\/vda2 is held by dm-0\): the image cannot be written under a running system/);
        expect(await start(h)).toBe(before);
    });
});

describe("the image's target disk: an installed NixOS, its sectors, its name", () => {
    it("refuses a disk whose btrfs holds an installed NixOS in a subvolume, without allowReinstall", async () => {
        const h = await createHost({ kind: "rescue", disks: [256] });
        const other = "/nix/store/0123456789abcdfghijklmnpqrsvwxyz-nixos-system-old-24.11";
        await h.execOk(`${twoPartitions("/dev/vda")} && mkfs.btrfs -q /dev/vda2 && mkdir -p /run/b && mount /dev/vda2 /run/b && btrfs -q subvolume create /run/b/root &&
            mkdir -p /run/b/root/nix/var/nix/profiles && ln -s ${other} /run/b/root/nix/var/nix/profiles/system-1-link &&
            ln -s system-1-link /run/b/root/nix/var/nix/profiles/system && umount /run/b`);
        const before = await start(h);
        const err = await hooks.create(await imageInputs(h, "web")).catch((e) => e);
        expect(err.message).toContain(`/dev/vda already holds an installed NixOS (${other}); writing the image would replace it`);
        expect(await start(h)).toBe(before);
    });

    it("refuses a disk with 4096-byte logical sectors (4Kn) for an image laid out in 512-byte sectors, before writing", async () => {
        const h = await createHost({ kind: "rescue", disks: [192], sectorSize: 4096 });
        expect(await h.execOk("blockdev --getss /dev/vda")).toBe("4096\n");
        const before = await start(h);
        const err = await hooks.create(await imageInputs(h, "web-gpt")).catch((e) => e);
        expect(err.message).toMatch(/^facts on root@10\.123\.0\.\d+ failed: \/dev\/vda has 4096-byte logical sectors; the image is laid out in 512-byte sectors, so its partition table would not be found there/);
        expect(await start(h)).toBe(before);
    });

    it("writes to the disk an imageDisk of /dev/disk/by-id/… names, and refuses one naming a partition", async () => {
        const h = await createHost({ kind: "rescue", disks: [32, 128] });
        await h.execOk(`${twoPartitions("/dev/vda")} && mkdir -p /dev/disk/by-id && ln -s ../../vdb /dev/disk/by-id/virtio-data && ln -s ../../vda1 /dev/disk/by-id/virtio-small-part1`);
        const part = await hooks.create(await imageInputs(h, "web", { imageDisk: "/dev/disk/by-id/virtio-small-part1" })).catch((e) => e);
        expect(part.message).toContain("imageDisk /dev/disk/by-id/virtio-small-part1 (/dev/vda1) is not a disk of this machine (disks: /dev/vda, /dev/vdb)");
        const lines: string[] = [];
        const log = console.log;
        console.log = (l: string) => lines.push(l);
        try {
            const { outs } = await hooks.create(await imageInputs(h, "web", { imageDisk: "/dev/disk/by-id/virtio-data", phases: ["write"] }));
            expect(outs.phasesCompleted).toEqual(["write"]);
        } finally {
            console.log = log;
        }
        expect(lines.some((l) => l.includes("facts: imageDisk /dev/disk/by-id/virtio-data is /dev/vdb"))).toBe(true);
        const image = fs.readFileSync(path.join(await buildFixture(dir, "web", "diskoImages"), "main.raw"));
        const written = await h.execOk(`head -c ${image.length} /dev/vdb | sha256sum`);
        expect(written.split(" ")[0]).toBe(createHash("sha256").update(image).digest("hex"));
    });

    it("zeroes the disk's last MiB after the write, so that no md 1.0 superblock or ZFS label L2/L3 of an earlier system remains", async () => {
        const h = await createHost({ kind: "rescue", disks: [128] });
        await h.execOk("head -c 1048576 /dev/urandom | dd of=/dev/vda bs=1M seek=127 conv=notrunc status=none");
        const end = () => h.execOk("dd if=/dev/vda bs=1M skip=127 status=none | tr -d '\\0' | wc -c");
        expect(Number(await end())).toBeGreaterThan(0);
        const { outs } = await hooks.create(await imageInputs(h, "web", { phases: ["write"] }));
        expect(outs.phasesCompleted).toEqual(["write"]);
        expect((await end()).trim()).toBe("0");
    });
});
