/**
 * Conformance of the test bed's firmware stand-in (tests/testbed/sh/host-init.sh, firmware_can_start):
 * - BIOS runs the boot code in the first 440 bytes of the disk; a partitioned disk without it
 *   (an EFI-only image) starts nothing.
 * - UEFI with no boot entries (disko's image VM keeps its EFI variables in a throw-away file,
 *   disko lib/make-disk-image.nix:108-110) starts only an ESP's removable path
 *   \EFI\BOOT\BOOTX64.EFI (UEFI spec 2.10 §3.5.1.1, "Removable Media Boot Behavior"); GRUB
 *   installed without efiInstallAsRemovable (\EFI\nixos\grubx64.efi only) is not found.
 * A disk the firmware cannot start leaves the host in its base system (Debian here).
 */
import { execFileSync } from "node:child_process";
import * as path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { buildFixture, fixtureCopy } from "../../testbed/nix";
import { hostsForThisFile } from "../../testbed/per-file";

const createHost = hostsForThisFile();
let dir: string;
beforeAll(() => {
    dir = fixtureCopy();
});

/** Boots a Debian host whose disk holds fixture `name`'s image; returns what it booted. */
async function bootsFrom(name: string, firmware: "bios" | "efi"): Promise<string> {
    const image = path.join(await buildFixture(dir, name, "diskoImages"), "main.raw");
    const h = await createHost({ disks: [192], firmware });
    execFileSync("dd", [`if=${image}`, `of=${h.loopDevices[0]}`, "bs=4M", "conv=notrunc,fsync", "status=none"]);
    await h.reboot();
    const efiDir = (await h.exec("test -d /sys/firmware/efi")).code === 0;
    expect(efiDir).toBe(firmware === "efi");
    return h.bootKind();
}

describe("the test bed's firmware", () => {
    it("BIOS starts a GPT disk with boot code in its MBR, and not an EFI-only one", async () => {
        expect(await bootsFrom("web-gpt", "bios")).toBe("nixos");
        expect(await bootsFrom("web-gpt-efi", "bios")).toBe("debian");
    });

    it("UEFI starts an ESP's removable path only: not GRUB without it, not a BIOS-only disk", async () => {
        expect(await bootsFrom("web-gpt-efi", "efi")).toBe("nixos");
        expect(await bootsFrom("web-gpt-efi-grub", "efi")).toBe("debian");
        expect(await bootsFrom("web-dos", "efi")).toBe("debian");
    });
});
