/**
 * The install by image boots the system the image holds: disko's image builder installs its own
 * variant of the configuration (lib/make-disk-image.nix systemToInstall), whose devices and sshd
 * port come from that system; and a rescue mode that persists across reboots is named as such.
 */
import { beforeAll, describe, expect, it } from "vitest";
import * as hooks from "../../../provider/resources/install";
import type { Host } from "../../testbed/host";
import { fixtureCopy } from "../../testbed/nix";
import { hostsForThisFile } from "../../testbed/per-file";
import { sshRun } from "../../testbed/ssh";
import { checked, connectionTo } from "./helpers";

const createHost = hostsForThisFile();
let dir: string;
beforeAll(() => {
    dir = fixtureCopy();
});

const imageInputs = (h: Host, name: string, extra: Record<string, unknown> = {}) => checked({ connection: connectionTo(h), flake: `path:${dir}/flake#${name}`, method: "image", ...extra });
const head4MiB = (h: Host) => h.execOk("head -c 4194304 /dev/vda | sha256sum");

describe("NixosInstall by image: the system the image holds", () => {
    it("installs and verifies the image's own system (GRUB devices of disko's build VM), not the configuration's toplevel, and records it", async () => {
        const h = await createHost({ kind: "rescue", disks: [192] });
        const inputs = await imageInputs(h, "web-gpt-grub-sda");
        expect(inputs.imageToplevel).toMatch(/^\/nix\/store\/[a-z0-9]{32}-nixos-system-web-/);
        expect(inputs.imageToplevel).not.toBe(inputs.toplevel);
        const { outs } = await hooks.create(inputs);
        expect(outs.phasesCompleted).toEqual(["write", "install", "reboot"]);
        expect(outs.installedToplevel).toBe(inputs.imageToplevel);
        await h.waitUp();
        const r = await sshRun(h, "readlink /run/current-system; cat /run/current-system/testbed-grub-devices", { pin: outs.hostKey });
        expect(r.stdout.trim().split("\n")).toEqual([inputs.imageToplevel, "/dev/vda"]);
    });

    it("has no imageToplevel when the image holds the configuration's own system", async () => {
        const h = await createHost({ kind: "rescue", disks: [128] });
        const inputs = await imageInputs(h, "web");
        expect(inputs.imageToplevel).toBeUndefined();
        expect(inputs.__drvs.imageToplevel).toBeUndefined();
    });

    it("refuses an image whose system mounts a disk the machine does not have, before writing anything", async () => {
        const h = await createHost({ kind: "rescue", disks: [128] });
        const before = await head4MiB(h);
        const err = await hooks.create(await imageInputs(h, "web-two-disks")).catch((e) => e);
        expect(err.message).toMatch(/^facts on root@10\.123\.0\.\d+ failed: the image's system mounts \/dev\/vdb on \/data1, but the machine's disks are \/dev\/vda: it would wait for that device at boot/);
        expect(err.message).toContain("by-partlabel");
        expect(err.properties.phasesCompleted).toEqual([]);
        expect(await head4MiB(h)).toBe(before);
    });

    it("refuses a whole-disk image on an sda machine: disko's image builder named its disk /dev/vda, so it would never boot there", async () => {
        const h = await createHost({ kind: "rescue", disks: [128], diskNames: ["sda"] });
        const before = await h.execOk("head -c 4194304 /dev/sda | sha256sum");
        const err = await hooks.create(await imageInputs(h, "web-sda")).catch((e) => e);
        expect(err.message).toMatch(/^facts on root@10\.123\.0\.\d+ failed: the image's system mounts \/dev\/vda on \/, but the machine's disks are \/dev\/sda: it would wait for that device at boot/);
        expect(await h.execOk("head -c 4194304 /dev/sda | sha256sum")).toBe(before);
    });

    it("reaches the installed system on the port its sshd_config names (services.openssh.ports), the rescue's being 22", async () => {
        const h = await createHost({ kind: "rescue", disks: [128] });
        expect(h.port).toBe(22);
        const { outs } = await hooks.create(await imageInputs(h, "web-sshd-2222"));
        expect(outs.phasesCompleted).toEqual(["write", "install", "reboot"]);
        await h.waitUp();
        expect(h.port).toBe(2222);
        expect(await h.bootKind()).toBe("nixos");
    });

    it("says that the machine came back into its rescue when the rescue mode persists, and completes once the machine boots from its disk", async () => {
        const h = await createHost({ kind: "rescue", disks: [128], rescuePersists: true });
        const inputs = await imageInputs(h, "web");
        const err = await hooks.create(inputs).catch((e) => e);
        // The test bed's rescue, as Hetzner's and OVH's, makes new host keys at every boot.
        expect(err.message).toMatch(/^reboot on root@10\.123\.0\.\d+ failed: the machine came back with a host key that is neither the installed system's \(SHA256:\S+\) nor the one it had before the reboot: it offered SHA256:\S+/);
        expect(err.message).toContain("boot from its disk in the provider's panel");
        expect(err.properties.phasesCompleted).toEqual(["write", "install"]);
        // The panel set to boot from disk, and the machine restarted from there.
        h.bootFromDisk();
        await h.reboot();
        expect(await h.bootKind()).toBe("nixos");
        const { outs } = await hooks.update(err.id, err.properties, inputs);
        expect(outs.phasesCompleted).toEqual(["write", "install", "reboot"]);
        expect(h.hostKey).toBe(outs.hostKey);
    });

    it("says that the machine came back into the system it ran before when a persistent rescue keeps its host key", async () => {
        const h = await createHost({ kind: "rescue", disks: [128], rescuePersists: true, rescueKeepsHostKeys: true });
        const rescueKey = h.hostKey;
        const err = await hooks.create(await imageInputs(h, "web")).catch((e) => e);
        expect(err.message).toMatch(/^reboot on root@10\.123\.0\.\d+ failed: the machine came back into "debian ?" again, the system it ran before the reboot, instead of the installed NixOS/);
        expect(err.message).toContain("boot from its disk in the provider's panel");
        expect(err.properties.phasesCompleted).toEqual(["write", "install"]);
        await h.waitUp();
        expect(await h.bootKind()).toBe("rescue");
        expect(h.hostKey).toBe(rescueKey);
    });
});
