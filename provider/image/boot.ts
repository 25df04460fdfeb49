/**
 * How a raw image can boot, read on the deployer before anything is written:
 * - BIOS: the firmware runs the code in the first 440 bytes of the disk (GRUB's boot.img, written
 *   by grub-install for an MBR disk or a GPT disk with a BIOS-boot partition). All zero: nothing
 *   to run.
 * - UEFI: the firmware starts what its boot entries name, and with none (disko's image VM keeps
 *   its EFI variables in a throw-away file, lib/make-disk-image.nix:108-110) only the removable
 *   path of an EFI system partition, \EFI\BOOT\BOOT<arch>.EFI. systemd-boot installs it; GRUB only
 *   with efiInstallAsRemovable (disko's docs/disko-images.md sets it).
 * A whole-disk file system (no partition table, Linode's way) boots through the provider's own
 * boot loader and is not judged here. The ESP is read with mtools when the deployer has it.
 */
import * as fs from "node:fs";
import { runLocal } from "../nix/local";
import type { ImageLayout } from "./layout";

/** GPT's EFI system partition type, and MBR's. */
const ESP_TYPES = new Set(["c12a7328-f81f-11d2-ba4b-00a0c93ec93b", "0xef"]);
const REMOVABLE = { x86_64: "BOOTX64.EFI", aarch64: "BOOTAA64.EFI" } as const;

export interface ImageBoot {
    /** The first 440 bytes hold boot code. */
    bios: boolean;
    /** The image has an EFI system partition. */
    esp: boolean;
    /** Its ESP holds the removable path's loader; undefined when it could not be read (no mtools). */
    removable?: boolean;
}

function biosCode(file: string): boolean {
    const fd = fs.openSync(file, "r");
    try {
        const head = Buffer.alloc(440);
        fs.readSync(fd, head, 0, 440, 0);
        return head.some((b) => b !== 0);
    } finally {
        fs.closeSync(fd);
    }
}

/** Whether the ESP at `start` (in 512-byte sectors) holds \EFI\BOOT\BOOT<arch>.EFI; undefined without mtools. */
async function hasRemovablePath(file: string, start: number, arch: keyof typeof REMOVABLE): Promise<boolean | undefined> {
    const r = await runLocal("mdir", ["-b", "-i", `${file}@@${start * 512}`, "::/EFI/BOOT"], { timeoutMs: 30_000 }).catch(() => undefined);
    if (!r) return undefined;
    return r.code === 0 && r.stdout.split("\n").some((l) => l.trim().toUpperCase().endsWith(`/EFI/BOOT/${REMOVABLE[arch]}`));
}

/** How the raw image `file`, whose partitions imageLayout read, can boot. */
export async function imageBoot(file: string, layout: ImageLayout, arch: keyof typeof REMOVABLE = "x86_64"): Promise<ImageBoot> {
    const start = layout.parts?.find((p) => p.nr > 0 && ESP_TYPES.has(p.parttype ?? ""))?.start;
    return { bios: biosCode(file), esp: start !== undefined, removable: start === undefined ? false : await hasRemovablePath(file, start, arch) };
}

/**
 * Why the image would not boot on a machine whose rescue booted by UEFI (`efi`) or BIOS, or
 * undefined when it can. Only partitioned images are judged.
 */
export function bootProblem(boot: ImageBoot, efi: boolean): { what: string; hint: string } | undefined {
    if (!efi && !boot.bios) {
        return {
            what: "the image has no BIOS boot code (its first 440 bytes are empty: an EFI-only image) and the machine boots by BIOS (its rescue system has no /sys/firmware/efi)",
            hint: "build the image with GRUB for BIOS (boot.loader.grub.devices and a BIOS-boot partition, EF02), or switch the machine to UEFI boot in the provider's panel",
        };
    }
    if (efi && boot.removable === false) {
        return {
            what: `the machine boots by UEFI, and the image ${boot.esp ? "has an EFI system partition without" : "has no EFI system partition with"} the removable path \\EFI\\BOOT\\${REMOVABLE.x86_64}: the image builder's boot entries are not kept, so the firmware would find nothing to start`,
            hint: "with GRUB set boot.loader.grub.efiInstallAsRemovable = true (and efiSupport); systemd-boot installs the removable path itself",
        };
    }
    return undefined;
}
