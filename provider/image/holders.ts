/**
 * Which partition of an image holds what the built system mounts at / (or /nix, with a tmpfs root),
 * read from its `etc/fstab` against the image's partitions (layout.ts):
 * - disko names GPT partitions /dev/disk/by-partlabel/<name> (lib/types/gpt.nix); other layouts use
 *   by-uuid, by-label, LABEL=/UUID= or a kernel name (/dev/vda3, /dev/nvme0n1p3).
 * - An install by image writes the host key and extra files by mounting that file system. It opens
 *   plain partition file systems only, with the fstab entry's btrfs subvolume (disko's btrfs type
 *   mounts subvolumes with subvol=, lib/types/btrfs.nix). LVM, LUKS, ZFS and md need their tools
 *   to assemble and are refused before the write.
 * - The grow step grows the partition that holds / (or /nix) when it is the one that ends last; a
 *   partition after it (swap at the disk's end) is not moved, so the root stays at the image's size.
 */
import { mountOf, Mount, onDisk, SystemLayout } from "../phases/placement";
import type { ImageLayout, ImagePartition } from "./layout";

/** blkid TYPEs of containers that a mount by path cannot open. */
const CONTAINERS: Record<string, string> = {
    LVM2_member: "an LVM physical volume",
    crypto_LUKS: "a LUKS container",
    zfs_member: "a ZFS pool member",
    linux_raid_member: "an md RAID member",
};

/** Devices that only exist once something was assembled: device mapper (LVM, LUKS), md, an LVM /dev/<vg>/<lv>. */
const ASSEMBLED = /^\/dev\/(mapper\/|dm-\d|md|(?!disk\/)[^/]+\/[^/]+$)/;

const GROWABLE = /^(ext[234]|btrfs|xfs)$/;

/** The image's partition that fstab's `device` names, when it names one. */
export function holderOf(l: ImageLayout, device: string): ImagePartition | undefined {
    const parts = l.parts ?? [];
    const same = (a?: string, b?: string) => !!a && !!b && a.toLowerCase() === b.toLowerCase();
    const named = /^\/dev\/disk\/by-(partlabel|partuuid|label|uuid)\/(.+)$/.exec(device) ?? /^(PARTLABEL|PARTUUID|LABEL|UUID)=(.+)$/.exec(device);
    if (named) {
        const key = named[1].toLowerCase() as "partlabel" | "partuuid" | "label" | "uuid";
        const value = named[2].replace(/\\x([0-9a-f]{2})/gi, (_, h: string) => String.fromCharCode(parseInt(h, 16)));
        return parts.find((p) => (key === "partlabel" ? p.partlabel === value : same(p[key], value)));
    }
    const numbered = /^\/dev\/(?:(?:nvme\d+n\d+|mmcblk\d+|loop\d+)p|(?:[hsv]|xv)d[a-z]+)(\d+)$/.exec(device);
    if (numbered && l.table) return parts.find((p) => p.nr === Number(numbered[1]));
    if (/^\/dev\/(?:[hsv]|xv)d[a-z]+$|^\/dev\/nvme\d+n\d+$/.test(device) && !l.table) return parts[0];
    return undefined;
}

/** Where the files an install by image writes land: the mounts of the host key and the extra files. */
function written(system: SystemLayout, extraFiles: string[]): Mount[] {
    const mounts = [system.hostKeyPath, ...extraFiles].map((f) => mountOf(system, onDisk(system, f)));
    return mounts.filter((m, i) => mounts.findIndex((n) => n.point === m.point) === i);
}

/** Why the file system of `m` cannot be opened by the install by image, or undefined. */
function unopenable(l: ImageLayout, m: Mount): string | undefined {
    const where = `the configuration's ${m.point} (${m.device}, ${m.type} in fileSystems)`;
    if (m.type === "zfs") return `${where} is a ZFS dataset`;
    const held = holderOf(l, m.device);
    if (held?.type && CONTAINERS[held.type]) return `${where} is inside ${CONTAINERS[held.type]} (partition ${held.nr} of the image, blkid TYPE ${held.type})`;
    if (held) return undefined;
    const containers = (l.parts ?? []).filter((p) => p.type && CONTAINERS[p.type]);
    const found = containers.map((p) => `partition ${p.nr} is ${CONTAINERS[p.type!]} (${p.type})`).join(", ");
    if (ASSEMBLED.test(m.device)) return `${where} is an assembled device, not a partition of the image${found ? `; ${found}` : ""}`;
    if (found) return `${where} names no partition of the image, and ${found}`;
    return undefined;
}

/**
 * Layouts an install by image cannot write into, each a sentence; checked before the write. The
 * error's hint is IMAGE_LAYOUT_HINT.
 */
export function imageLayoutProblems(l: ImageLayout, system: SystemLayout, extraFiles: string[]): string[] {
    return written(system, extraFiles)
        .map((m) => unopenable(l, m))
        .filter((p): p is string => !!p)
        .map((p) => `${p}: an install by image opens only plain partition file systems to write the host key and extra files`);
}

export const IMAGE_LAYOUT_HINT = 'install LVM, LUKS, ZFS and md layouts with method "nixos-install" (kexec and disko), or build the image with / (or /nix, with a tmpfs root) on a plain partition';

/** The fstab options a mount by the install needs: a btrfs subvolume (subvol=, subvolid=). */
export function mountOptions(m: Mount): string[] {
    return m.type === "btrfs" ? m.options.filter((o) => /^subvol(id)?=/.test(o)) : [];
}

export interface GrowPlan {
    /** The partition to grow (nr 0: the whole-disk file system), or none. */
    part?: { nr: number; fs?: string };
    /** Why nothing grows, said in the log. */
    note?: string;
}

/** The disk-backed mount holding the system: / or, with a tmpfs root, /nix. */
function systemMount(system: SystemLayout): Mount {
    const root = mountOf(system, "/");
    return ["tmpfs", "ramfs"].includes(root.type) ? mountOf(system, "/nix") : root;
}

/**
 * What the grow step grows: the partition holding / (or /nix) when it ends last, else nothing. An
 * fstab that names no partition of the image (a kernel name of another disk) leaves the last
 * partition, when it carries a growable file system.
 */
export function growPlan(l: ImageLayout, system: SystemLayout): GrowPlan {
    if (!l.table) return { part: { nr: 0, fs: l.fs } };
    if (!l.last) return { note: "the image's table has no partition; nothing grows" };
    const last = l.parts?.find((p) => p.nr === l.last!.nr) ?? { nr: l.last.nr, type: l.fs };
    const m = systemMount(system);
    const held = m.device ? holderOf(l, m.device) : undefined;
    if (!held && (!l.parts || (last.type && GROWABLE.test(last.type)))) return { part: { nr: last.nr, fs: last.type } };
    if (held && held.nr === last.nr) return { part: { nr: last.nr, fs: last.type } };
    const what = held ? `partition ${held.nr}` : `${m.device}`;
    return {
        note: `partition ${last.nr} (${last.type ?? "no file system"}) ends last, not ${what} holding ${m.point}: ${m.point} is left at the image's size; put it last in the layout (swap before it) to have it grow to the disk`,
    };
}
