/**
 * Which image partition holds the system's / (or /nix), what an install by image refuses, what it
 * grows, and the rescue tool versions it needs: read from fstab as NixOS writes it
 * (nixos/modules/tasks/filesystems.nix) against partitions as blkid and partx report them.
 */
import { describe, expect, it } from "vitest";
import { growPlan, holderOf, imageLayoutProblems, mountOptions } from "../../../provider/image/holders";
import type { ImageLayout } from "../../../provider/image/layout";
import { parseFstab, SystemLayout } from "../../../provider/phases/placement";
import { older, toolProblems, versionOf } from "../../../provider/phases/image-tools";

const gpt = (last: { type: string; extFeatures?: string[] }, more: ImageLayout["parts"] = []): ImageLayout => {
    const parts = [
        { nr: 1, start: 2048, sectors: 2048, partlabel: "boot" },
        { nr: 2, start: 4096, sectors: 16384, partlabel: "ESP", type: "vfat", label: "ESP", uuid: "14FA-0E96" },
        { nr: 3, start: 20480, sectors: 110559, partlabel: "nixos", partuuid: "137897C0-ED13-4BC5-A7A4-1B13048C1DF4", uuid: "f588bf85-df11-409b-933c-551eaa21121d", label: "nixos", ...last },
        ...more,
    ];
    const end = [...parts].sort((a, b) => b.start + b.sectors - a.start - a.sectors)[0];
    return { table: "gpt", last: { nr: end.nr, start: end.start, sectors: end.sectors }, fs: end.type, parts };
};
const system = (fstab: string): SystemLayout => ({ mounts: parseFstab(fstab), hostKeyPath: "/etc/ssh/ssh_host_ed25519_key" });

describe("holderOf", () => {
    it.each([
        ["/dev/disk/by-partlabel/nixos", 3],
        ["/dev/disk/by-partuuid/137897c0-ed13-4bc5-a7a4-1b13048c1df4", 3],
        ["/dev/disk/by-uuid/F588BF85-DF11-409B-933C-551EAA21121D", 3],
        ["/dev/disk/by-label/ESP", 2],
        ["LABEL=nixos", 3],
        ["/dev/vda3", 3],
        ["/dev/nvme0n1p2", 2],
    ])("resolves %s to partition %i", (device, nr) => {
        expect(holderOf(gpt({ type: "ext4" }), device)?.nr).toBe(nr);
    });

    it("resolves nothing for an LVM volume, a mapper device or the whole disk of a partitioned image", () => {
        for (const d of ["/dev/pool/root", "/dev/mapper/crypted", "/dev/vda", "/dev/disk/by-partlabel/other"]) expect(holderOf(gpt({ type: "ext4" }), d)).toBeUndefined();
    });
});

describe("imageLayoutProblems", () => {
    it.each([
        ["an LVM logical volume", gpt({ type: "LVM2_member" }), "/dev/pool/root / ext4 defaults 0 1", /is an assembled device, not a partition of the image; partition 3 is an LVM physical volume \(LVM2_member\)/],
        ["LUKS by partlabel", gpt({ type: "crypto_LUKS" }), "/dev/disk/by-partlabel/nixos / ext4 defaults 0 1", /is inside a LUKS container \(partition 3 of the image, blkid TYPE crypto_LUKS\)/],
        ["a LUKS mapper device", gpt({ type: "crypto_LUKS" }), "/dev/mapper/crypted / ext4 defaults 0 1", /is an assembled device.*partition 3 is a LUKS container/],
        ["a ZFS dataset", gpt({ type: "zfs_member" }), "rpool/root / zfs zfsutil 0 0", /is a ZFS dataset/],
        ["md RAID", gpt({ type: "linux_raid_member" }), "/dev/md/root / ext4 defaults 0 1", /partition 3 is an md RAID member/],
    ])("refuses / on %s", (_what, l, fstab, message) => {
        const problems = imageLayoutProblems(l, system(fstab), []);
        expect(problems).toHaveLength(1);
        expect(problems[0]).toMatch(message);
        expect(problems[0]).toContain("an install by image opens only plain partition file systems");
    });

    it("refuses /nix on LVM under a tmpfs root, where the host key is kept", () => {
        const s = { ...system("tmpfs / tmpfs mode=755 0 0\n/dev/pool/nix /nix ext4 defaults 0 2\n"), hostKeyPath: "/nix/persistent/etc/ssh/ssh_host_ed25519_key" };
        expect(imageLayoutProblems(gpt({ type: "LVM2_member" }), s, [])[0]).toMatch(/^the configuration's \/nix \(\/dev\/pool\/nix, ext4 in fileSystems\) is an assembled device/);
    });

    it("accepts plain partitions, a btrfs subvolume and an fstab naming another disk's kernel name", () => {
        expect(imageLayoutProblems(gpt({ type: "ext4" }), system("/dev/disk/by-partlabel/nixos / ext4 defaults 0 1"), [])).toEqual([]);
        expect(imageLayoutProblems(gpt({ type: "btrfs" }), system("/dev/disk/by-partlabel/nixos / btrfs subvol=/rootfs 0 1"), [])).toEqual([]);
        expect(imageLayoutProblems(gpt({ type: "ext4" }), system("/dev/vda / ext4 defaults 0 1"), [])).toEqual([]);
    });
});

describe("mountOptions", () => {
    it("keeps only a btrfs entry's subvolume options", () => {
        expect(mountOptions(parseFstab("/dev/sda3 / btrfs compress=zstd,subvol=/rootfs,noatime 0 0")[0])).toEqual(["subvol=/rootfs"]);
        expect(mountOptions(parseFstab("/dev/sda3 / btrfs subvolid=256 0 0")[0])).toEqual(["subvolid=256"]);
        expect(mountOptions(parseFstab("/dev/sda3 / ext4 subvol=x 0 0")[0])).toEqual([]);
    });
});

describe("growPlan", () => {
    const swap = { nr: 4, start: 163840, sectors: 32735, type: "swap", partlabel: "swap" };
    it("grows the root partition when it ends last", () => {
        expect(growPlan(gpt({ type: "ext4" }), system("/dev/disk/by-partlabel/nixos / ext4 defaults 0 1"))).toEqual({ part: { nr: 3, fs: "ext4" } });
    });

    it("leaves a root followed by swap at the image's size and says so, whether or not fstab names the root's partition", () => {
        for (const fstab of ["/dev/disk/by-partlabel/nixos / ext4 defaults 0 1", "/dev/vda / ext4 defaults 0 1"]) {
            const plan = growPlan(gpt({ type: "ext4" }, [swap]), system(fstab));
            expect(plan.part).toBeUndefined();
            expect(plan.note).toMatch(/^partition 4 \(swap\) ends last, not .* holding \/: \/ is left at the image's size/);
        }
    });

    it("grows the whole-disk file system of an image without a table", () => {
        expect(growPlan({ fs: "ext4", parts: [{ nr: 0, start: 0, sectors: 131072, type: "ext4" }] }, system("/dev/vda / ext4 defaults 0 1"))).toEqual({ part: { nr: 0, fs: "ext4" } });
    });
});

describe("toolProblems", () => {
    const versions = (sfdisk: string, e2fs: string) => new Map([["sfdisk", `sfdisk from util-linux ${sfdisk}`], ["e2fsck", `e2fsck ${e2fs} (date)`]]);
    const s = system("/dev/disk/by-partlabel/nixos / ext4 defaults 0 1");

    it("parses and compares versions", () => {
        expect(versionOf("sfdisk from util-linux 2.33.1")).toEqual([2, 33, 1]);
        expect(versionOf("e2fsck 1.47.0 (5-Feb-2023)")).toEqual([1, 47, 0]);
        expect(versionOf("BusyBox")).toBeUndefined();
        expect(older([2, 31, 1], "2.32")).toBe(true);
        expect(older([2, 32, 0], "2.32")).toBe(false);
        expect(older([1, 46, 5], "1.47.0")).toBe(true);
    });

    it("refuses a GPT grow with sfdisk older than 2.32, and orphan_file with e2fsprogs older than 1.47.0", () => {
        expect(toolProblems(gpt({ type: "ext4" }), s, versions("2.31.1", "1.47.0"))).toEqual([expect.stringMatching(/sfdisk is sfdisk from util-linux 2\.31\.1: growing a GPT image needs util-linux 2\.32 or later/)]);
        expect(toolProblems(gpt({ type: "ext4", extFeatures: ["orphan_file"] }), s, versions("2.38.1", "1.46.5"))).toEqual([expect.stringMatching(/^the image's ext4 on partition 3 has the orphan_file feature/)]);
    });

    it("accepts util-linux 2.32 to 2.35 (no --relocate is used), new e2fsprogs, and tools that print no version", () => {
        expect(toolProblems(gpt({ type: "ext4", extFeatures: ["orphan_file"] }), s, versions("2.33.1", "1.47.0"))).toEqual([]);
        expect(toolProblems(gpt({ type: "ext4", extFeatures: ["orphan_file"] }), s, new Map([["e2fsck", "BusyBox v1.36"]]))).toEqual([]);
    });

    it("does not ask e2fsprogs about an ext4 that does not grow (swap after it)", () => {
        const l = gpt({ type: "ext4", extFeatures: ["orphan_file"] }, [{ nr: 4, start: 163840, sectors: 32735, type: "swap" }]);
        expect(toolProblems(l, s, versions("2.38.1", "1.46.5"))).toEqual([]);
    });
});
