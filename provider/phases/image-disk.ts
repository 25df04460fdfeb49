/**
 * The target disk of an install by image, as the rescue system sees it: whether anything on it is
 * in use, its logical sector size, which tools the rescue system has, and which NixOS an earlier
 * write left on it (the system profile of any file system on the disk, mounted read-only to look).
 *
 * "In use" is decided by device number, never by name alone: /proc/mounts may name a device
 * /dev/root, a disk node in /dev need not carry the kernel's name, and a mounted btrfs shows an
 * anonymous device number (0:N) in mountinfo. The disk is in use when the disk or a partition of it
 * has holders (a device-mapper or md device on it: LVM, LUKS, RAID, and any swap or mount on those),
 * when a mount's device number is one of them, when a mount with an anonymous device number names
 * one of them as its source, when a mounted btrfs lists one of them among its devices, or when swap
 * is on one of them.
 */
import { NixosDeployError } from "../errors";
import { Command, sh } from "../ssh/shell";
import type { PhaseContext } from "./context";
import { keyValues } from "./facts";

/** The bound of a short command on the disk (mounting, looking, unmounting): a hung mount ends here. */
export const SHORT_MS = 120_000;

export interface DiskFacts {
    /** What keeps the disk in use ("/dev/vda2 on /mnt", "/dev/vda2 is held by dm-0", "/dev/vda3 as swap"). */
    inUse: string[];
    /** Of the tools asked about, those the rescue system lacks. */
    missing: string[];
    /** The toplevel of a NixOS found on the disk; "unknown" when its profile cannot be read. */
    installed: string;
    /** "1" when `dd iflag=fullblock` works (GNU or busybox dd). */
    ddFullblock: boolean;
    /** The disk's logical sector size in bytes (`blockdev --getss`); 0 when it cannot be read. */
    sectorSize: number;
}

/** `/dev/vda` -> `/dev/vda3`; `/dev/nvme0n1` -> `/dev/nvme0n1p3` (names ending in a digit take "p"). */
export function partitionDevice(disk: string, nr: number): string {
    return /\d$/.test(disk) ? `${disk}p${nr}` : `${disk}${nr}`;
}

/**
 * Shell functions: num (a device node's major:minor), and devs, the disk and its partitions as
 * "major:minor path" lines, from their nodes in /dev and from the disk's partitions in sysfs.
 */
const DEVICES = sh`num() { mm=$(stat -L -c '%t %T' "$1" 2>/dev/null) && echo "$(printf %d "0x\${mm% *}"):$(printf %d "0x\${mm#* }")"; }
devs=$(
  for p in "$d" "$pd"[0-9]*; do [ -b "$p" ] && echo "$(num "$p") $p"; done
  for s in /sys/dev/block/"$(num "$d")"/*/partition; do
    [ -f "$s" ] && echo "$(cat "\${s%/partition}/dev") /dev/$(basename "\${s%/partition}")"
  done | sort -u -k1,1)
on_disk() { printf '%s\\n' "$devs" | awk -v mm="$1" '$1 == mm { print $2; f = 1; exit } END { exit !f }'; }`;

/** in_use= lines: holders, mounts (by number, or by source for anonymous numbers), btrfs devices, swap. */
const IN_USE = sh`printf '%s\\n' "$devs" | while read -r mm p; do
  for h in /sys/dev/block/"$mm"/holders/*; do [ -e "$h" ] || [ -L "$h" ] && echo "in_use=$p is held by \${h##*/}"; done
done
awk '{ for (i = 7; i < NF && $i != "-"; i++); print $3, $5, $(i + 2) }' /proc/self/mountinfo | while read -r mm at src; do
  case $mm in 0:*) [ -b "$src" ] && mm=$(num "$src") ;; esac
  p=$(on_disk "$mm") && echo "in_use=$p on $at"
done
for f in /sys/fs/btrfs/*/devices/*/dev; do
  [ -f "$f" ] && p=$(on_disk "$(cat "$f")") && echo "in_use=$p in a mounted btrfs"
done
tail -n +2 /proc/swaps | while read -r f _; do p=$(on_disk "$(num "$f")") && echo "in_use=$p as swap"; done`;

/**
 * installed= lines: the system profile of each file system on the disk, at its top or one folder
 * down (a btrfs subvolume: "root", "@"), or at var/nix of a separate /nix file system.
 */
const INSTALLED = sh`m=$(mktemp -d)
for p in "$d" "$pd"[0-9]*; do
  [ -b "$p" ] || continue
  # Read-only without replaying a journal or log (ext4 noload, btrfs nologreplay, xfs norecovery):
  # looking must not write to the disk. A btrfs is mounted at its top, where subvolumes are folders.
  mount -o ro,noload "$p" "$m" 2>/dev/null || mount -o ro,nologreplay,subvolid=5 "$p" "$m" 2>/dev/null ||
    mount -o ro,norecovery "$p" "$m" 2>/dev/null || mount -o ro "$p" "$m" 2>/dev/null || continue
  for prof in "$m/nix/var/nix/profiles" "$m"/*/nix/var/nix/profiles "$m/var/nix/profiles" "$m"/*/var/nix/profiles; do
    l=$(readlink "$prof/system" 2>/dev/null) || continue
    t=$(readlink "$prof/$l" 2>/dev/null || true)
    echo "installed=\${t:-unknown}"
  done
  for n in "$m/etc/NIXOS" "$m"/*/etc/NIXOS; do [ -e "$n" ] && echo "installed=unknown"; done
  umount "$m"
done
rmdir "$m"`;

// Partitions: sda1, nvme0n1p1 (a name ending in a digit takes "p"; nvme0n10 is another namespace).
const script = (disk: string, tools: string[]) => sh`d=${disk}
case $d in *[0-9]) pd="\${d}p" ;; *) pd=$d ;; esac
for t in ${tools.map((t) => sh`${t}`)}; do command -v "$t" >/dev/null 2>&1 || echo "missing=$t"; done
dd if=/dev/zero of=/dev/null bs=512 count=1 iflag=fullblock 2>/dev/null && echo "dd_fullblock=1"
echo "sector_size=$(blockdev --getss "$d" 2>/dev/null)"
${DEVICES}
used=$(${IN_USE})
[ -n "$used" ] && { echo "$used" | awk '!seen[$0]++'; exit 0; }
${INSTALLED}`;

export async function diskFacts(ctx: PhaseContext, disk: string, tools: string[]): Promise<DiskFacts> {
    const out = (await ctx.target.run(script(disk, tools), { phase: "facts", what: `looking at ${disk}`, timeoutMs: SHORT_MS })).stdout;
    const lines = out.split("\n");
    const all = (k: string) => lines.filter((l) => l.startsWith(k + "=")).map((l) => l.slice(k.length + 1));
    const installed = all("installed");
    const kv = keyValues(out);
    return {
        inUse: inUseOnce(all("in_use")),
        missing: all("missing"),
        // A readable profile wins over the bare /etc/NIXOS marker.
        installed: installed.find((t) => t !== "unknown") ?? installed[0] ?? "",
        ddFullblock: kv.get("dd_fullblock") === "1",
        sectorSize: Number(kv.get("sector_size")) || 0,
    };
}

/** A partition found by its btrfs after its mount was listed adds nothing: said once. */
function inUseOnce(lines: string[]): string[] {
    const mounted = new Set(lines.filter((l) => / on /.test(l)).map((l) => l.split(" ")[0]));
    return lines.filter((l) => !(l.endsWith(" in a mounted btrfs") && mounted.has(l.split(" ")[0])));
}

/** The device a path names on the target, symbolic links followed (`/dev/disk/by-id/…` -> `/dev/sda`). */
export async function resolveDevice(ctx: PhaseContext, device: string): Promise<string> {
    const r = await ctx.target.run(sh`readlink -f -- ${device} || echo ${device}`, { phase: "facts", what: `resolving ${device}`, timeoutMs: SHORT_MS });
    return r.stdout.trim() || device;
}

/** The whole-disk writes of an image: refused on a disk whose logical sectors are not the image's 512 bytes. */
export function refuseSectorSize(host: string, disk: string, sectorSize: number): void {
    if (sectorSize === 512) return;
    const what = sectorSize
        ? `${disk} has ${sectorSize}-byte logical sectors; the image is laid out in 512-byte sectors, so its partition table would not be found there`
        : `cannot read the logical sector size of ${disk} (blockdev --getss)`;
    throw new NixosDeployError({ host, phase: "facts", what, hint: "write the image to a disk with 512-byte logical sectors (512n or 512e); a 4Kn disk needs an image built for 4096-byte sectors" });
}

/**
 * After a verified write: zeroes the disk's last MiB past the image, where an earlier system's
 * md 1.0 superblock or ZFS labels L2/L3 would still be found by blkid and by RAID or pool assembly.
 */
export function wipeEnd(disk: string, imageBytes: number): Command {
    return sh`d=${disk}; img=${imageBytes}
end=$(blockdev --getsize64 "$d") || exit 1
from=$((end - 1048576)); [ $from -ge $img ] || from=$img
[ $from -lt $end ] || exit 0
blkdiscard -z -o $from -l $((end - from)) "$d" 2>/dev/null ||
  dd if=/dev/zero of="$d" bs=512 seek=$((from / 512)) count=$(((end - from) / 512)) conv=notrunc status=none`;
}
