import * as fs from "node:fs";
import { execFileSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { createHost } from "../../testbed/host";
import { holdLikeDeviceMapper } from "../../testbed/holder";

/** A GPT with an 8 MiB first partition and the rest of the disk as the second, and the re-read. */
const twoPartitions = "printf 'label: gpt\\nstart=2048, size=16384\\nstart=18432\\n' | sfdisk -q --no-reread --no-tell-kernel /dev/vda && blockdev --rereadpt /dev/vda";

describe("test host disks", () => {
    it("appear only inside the host as /dev/vda, /dev/vdb", async () => {
        const h = await createHost({ disks: [32, 32] });
        try {
            const out = await h.execOk("ls /dev | grep '^vd'; blockdev --getsize64 /dev/vda");
            expect(out).toBe(`vda\nvdb\n${32 * 1024 * 1024}\n`);
        } finally {
            await h.destroy();
        }
    });

    it("survive a reboot and vanish on destroy", async () => {
        const h = await createHost({ disks: [64] });
        const loops = h.loopDevices;
        await h.execOk("mkfs.ext4 -q -F /dev/vda && mkdir -p /data && mount /dev/vda /data && echo persisted > /data/file && umount /data");
        await h.reboot();
        expect(await h.execOk("mkdir -p /data && mount /dev/vda /data && cat /data/file")).toBe("persisted\n");
        const dir = h.dir;
        await h.destroy();
        const attached = execFileSync("losetup", ["-a"]).toString();
        for (const l of loops) expect(attached).not.toContain(l + ":");
        expect(fs.existsSync(dir)).toBe(false);
    });
});

/**
 * The partition scan stand-in (sh/partscan.sh, target-bin/common/{blockdev,testbed-rescan}) against
 * Linux: block/ioctl.c hands BLKRRPART to disk_scan_partitions() (block/genhd.c), which returns
 * -EBUSY `if (disk->open_partitions)`; block/bdev.c blkdev_get_part() counts every partition's
 * first open there, whoever opens it. GPT is read at LBA 1 of the disk's logical block size
 * (block/partitions/efi.c), so the sector size decides where a table is found.
 */
describe("the partition scan (BLKRRPART), as Linux's", () => {
    const rereadpt = "blockdev --rereadpt /dev/vda 2>&1; echo rc=$?; ls /dev | grep -c '^vda[0-9]'";
    const busy = "blockdev: ioctl error on BLKRRPART: Device or resource busy\nrc=1\n2\n";

    it("answers EBUSY while a partition is open by any process, or carries a mounted btrfs, and re-reads once nothing has one open", async () => {
        const h = await createHost({ disks: [256] });
        try {
            await h.execOk(twoPartitions);
            // A process that only holds the partition open (udev's probe, a reader): not a mount.
            await h.execOk("setsid sh -c 'exec 3</dev/vda1; echo $$ > /run/opener; exec sleep 60' </dev/null >/dev/null 2>&1 & sleep 0.3");
            expect(await h.execOk(rereadpt)).toBe(busy);
            await h.execOk("kill $(cat /run/opener)");
            expect(await h.execOk(rereadpt)).toBe("rc=0\n2\n");
            // A mounted btrfs: its mountinfo line carries an anonymous device number, not the partition's.
            await h.execOk("mkfs.btrfs -q /dev/vda2 && mkdir -p /srv && mount /dev/vda2 /srv");
            expect(await h.execOk(rereadpt)).toBe(busy);
            await h.execOk("umount /srv");
            expect(await h.execOk(rereadpt)).toBe("rc=0\n2\n");
        } finally {
            await h.destroy();
        }
    });

    it("answers EBUSY while a file system on the whole disk is mounted (bd_prepare_to_claim finds the disk claimed)", async () => {
        const h = await createHost({ disks: [64] });
        try {
            await h.execOk("mkfs.ext4 -q -F /dev/vda && mkdir -p /data && mount /dev/vda /data");
            expect(await h.execOk("blockdev --rereadpt /dev/vda 2>&1; echo rc=$?")).toBe("blockdev: ioctl error on BLKRRPART: Device or resource busy\nrc=1\n");
            await h.execOk("umount /data");
            expect(await h.execOk("blockdev --rereadpt /dev/vda 2>&1; echo rc=$?")).toBe("rc=0\n");
        } finally {
            await h.destroy();
        }
    });

    it("answers EBUSY while a device-mapper device holds a partition, which then cannot be mounted either (the test bed's stand-in for a dm table)", async () => {
        const h = await createHost({ disks: [128] });
        try {
            await h.execOk(`${twoPartitions} && mkfs.ext4 -q /dev/vda1`);
            await holdLikeDeviceMapper(h, "/dev/vda1", "dm-3");
            expect(await h.execOk("ls /sys/dev/block/$(stat -L -c '%t %T' /dev/vda1 | { read a b; echo $((0x$a)):$((0x$b)); })/holders")).toBe("dm-3\n");
            const mount = await h.exec("mkdir -p /srv && mount /dev/vda1 /srv");
            expect(mount.code).not.toBe(0);
            expect(mount.stderr).toMatch(/busy/i);
            expect(await h.execOk(rereadpt)).toBe(busy);
        } finally {
            await h.destroy();
        }
    });

    it("makes partitions with the disk's 4096-byte logical sectors, and finds no table made for 512-byte sectors there", async () => {
        const h = await createHost({ disks: [64], sectorSize: 4096 });
        try {
            // sfdisk counts in the disk's sectors: 1 MiB in, 4 MiB long.
            await h.execOk("printf 'label: gpt\\nstart=256, size=1024\\n' | sfdisk -q --no-reread --no-tell-kernel /dev/vda && blockdev --rereadpt /dev/vda");
            expect(await h.execOk("blockdev --getss /dev/vda /dev/vda1; blockdev --getsize64 /dev/vda1")).toBe(`4096\n4096\n${4 * 1048576}\n`);
            // The same layout made for 512-byte sectors (a disk image's), written over the whole disk.
            await h.execOk("truncate -s 64M /run/img && printf 'label: gpt\\nstart=2048, size=8192\\n' | sfdisk -q /run/img && dd if=/run/img of=/dev/vda bs=1M conv=notrunc status=none && blockdev --rereadpt /dev/vda");
            expect(await h.execOk("ls /dev | grep -c '^vda[0-9]' || true")).toBe("0\n");
        } finally {
            await h.destroy();
        }
    });
});
