/**
 * What a raw image holds, read on the deployer before anything is written: its partition table
 * (gpt, dos, or none for a whole-disk file system, as on Linode), its last partition, and the file
 * system that the grow step resizes. The target's tools needed for the grow follow from it.
 */
import { runLocal } from "../nix/local";

export interface ImageLayout {
    table?: "gpt" | "dos";
    /** The partition that ends last (number, first sector, sectors), when there is a table. */
    last?: { nr: number; start: number; sectors: number };
    /** The file system on the last partition, or on the whole image. */
    fs?: string;
}

const exported = (out: string) => new Map(out.split("\n").filter((l) => l.includes("=")).map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)] as [string, string]));

export async function imageLayout(file: string): Promise<ImageLayout> {
    const whole = exported((await runLocal("blkid", ["-p", "-o", "export", file], { timeoutMs: 30_000 })).stdout);
    const table = whole.get("PTTYPE");
    if (table !== "gpt" && table !== "dos") return { fs: whole.get("TYPE") };
    const parts = (await runLocal("partx", ["-g", "-b", "-o", "NR,START,SECTORS", file], { timeoutMs: 30_000 })).stdout
        .trim()
        .split("\n")
        .map((l) => l.trim().split(/\s+/).map(Number))
        .filter((p) => p.length === 3 && p.every(Number.isFinite))
        .map(([nr, start, sectors]) => ({ nr, start, sectors }));
    const last = parts.sort((a, b) => b.start + b.sectors - (a.start + a.sectors))[0];
    if (!last) return { table };
    const fs = exported((await runLocal("blkid", ["-p", "-o", "export", "-O", String(last.start * 512), file], { timeoutMs: 30_000 })).stdout).get("TYPE");
    return { table, last, fs };
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
