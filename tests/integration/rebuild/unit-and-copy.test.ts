import { beforeAll, describe, expect, it } from "vitest";
import * as hooks from "../../../provider/resources/rebuild";
import { installFixture } from "../../testbed/install";
import { fixtureCopy } from "../../testbed/nix";
import { hostsForThisFile } from "../../testbed/per-file";
import { clientKey } from "../../testbed/state";
import type { Host } from "../../testbed/host";

const createHost = hostsForThisFile();
let dir: string;
beforeAll(() => {
    dir = fixtureCopy();
});
const flake = (name: string) => `path:${dir}/flake#${name}`;

async function installed(): Promise<{ h: Host; base: string; check: (olds: Record<string, unknown>, news: Record<string, unknown>) => Promise<Record<string, any>> }> {
    const h = await createHost({ kind: "installer", disks: [128] });
    const base = await installFixture(h, dir, "web");
    const check = async (olds: Record<string, unknown>, news: Record<string, unknown>) => {
        const r = await hooks.check(olds, { __nixosName: "web", connection: { host: h.address, privateKey: clientKey().privateKey, hostKey: h.hostKey }, confirmTimeout: 5, ...news });
        expect(r.failures ?? []).toEqual([]);
        return r.inputs!;
    };
    return { h, base, check };
}

describe("NixosRebuild under systemd-run as NixOS runs it", () => {
    it("keeps the new system and its profile although the unit's PATH holds only systemd's bin/", async () => {
        const { h, check } = await installed();
        const first = (await hooks.create(await check({}, { flake: flake("web") }))).outs;
        const next = await check(first, { flake: flake("web-bumped") });
        const r = await hooks.update("id", first, next);
        expect(r.outs.currentSystem).toBe(next.toplevel);
        expect((await h.execOk("readlink /run/current-system")).trim()).toBe(next.toplevel);
        expect((await h.execOk("readlink -f /nix/var/nix/profiles/system")).trim()).toBe(next.toplevel);
        // Nothing rolled back: the only activations are the two switches.
        expect((await h.execOk("grep -c ' switch ' /var/lib/testbed/activations.log")).trim()).toBe("2");
    });

    it("passes the unit only what nixos-rebuild passes (-E), besides systemd's PATH", async () => {
        const { h, check } = await installed();
        await hooks.create(await check({}, { flake: flake("web-bumped") }));
        const env = (await h.execOk("cat /run/systemd/transient/pulumi-nixos-*.env")).trim().split("\n");
        expect(env).toContain("PATH=/run/systemd-bin");
        expect(env).toContain("NIXOS_INSTALL_BOOTLOADER=0");
        expect(env.every((l) => /^(PATH|LOCALE_ARCHIVE|NIXOS_INSTALL_BOOTLOADER|NIXOS_NO_CHECK)=/.test(l))).toBe(true);
    });

    it("restores the profile when it rolls back, so the next boot runs the old system, and drops the failed generation", async () => {
        const { h, base, check } = await installed();
        const first = (await hooks.create(await check({}, { flake: flake("web") }))).outs;
        const generation = (await h.execOk("readlink /nix/var/nix/profiles/system")).trim();
        const err = await hooks.update("id", first, await check(first, { flake: flake("web-no-sshd") })).catch((e) => e);
        expect(err.message).toMatch(/rolled back to/);
        expect((await h.execOk("readlink -f /nix/var/nix/profiles/system")).trim()).toBe(base);
        // The same generation as before (the recorded `generation` output stays true), and no other.
        expect((await h.execOk("readlink /nix/var/nix/profiles/system")).trim()).toBe(generation);
        expect((await h.execOk("ls /nix/var/nix/profiles | grep -c '^system-.*-link$'")).trim()).toBe("1");
        expect((await h.execOk("cat /boot/testbed-loader")).trim()).toBe(`default=${base}`);
    });
});

describe("NixosRebuild failures", () => {
    it("keep the system that ran before a failed first deploy, so the next up and onDelete rollback still know it", async () => {
        const { base, check } = await installed();
        const broken = await check({}, { flake: flake("web-no-sshd"), onDelete: "rollback" });
        const err = await hooks.create(broken).catch((e) => e);
        expect(err.message).toMatch(/rolled back to/);
        // Recorded as the resource's state (an init error): the live system, and the one to return to.
        expect(err.id).toMatch(/^[0-9a-f-]{36}$/);
        expect(err.properties).toMatchObject({ initialSystem: base, toplevel: base, currentSystem: base });
        expect(err.properties.hostKey).toMatch(/^ssh-ed25519 /);
        // The next up deploys a fixed configuration over that state and still knows the first system.
        const fixed = await check(err.properties, { flake: flake("web-bumped"), onDelete: "rollback" });
        expect((await hooks.diff(err.id, err.properties, fixed)).changes).toBe(true);
        const { outs } = await hooks.update(err.id, err.properties, fixed);
        expect(outs.initialSystem).toBe(base);
        expect(outs.currentSystem).toBe(fixed.toplevel);
    });
});

describe("NixosRebuild dry-activate", () => {
    it("copies a configuration the target has never seen before dry-activating it, and changes nothing", async () => {
        const { h, base, check } = await installed();
        const inputs = await check({}, { flake: flake("web-swapped"), action: "dry-activate" });
        expect((await h.exec(`nix-store --check-validity ${inputs.toplevel}`)).code).not.toBe(0);
        const { outs } = await hooks.create(inputs);
        expect(outs.activationOutput).toContain(`would activate the configuration ${inputs.toplevel}`);
        expect((await h.execOk("readlink /run/current-system")).trim()).toBe(base);
        expect((await h.execOk("readlink -f /nix/var/nix/profiles/system")).trim()).toBe(base);
    });
});
