/**
 * The target disk of an install by image, as the rescue system sees it: whether anything on it is
 * in use (mounted, by device number as /proc/self/mountinfo has it, since /proc/mounts may name a
 * device /dev/root; swap), which tools the rescue system has, and which NixOS an earlier write left
 * on it (the system profile of any file system on the disk, mounted read-only to look).
 */
import { sh } from "../ssh/shell";
import type { PhaseContext } from "./context";
import { keyValues } from "./facts";

/** The bound of a short command on the disk (mounting, looking, unmounting): a hung mount ends here. */
export const SHORT_MS = 120_000;

export interface DiskFacts {
    /** Mounts and swap on the disk or its partitions ("/dev/vda2 on /mnt"). */
    inUse: string[];
    /** Of the tools asked about, those the rescue system lacks. */
    missing: string[];
    /** The toplevel of a NixOS found on the disk; "unknown" when its profile cannot be read. */
    installed: string;
    /** "1" when `dd iflag=fullblock` works (GNU or busybox dd). */
    ddFullblock: boolean;
}

/** `/dev/vda` -> `/dev/vda3`; `/dev/nvme0n1` -> `/dev/nvme0n1p3` (names ending in a digit take "p"). */
export function partitionDevice(disk: string, nr: number): string {
    return /\d$/.test(disk) ? `${disk}p${nr}` : `${disk}${nr}`;
}

const script = (disk: string, tools: string[]) => sh`d=${disk}
for t in ${tools.map((t) => sh`${t}`)}; do command -v "$t" >/dev/null 2>&1 || echo "missing=$t"; done
dd if=/dev/zero of=/dev/null bs=512 count=1 iflag=fullblock 2>/dev/null && echo "dd_fullblock=1"
used=$(for p in "$d" "$d"[0-9]* "$d"p[0-9]*; do
  [ -b "$p" ] || continue
  mm=$(stat -L -c '%t %T' "$p"); mm="$(printf %d "0x\${mm% *}"):$(printf %d "0x\${mm#* }")"
  awk -v p="$p" -v mm="$mm" '$3 == mm { print "in_use=" p " on " $5 }' /proc/self/mountinfo
  awk -v p="$p" '$1 == p { print "in_use=" p " as swap" }' /proc/swaps
done)
[ -n "$used" ] && { echo "$used"; exit 0; }
m=$(mktemp -d)
for p in "$d" "$d"[0-9]* "$d"p[0-9]*; do
  [ -b "$p" ] || continue
  # Read-only without replaying a journal or log (ext4 noload, btrfs nologreplay, xfs norecovery):
  # looking must not write to the disk.
  mount -o ro,noload "$p" "$m" 2>/dev/null || mount -o ro,nologreplay "$p" "$m" 2>/dev/null ||
    mount -o ro,norecovery "$p" "$m" 2>/dev/null || mount -o ro "$p" "$m" 2>/dev/null || continue
  for prof in "$m/nix/var/nix/profiles" "$m/var/nix/profiles"; do
    l=$(readlink "$prof/system" 2>/dev/null) || continue
    t=$(readlink "$prof/$l" 2>/dev/null || true)
    echo "installed=\${t:-unknown}"
  done
  [ -e "$m/etc/NIXOS" ] && echo "installed=unknown"
  umount "$m"
done
rmdir "$m"`;

export async function diskFacts(ctx: PhaseContext, disk: string, tools: string[]): Promise<DiskFacts> {
    const out = (await ctx.target.run(script(disk, tools), { phase: "facts", what: `looking at ${disk}`, timeoutMs: SHORT_MS })).stdout;
    const lines = out.split("\n");
    const all = (k: string) => lines.filter((l) => l.startsWith(k + "=")).map((l) => l.slice(k.length + 1));
    const installed = all("installed");
    return {
        inUse: all("in_use"),
        missing: all("missing"),
        // A readable profile wins over the bare /etc/NIXOS marker.
        installed: installed.find((t) => t !== "unknown") ?? installed[0] ?? "",
        ddFullblock: keyValues(out).get("dd_fullblock") === "1",
    };
}
