/**
 * Inputs that cannot work are refused before anything changes: the machine is not kexec'd, not
 * rebooted, and its disk keeps what it had. (Inputs known bad from their values alone are refused
 * earlier, at check(): tests/unit/resources/check.test.ts.)
 */
import { beforeAll, describe, expect, it } from "vitest";
import * as hooks from "../../../provider/resources/install";
import type { Host } from "../../testbed/host";
import { installFixture } from "../../testbed/install";
import { fixtureCopy } from "../../testbed/nix";
import { hostsForThisFile } from "../../testbed/per-file";
import { checked, connectionTo } from "./helpers";

const createHost = hostsForThisFile();
let dir: string;
beforeAll(() => {
    dir = fixtureCopy();
});

/** A Debian host whose disk carries a marker, and a check that nothing changed. */
async function debianWithData(): Promise<{ h: Host; untouched: () => Promise<void> }> {
    const h = await createHost({ disks: [64] });
    await h.execOk("echo precious-data | dd of=/dev/vda conv=notrunc status=none");
    const boots = h.bootCount();
    return {
        h,
        untouched: async () => {
            expect(h.bootCount()).toBe(boots);
            expect(await h.bootKind()).toBe("debian");
            expect(await h.execOk("head -c 14 /dev/vda")).toBe("precious-data\n");
            expect((await h.exec("test -e /root/kexec")).code).not.toBe(0);
        },
    };
}

describe("NixosInstall refuses before anything changes", () => {
    it.each([
        ["store paths missing from the local store", { storePaths: { toplevel: "/nix/store/00000000000000000000000000000000-nixos-system-gone" } }, /^build on localhost failed: \/nix\/store\/0+-nixos-system-gone is not in the local Nix store/],
        ["a reboot with nothing installed", { flake: "FLAKE#web", phases: ["reboot"] }, /^facts on \S+ failed: the phases ask for a reboot, but nothing was installed to reboot into/],
    ] as [string, Record<string, unknown>, RegExp][])("%s", async (_t, change, message) => {
        const { h, untouched } = await debianWithData();
        const news = JSON.parse(JSON.stringify(change).replace("FLAKE", `path:${dir}/flake`));
        const err = await hooks.create(await checked({ connection: connectionTo(h), ...news })).catch((e) => e);
        expect(err.message).toMatch(message);
        expect(err.properties.phasesCompleted).toEqual([]);
        await untouched();
    });

    it("a machine that already runs an installed NixOS, before any kexec", async () => {
        const h = await createHost({ kind: "installer", disks: [128] });
        const base = await installFixture(h, dir, "web");
        const boots = h.bootCount();
        const err = await hooks.create(await checked({ connection: connectionTo(h), flake: `path:${dir}/flake#web-bumped` })).catch((e) => e);
        expect(err.message).toMatch(/^facts on \S+ failed: the machine already runs an installed NixOS \(\/nix\/store\/\S+\); the disko phase would wipe it/);
        expect(h.bootCount()).toBe(boots);
        expect((await h.execOk("readlink /run/current-system")).trim()).toBe(base);
    });
});
