/**
 * Conformance of the test bed's boot of an installed system (sh/host-init.sh) with the real one:
 * - stage 1 mounts the device fstab names for / and /nix and, when it is missing, waits and then
 *   stops: nixpkgs nixos/modules/system/boot/stage-1-init.sh@014260a l.372-387 ("waiting for device
 *   $device to appear...", 20 tries, "Timed out waiting for device"), l.325-326 (the mount fails,
 *   fail()), l.13-36 (fail() waits at its prompt: no stage 2, no sshd);
 * - /dev/disk/by-partlabel links and partition names as udev and the kernel make them
 *   (block/partitions/core.c add_partition: "p" after a name ending in a digit, nvme0n1p3);
 * - impermanence's persisted folders are systemd mount units (impermanence nixos.nix:290-308),
 *   bound What= onto Where= at boot; a missing source fails local-fs.target (emergency mode);
 * - sshd-keygen makes each services.openssh.hostKeys entry with its own type (nixpkgs
 *   nixos/modules/services/networking/ssh/sshd.nix, systemd.services.sshd-keygen: ssh-keygen -t
 *   "${k.type}" -f "${k.path}"); sshd_config's HostKey lines carry paths only.
 */
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Host, waitForSsh } from "../../testbed/host";
import { buildFixture, fixtureCopy } from "../../testbed/nix";
import { hostsForThisFile } from "../../testbed/per-file";

const createHost = hostsForThisFile();
let dir: string;
beforeAll(() => {
    dir = fixtureCopy();
});
afterAll(() => {
    fs.rmSync(dir, { recursive: true, force: true });
});

/** Writes fixture `name`'s disk image (diskoImages' main.raw) onto the host's first disk from outside, as a provider's dd would. */
async function writeImage(h: Host, name: string): Promise<void> {
    const images = await buildFixture(dir, name, "diskoImages");
    execFileSync("dd", [`if=${path.join(images, "main.raw")}`, `of=${h.loopDevices[0]}`, "bs=1M", "conv=notrunc,fsync", "status=none"]);
}

/** Waits (bounded) until the console shows `line`; the host's boot never reaches sshd. */
async function stuckWith(h: Host, line: string): Promise<void> {
    const deadline = Date.now() + 20_000;
    while (!h.consoleTail(40).includes(line)) {
        if (Date.now() > deadline) throw new Error(`the console never showed "${line}":\n${h.consoleTail()}`);
        await new Promise((r) => setTimeout(r, 100));
    }
    expect(h.state()).toBe("running");
    await expect(waitForSsh(h.address, 22, 1500)).rejects.toThrow();
}

describe("stage 1 of an installed system", () => {
    it("waits for the device fstab names for / and then stops, as stage-1-init.sh does: a whole-disk image for /dev/vda does not boot from /dev/sda", async () => {
        const h = await createHost({ disks: [128], diskNames: ["sda"] });
        expect(await h.execOk("ls /dev | grep -E '^(sd|vd)'")).toBe("sda\n");
        await writeImage(h, "web");
        await h.reboot({ wait: false });
        await stuckWith(h, "Timed out waiting for device /dev/vda");
        expect(h.consoleTail(40)).toContain("stage 1: waiting for device /dev/vda to appear...");
    });

    it("mounts a GPT root by its partition label on an nvme disk, whose partitions are named nvme0n1p1, p2, p3", async () => {
        const h = await createHost({ disks: [128], diskNames: ["nvme0n1"] });
        await writeImage(h, "web-gpt");
        await h.reboot();
        expect(await h.bootKind()).toBe("nixos");
        expect(await h.execOk("ls /dev | grep '^nvme'")).toBe("nvme0n1\nnvme0n1p1\nnvme0n1p2\nnvme0n1p3\n");
        expect(await h.execOk("grep -c '^/dev/disk/by-partlabel/nixos / ' /run/current-system/etc/fstab")).toBe("1\n");
    });
});

describe("impermanence's persisted folders at boot", () => {
    it("bind a mount unit's What= onto its Where=, and a missing source stops the boot in emergency mode", async () => {
        const h = await createHost({ disks: [160] });
        await writeImage(h, "web-persisted-etc-ssh");
        await h.reboot({ wait: false });
        await stuckWith(h, "emergency mode: mounting /nix/persistent/etc/ssh on /etc/ssh failed");

        h.armRescue();
        await h.powerCycle();
        await h.execOk("blockdev --rereadpt /dev/vda && mkdir -p /mnt && mount /dev/vda3 /mnt && mkdir -p /mnt/persistent/etc/ssh && umount /mnt");
        await h.reboot();
        expect(await h.bootKind()).toBe("nixos");
        const [mounted, key] = (await h.execOk("awk '$5 == \"/etc/ssh\"' /proc/self/mountinfo | wc -l; cut -d' ' -f1-2 /nix/persistent/etc/ssh/ssh_host_ed25519_key.pub")).trim().split("\n");
        expect(mounted).toBe("1");
        expect(key).toBe(h.hostKey);
    });
});

describe("sshd-keygen of an installed system", () => {
    it("makes each host key with the type services.openssh.hostKeys gives it, not one guessed from its path", async () => {
        const h = await createHost({ disks: [128] });
        await writeImage(h, "web-key-types");
        await h.reboot();
        expect(await h.bootKind()).toBe("nixos");
        const types = await h.execOk("for k in /etc/ssh/host_key_legacy /etc/ssh/host_key_main; do ssh-keygen -l -f $k | grep -o '([A-Z0-9]*)$'; done");
        expect(types).toBe("(RSA)\n(ED25519)\n");
        expect((await h.execOk("cut -d' ' -f1-2 /etc/ssh/host_key_main.pub")).trim()).toBe(h.hostKey);
    });
});
