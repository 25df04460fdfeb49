/**
 * Devices an installed system waits for at boot, named by the kernel's name for a disk or its
 * partition (/dev/vda3, /dev/sda, /dev/nvme0n1p2): NixOS's stage 1 waits for each file system
 * needed for boot and then gives up into an emergency shell (nixos/modules/system/boot/stage-1-init.sh,
 * "waiting for device … to appear"), and systemd fails local-fs.target for any other fstab entry
 * without `nofail`. A name by label, UUID or partition label (/dev/disk/by-…, LABEL=) holds on any
 * machine; a kernel name holds only where the machine has that disk. disko's image builder renames
 * every disk to /dev/vda… (lib/tests.nix prepareDiskoConfig), so a whole-disk or MBR image built
 * by it names /dev/vda even when the configuration said /dev/sda.
 */
import type { Mount } from "./placement";

const KERNEL_NAME = /^\/dev\/((?:[shv]|xv)d[a-z]+|nvme\d+n\d+|mmcblk\d+)(?:p?\d+)?$/;

/** The fstab devices (device and mount point) whose disk is not one of `disks` ("sda", "nvme0n1"). */
export function missingBootDevices(mounts: Mount[], disks: string[]): { device: string; point: string }[] {
    return mounts
        .filter((m) => !m.options.includes("nofail") && !m.options.includes("noauto"))
        .flatMap((m) => {
            const disk = KERNEL_NAME.exec(m.device)?.[1];
            return disk && !disks.includes(disk) ? [{ device: m.device, point: m.point }] : [];
        });
}
