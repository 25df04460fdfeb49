/**
 * install (installs by image): grows the written image to the disk and writes what the first boot
 * needs into its root file system.
 * - Grow: the kernel re-reads the table (`blockdev --rereadpt`, after udev settled and retried while
 *   the kernel answers EBUSY, see REREAD_TRIES); the partition holding / (or /nix) takes the rest of the
 *   disk when it is the one that ends last (`sfdisk -N`, keeping its start, type and GUID; on a GPT
 *   libfdisk moves the backup header to the disk's end itself when it writes, from util-linux 2.32
 *   on: libfdisk/src/gpt.c "This problem will be corrected by write"); then its file system grows
 *   (ext2/3/4: `e2fsck -f` then `resize2fs`, as resize2fs refuses an unchecked file system; btrfs
 *   and xfs: mounted, `btrfs filesystem resize max` / `xfs_growfs`). A whole-disk file system grows
 *   on the disk itself. Each step is a no-op when already done, so a resumed run repeats it safely.
 *   image/holders.ts says what grows; a partition after the root's (swap) leaves it at its size.
 * - Files: the extra files and the SSH host key (at the path sshd_config's HostKey names) go into
 *   the file system the installed system mounts over them: the root one (holding the system
 *   profile or /etc/NIXOS), or, with a tmpfs root (impermanence), the /nix one (holding store/
 *   and var/). Each is mounted with its fstab entry's btrfs subvolume, written and unmounted;
 *   placement.ts says which.
 */
import * as path from "node:path";
import { NixosDeployError } from "../errors";
import { growPlan, mountOptions } from "../image/holders";
import type { ImageLayout } from "../image/layout";
import { Command, sh } from "../ssh/shell";
import type { PhaseContext } from "./context";
import { writeExtraFiles, writeHostKey, ExtraFile } from "./files";
import { partitionDevice, SHORT_MS } from "./image-disk";
import { mountOf, NIXOS_DEFAULTS, onDisk, SystemLayout } from "./placement";

const MOUNT = "/run/pulumi-nixos-image";

const growFs = (dev: string, fs: string) => {
    if (/^ext[234]$/.test(fs)) return sh`e2fsck -f -y ${dev} >/dev/null; [ $? -le 1 ] || exit 6; resize2fs ${dev}`;
    if (fs === "btrfs") return sh`mkdir -p ${MOUNT} && mount ${dev} ${MOUNT} && { btrfs filesystem resize max ${MOUNT}; r=$?; umount ${MOUNT}; exit $r; }`;
    if (fs === "xfs") return sh`mkdir -p ${MOUNT} && mount ${dev} ${MOUNT} && { xfs_growfs ${MOUNT}; r=$?; umount ${MOUNT}; exit $r; }`;
    return undefined;
};

/**
 * BLKRRPART fails with EBUSY while any partition of the disk is open (Linux block/ioctl.c ->
 * disk_scan_partitions), e.g. while udev probes the partitions after each write to the disk (its
 * 60-block.rules watch). So: wait for udev to settle (when it runs) and retry a bounded number of
 * times, 1 s apart, as systemd's loop-util.c retries the same ioctl for the same reason. A disk
 * that stays busy (md or LVM assembled on it by the rescue system) fails with the kernel's answer.
 */
export const REREAD_TRIES = 10;
const reread = (disk: string) => sh`d=${disk}; n=0
while :; do
  if command -v udevadm >/dev/null 2>&1; then udevadm settle --timeout=5 >/dev/null 2>&1 || true; fi
  err=$(blockdev --rereadpt "$d" 2>&1) && exit 0
  n=$((n + 1)); [ "$n" -ge ${REREAD_TRIES} ] && break
  sleep 1
done
echo "$err (tried ${REREAD_TRIES} times, 1 s apart)" >&2; exit 1`;

export async function growImage(ctx: PhaseContext, disk: string, layout: ImageLayout, timeoutS: number, system: SystemLayout = NIXOS_DEFAULTS): Promise<void> {
    const phase = "install";
    const t = ctx.target;
    const run = (cmd: ReturnType<typeof sh>, what: string) => t.run(cmd, { phase, what, timeoutMs: timeoutS * 1000 });
    await run(reread(disk), `re-reading the partition table of ${disk}`);
    const plan = growPlan(layout, system);
    if (!plan.part) {
        ctx.log(phase, plan.note ?? "nothing to grow");
        return;
    }
    let dev = disk;
    if (layout.table) {
        const nr = plan.part.nr;
        await run(sh`echo ', +' | sfdisk --no-reread --no-tell-kernel -N ${nr} ${disk}`, `growing partition ${nr} of ${disk} to the end of the disk`);
        await run(reread(disk), `re-reading the partition table of ${disk}`);
        dev = partitionDevice(disk, nr);
    }
    const fs = plan.part.fs;
    const grow = fs ? growFs(dev, fs) : undefined;
    if (!grow) {
        ctx.log(phase, `${dev}: ${fs ?? "no"} file system; left at the image's size`);
        return;
    }
    await run(grow, `growing the ${fs} file system on ${dev}`);
    const size = (await run(sh`blockdev --getsize64 ${dev}`, `sizing ${dev}`)).stdout.trim();
    ctx.log(phase, `grew ${dev} and its ${fs} file system to ${(Number(size) / 1048576).toFixed(0)} MiB`);
}

/** What a file system on the written disk holds at its top, by where the installed system mounts it. */
const HOLDS: Record<string, { test: Command; what: string }> = {
    "/": { test: sh`[ -e "$m/etc/NIXOS" ] || [ -L "$m/nix/var/nix/profiles/system" ]`, what: "etc/NIXOS or nix/var/nix/profiles/system" },
    "/nix": { test: sh`[ -d "$m/store" ] && [ -L "$m/var/nix/profiles/system" ]`, what: "store/ and var/nix/profiles/system" },
};

/**
 * Mounts at MOUNT the file system on `disk` that the installed system mounts at `point` ("/" or
 * "/nix"), with the fstab entry's btrfs subvolume (`options`), runs `body`, and unmounts it
 * whatever happens.
 */
async function intoFileSystem<T>(ctx: PhaseContext, disk: string, point: string, options: string[], body: (top: string) => Promise<T>): Promise<T> {
    const phase = "install";
    const holds = HOLDS[point];
    const opts = options.length ? sh`-o ${options.join(",")} ` : sh``;
    const find = sh`m=${MOUNT}; mkdir -p "$m"; mountpoint -q "$m" && umount "$m"
for p in ${disk} ${disk}[0-9]* ${disk}p[0-9]*; do
  [ -b "$p" ] || continue
  mount ${opts}"$p" "$m" 2>/dev/null || continue
  if ${holds.test}; then echo "$p"; exit 0; fi
  umount "$m"
done
exit 7`;
    const r = await ctx.target.run(find, { phase, allowFailure: true, what: `finding the image's ${point} file system`, timeoutMs: SHORT_MS });
    if (r.code !== 0) {
        throw new NixosDeployError({
            host: ctx.target.name,
            phase,
            what: `no file system on ${disk} holds the system's ${point} (${holds.what})${options.length ? ` mounted with ${options.join(",")}` : ""}`,
            stderr: r.stderr,
            hint: "host keys and extra files go into the file system the configuration mounts at / (or at /nix, when / is a tmpfs); check the image's layout against fileSystems",
        });
    }
    try {
        return await body(MOUNT);
    } finally {
        await ctx.target.run(sh`sync; umount ${MOUNT}`, { phase, what: `unmounting the image's ${point} file system`, timeoutMs: SHORT_MS });
    }
}

/**
 * Writes the extra files and the host key (at sshd's HostKey path) into the file systems that
 * hold them: / or /nix, by `placement.ts`; returns the host key's public line.
 */
export async function writeIntoImage(ctx: PhaseContext, disk: string, o: { system: SystemLayout; extraFiles: Record<string, ExtraFile>; hostKeyPair?: string }): Promise<string> {
    // Where each file lives on disk (through the configuration's bind mounts), and on which mount.
    const files = Object.entries(o.extraFiles).map(([f, spec]) => ({ file: onDisk(o.system, f), spec }));
    const key = onDisk(o.system, o.system.hostKeyPath);
    const on = (file: string) => mountOf(o.system, file).point;
    const within = (point: string, file: string) => (point === "/" ? file : file.slice(point.length));
    let hostKey = "";
    for (const point of [...new Set([on(key), ...files.map((f) => on(f.file))])]) {
        await intoFileSystem(ctx, disk, point, mountOptions(mountOf(o.system, point)), async (top) => {
            await writeExtraFiles(ctx, "install", top, Object.fromEntries(files.filter((f) => on(f.file) === point).map((f) => [within(point, f.file), f.spec])));
            if (point === on(key)) hostKey = await writeHostKey(ctx.target, "install", path.posix.join(top, within(point, key)), o.hostKeyPair);
        });
    }
    return hostKey;
}
