/**
 * What a raw image holds, read on the deployer before anything is written: its partition table
 * (gpt, dos, or none for a whole-disk file system, as on Linode), each partition with what blkid
 * finds on it (a file system, swap, or a container such as an LVM physical volume) and the names
 * fstab may use for it, and the ext2/3/4 features that need a recent e2fsprogs. The grow step and
 * the target's tools follow from it (image/holders.ts says which partition holds what).
 */
import * as fs from "node:fs";
import { runLocal } from "../nix/local";

export interface ImagePartition {
    /** The partition's number; 0 for a whole-disk file system. */
    nr: number;
    /** First sector and length, in 512-byte sectors. */
    start: number;
    sectors: number;
    /** blkid's TYPE at the partition's start: ext4, btrfs, vfat, swap, LVM2_member, crypto_LUKS, … */
    type?: string;
    /** The partition table's type for it: a GPT type GUID, or an MBR type such as "0xef". */
    parttype?: string;
    /** The names fstab may give it: /dev/disk/by-partlabel, by-partuuid, by-label, by-uuid. */
    partlabel?: string;
    partuuid?: string;
    label?: string;
    uuid?: string;
    /** ext2/3/4 features that some e2fsprogs releases refuse (see EXT_FEATURES). */
    extFeatures?: string[];
}

export interface ImageLayout {
    table?: "gpt" | "dos";
    /** The partition that ends last (number, first sector, sectors), when there is a table. */
    last?: { nr: number; start: number; sectors: number };
    /** The file system on the last partition, or on the whole image. */
    fs?: string;
    /** Every partition (one with nr 0 for a whole-disk file system); absent when not read. */
    parts?: ImagePartition[];
}

/**
 * ext4 features that e2fsck and resize2fs refuse when they predate them: both compare the
 * superblock's feature words with what their library supports (e2fsprogs e2fsck/unix.c "more
 * stringent than ext2fs_open()", resize/main.c EXT2_LIB_FEATURE_COMPAT_SUPP). orphan_file came in
 * 1.47.0 (lib/ext2fs/ext2_fs.h EXT4_FEATURE_COMPAT_ORPHAN_FILE 0x1000) and is in 1.47's default
 * ext4 features (misc/mke2fs.conf.in), so nixpkgs-built images carry it.
 */
export const EXT_FEATURES: { name: string; word: "compat" | "incompat" | "ro_compat"; bit: number; since: string }[] = [
    { name: "orphan_file", word: "compat", bit: 0x1000, since: "1.47.0" },
    { name: "orphan_present", word: "ro_compat", bit: 0x10000, since: "1.47.0" },
];

const exported = (out: string) => new Map(out.split("\n").filter((l) => l.includes("=")).map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)] as [string, string]));

/** `KEY="value" …` lines, as `partx -P` prints them. */
const pairs = (line: string) => new Map([...line.matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1], m[2].replace(/\\x([0-9a-f]{2})/gi, (_, h: string) => String.fromCharCode(parseInt(h, 16)))] as [string, string]));

/** The ext2/3/4 superblock at byte 1024 of a file system: its magic and feature words. */
function extFeatures(file: string, offset: number): string[] {
    const sb = Buffer.alloc(0x68);
    const fd = fs.openSync(file, "r");
    try {
        if (fs.readSync(fd, sb, 0, sb.length, offset + 1024) < sb.length) return [];
    } finally {
        fs.closeSync(fd);
    }
    if (sb.readUInt16LE(0x38) !== 0xef53) return [];
    const words = { compat: sb.readUInt32LE(0x5c), incompat: sb.readUInt32LE(0x60), ro_compat: sb.readUInt32LE(0x64) };
    return EXT_FEATURES.filter((f) => (words[f.word] & f.bit) !== 0).map((f) => f.name);
}

/** What blkid finds at `offset` of the image file (low-level probe, no cache). */
async function probe(file: string, offset: number): Promise<Pick<ImagePartition, "type" | "label" | "uuid" | "extFeatures">> {
    const args = ["-p", "-o", "export", ...(offset ? ["-O", String(offset)] : []), file];
    const r = exported((await runLocal("blkid", args, { timeoutMs: 30_000 })).stdout);
    const type = r.get("TYPE");
    return { type, label: r.get("LABEL"), uuid: r.get("UUID"), extFeatures: type && /^ext[234]$/.test(type) ? extFeatures(file, offset) : undefined };
}

export async function imageLayout(file: string): Promise<ImageLayout> {
    const whole = exported((await runLocal("blkid", ["-p", "-o", "export", file], { timeoutMs: 30_000 })).stdout);
    const table = whole.get("PTTYPE");
    if (table !== "gpt" && table !== "dos") {
        const disk: ImagePartition = { nr: 0, start: 0, sectors: fs.statSync(file).size / 512, ...(await probe(file, 0)) };
        return { fs: whole.get("TYPE"), parts: [disk] };
    }
    const out = (await runLocal("partx", ["-g", "-b", "-P", "-o", "NR,START,SECTORS,NAME,UUID,TYPE", file], { timeoutMs: 30_000 })).stdout;
    const parts: ImagePartition[] = [];
    for (const line of out.split("\n").filter((l) => l.trim())) {
        const p = pairs(line);
        const [nr, start, sectors] = ["NR", "START", "SECTORS"].map((k) => Number(p.get(k)));
        if (![nr, start, sectors].every(Number.isFinite)) continue;
        parts.push({ nr, start, sectors, partlabel: p.get("NAME") || undefined, partuuid: p.get("UUID") || undefined, parttype: p.get("TYPE")?.toLowerCase() || undefined, ...(await probe(file, start * 512)) });
    }
    const last = [...parts].sort((a, b) => b.start + b.sectors - (a.start + a.sectors))[0];
    if (!last) return { table, parts };
    return { table, last: { nr: last.nr, start: last.start, sectors: last.sectors }, fs: last.type, parts };
}

/** The target commands the grow step needs for this layout. */
export function growTools(l: ImageLayout): string[] {
    const tools = ["blkid", "blockdev"];
    if (l.table) tools.push("sfdisk");
    if (l.fs && /^ext[234]$/.test(l.fs)) tools.push("e2fsck", "resize2fs");
    if (l.fs === "btrfs") tools.push("btrfs");
    if (l.fs === "xfs") tools.push("xfs_growfs");
    return tools;
}
