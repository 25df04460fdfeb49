/**
 * The install by image refuses, before writing, an image the machine's firmware cannot start: an
 * EFI-only image where the rescue booted by BIOS, and, where it booted by UEFI, an image whose ESP
 * lacks the removable path (the image builder's NVRAM entries are not kept).
 */
import { beforeAll, describe, expect, it } from "vitest";
import * as hooks from "../../../provider/resources/install";
import type { Host } from "../../testbed/host";
import { fixtureCopy } from "../../testbed/nix";
import { hostsForThisFile } from "../../testbed/per-file";
import { checked, connectionTo } from "./helpers";

const createHost = hostsForThisFile();
let dir: string;
beforeAll(() => {
    dir = fixtureCopy();
});

const imageInputs = (h: Host, name: string) => checked({ connection: connectionTo(h), flake: `path:${dir}/flake#${name}`, method: "image" });
const head4MiB = (h: Host) => h.execOk("head -c 4194304 /dev/vda | sha256sum");

describe("NixosInstall by image: the machine's firmware", () => {
    it("refuses an EFI-only image on a machine that boots by BIOS, before writing anything", async () => {
        const h = await createHost({ kind: "rescue", disks: [128] });
        const before = await head4MiB(h);
        const err = await hooks.create(await imageInputs(h, "web-gpt-efi")).catch((e) => e);
        expect(err.message).toMatch(/^facts on root@10\.123\.0\.\d+ failed: the image has no BIOS boot code \(its first 440 bytes are empty: an EFI-only image\) and the machine boots by BIOS/);
        expect(err.message).toContain("the image has no BIOS boot code (its first 440 bytes are empty: an EFI-only image) and the machine boots by BIOS (its rescue system has no /sys/firmware/efi)");
        expect(await head4MiB(h)).toBe(before);
    });

    it("refuses on a UEFI machine an image without the removable path (GRUB EFI without efiInstallAsRemovable), and a BIOS-only one", async () => {
        const h = await createHost({ kind: "rescue", disks: [128], firmware: "efi" });
        const before = await head4MiB(h);
        for (const name of ["web-gpt-efi-grub", "web-gpt"]) {
            const err = await hooks.create(await imageInputs(h, name)).catch((e) => e);
            expect(err.message).toMatch(/^facts on root@10\.123\.0\.\d+ failed: the machine boots by UEFI, and the image has an EFI system partition without the removable path \\EFI\\BOOT\\BOOTX64\.EFI/);
            expect(err.message).toContain(
                "the machine boots by UEFI, and the image has an EFI system partition without the removable path \\EFI\\BOOT\\BOOTX64.EFI: the image builder's boot entries are not kept, so the firmware would find nothing to start",
            );
            expect(err.message).toContain("efiInstallAsRemovable = true");
        }
        expect(await head4MiB(h)).toBe(before);
    });

    it("installs an image with the removable path on a UEFI machine and boots it", async () => {
        const h = await createHost({ kind: "rescue", disks: [128], firmware: "efi" });
        const { outs } = await hooks.create(await imageInputs(h, "web-gpt-efi"));
        expect(outs.phasesCompleted).toEqual(["write", "install", "reboot"]);
        await h.waitUp();
        expect(await h.bootKind()).toBe("nixos");
    });
});
