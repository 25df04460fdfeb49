import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as hooks from "../../../provider/resources/rebuild";
import { createHost, Host } from "../../testbed/host";
import { installFixture } from "../../testbed/install";
import { buildFixture, fixtureCopy } from "../../testbed/nix";
import { sshRun } from "../../testbed/ssh";
import { clientKey } from "../../testbed/state";

let dir: string;
let h: Host;
let base: string;
beforeAll(async () => {
    dir = fixtureCopy();
    h = await createHost({ kind: "installer", disks: [128] });
    base = await installFixture(h, dir, "web");
});
afterAll(async () => {
    await h?.destroy();
});

const conn = () => ({ host: h.address, privateKey: clientKey().privateKey, hostKey: h.hostKey });
const flake = (name: string) => `path:${dir}/flake#${name}`;
async function live(): Promise<string> {
    return (await h.execOk("readlink /run/current-system")).trim();
}
async function profile(): Promise<string> {
    return (await h.execOk("readlink -f /nix/var/nix/profiles/system")).trim();
}
async function checked(olds: Record<string, unknown>, news: Record<string, unknown>) {
    const r = await hooks.check(olds, { __nixosName: "web", connection: conn(), confirmTimeout: 5, ...news });
    expect(r.failures ?? []).toEqual([]);
    return r.inputs!;
}

/**
 * Each test's own starting point, whatever ran before it on the shared machine: a first deploy
 * (create) of `name`, whose state the test then works from.
 */
async function deployed(name = "web-bumped") {
    return (await hooks.create(await checked({}, { flake: flake(name) }))).outs;
}

describe("NixosRebuild hooks", () => {
    it("adopts the installed machine and shows the version bump in the preview inputs before switching to it", async () => {
        await h.execOk(`${base}/bin/switch-to-configuration switch`);
        const first = await checked({}, { flake: flake("web") });
        let state = (await hooks.create(first)).outs;
        expect(state.currentSystem).toBe(base);
        expect(state.initialSystem).toBe(base);
        const next = await checked(state, { flake: flake("web-bumped") });
        expect(next.packageChanges).toContain("hello: 2.12.1 → 2.12.2");
        expect((await hooks.diff("id", state, next)).changes).toBe(true);
        state = (await hooks.update("id", state, next)).outs;
        expect(await live()).toBe(next.toplevel);
        expect(await profile()).toBe(next.toplevel);
        expect((await sshRun(h, "hello")).stdout).toBe("hello 2.12.2\n");
    });

    it("rolls back when the new system stops sshd: no new connection confirms it", async () => {
        const state = await deployed();
        const before = await live();
        const next = await checked(state, { flake: flake("web-no-sshd") });
        const err = await hooks.update("id", state, next).catch((e) => e);
        expect(err.message).toMatch(/did not accept a new SSH connection within 5 s.*rolled back to/s);
        expect(await live()).toBe(before);
        expect(await profile()).toBe(before);
        expect((await sshRun(h, "echo in")).stdout).toBe("in\n");
    });

    it("fails on units that failed (exit 4), naming them, and rolls back", async () => {
        const state = await deployed();
        const before = await live();
        const next = await checked(state, { flake: flake("web-failed-units") });
        const err = await hooks.update("id", state, next).catch((e) => e);
        expect(err.message).toMatch(/exited 4: units failed: demo\.service; rolled back/);
        expect(await live()).toBe(before);
    });

    it("rolls back when a health check fails", async () => {
        const state = await deployed();
        const before = await live();
        const next = await checked(state, { flake: flake("web-swapped"), healthChecks: [{ command: "test -x /run/current-system/sw/bin/hello" }] });
        const err = await hooks.update("id", state, next).catch((e) => e);
        expect(err.message).toMatch(/health check `test -x \/run\/current-system\/sw\/bin\/hello` exited 1.*rolled back/s);
        expect(await live()).toBe(before);
    });

    it("boot sets the profile without activating; test activates without touching the profile; dry-activate changes nothing", async () => {
        const state = await deployed("web");
        const before = await live();
        const swapped = await buildFixture(dir, "web-swapped");
        const boot = await hooks.update("id", state, await checked(state, { flake: flake("web-swapped"), action: "boot" }));
        expect(await live()).toBe(before);
        expect(await profile()).toBe(swapped);
        await hooks.update("id", state, await checked(state, { flake: flake("web"), action: "boot" }));
        const t = await hooks.update("id", boot.outs, await checked(boot.outs, { flake: flake("web-swapped"), action: "test" }));
        expect(t.outs.currentSystem).toBe(swapped);
        expect(await profile()).toBe(base);
        const dry = await hooks.update("id", t.outs, await checked(t.outs, { flake: flake("web-bumped"), action: "dry-activate" }));
        expect(dry.outs.activationOutput).toContain("would activate the configuration");
        expect(await live()).toBe(swapped);
        expect(await profile()).toBe(base);
    });

    it("reports a system changed by hand as drift on refresh", async () => {
        const state = await deployed();
        await h.execOk(`${base}/bin/switch-to-configuration test`);
        const r = await hooks.read("id", state);
        expect(r.props.toplevel).toBe(base);
        const next = await checked(r.props, { flake: flake("web-swapped"), action: "test" });
        expect((await hooks.diff("id", r.props, next)).changes).toBe(true);
    });

    it("keeps only the newest generations when keepGenerations is set, and reports the generation", async () => {
        const state = await deployed("web");
        const gens = async () => (await h.execOk("ls /nix/var/nix/profiles | grep -c '^system-.*-link$'")).trim();
        expect(Number(await gens())).toBeGreaterThan(1);
        const before = await live();
        const r = await hooks.update("id", state, await checked(state, { flake: flake("web-bumped"), keepGenerations: 1 }));
        expect(await gens()).toBe("1");
        expect(r.outs.generation).toBe(Number((await h.execOk("readlink /nix/var/nix/profiles/system")).match(/system-(\d+)-link/)![1]));
        expect(r.outs.previousToplevel).toBe(before);
    });

    it("reboots into a new kernel with rebootOnKernelChange, checking the boot, and switches without a reboot otherwise", async () => {
        const state = await deployed();
        const bootedKernel = async () => (await h.execOk("readlink -f /run/booted-system/kernel")).trim();
        const boots = h.bootCount();
        // Same kernel: no reboot even when asked.
        const same = await hooks.update("id", state, await checked(state, { flake: flake("web"), rebootOnKernelChange: true }));
        expect(h.bootCount()).toBe(boots);
        expect(same.outs.bootId).toBe(state.bootId);
        // Newer kernel, not asked: switched, still on the old kernel.
        const noReboot = await hooks.update("id", same.outs, await checked(same.outs, { flake: flake("web-new-kernel") }));
        expect(h.bootCount()).toBe(boots);
        expect(await bootedKernel()).toMatch(/-linux-6\.6\.60\/bzImage$/);
        // Back, then forward again asking for the reboot.
        const back = await hooks.update("id", noReboot.outs, await checked(noReboot.outs, { flake: flake("web-bumped") }));
        const rebooted = await hooks.update("id", back.outs, await checked(back.outs, { flake: flake("web-new-kernel"), rebootOnKernelChange: true }));
        expect(h.bootCount()).toBe(boots + 1);
        expect(await bootedKernel()).toMatch(/-linux-6\.6\.61\/bzImage$/);
        expect(await live()).toBe(rebooted.outs.toplevel);
        expect(rebooted.outs.bootId).toBe((await h.execOk("cat /proc/sys/kernel/random/boot_id")).trim());
        expect(rebooted.outs.bootId).not.toBe(state.bootId);
    });

    it("refuses a machine whose host key changed, before running anything", async () => {
        const state = await deployed();
        // Another system, so update deploys (a changed connection alone is only stored).
        const next = await checked(state, { flake: flake("web"), connection: { ...conn(), hostKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl" } });
        const err = await hooks.update("id", state, next).catch((e) => e);
        expect(err.message).toMatch(/the host key does not match: expected SHA256:\S+, the host offered SHA256:\S+/);
    });
});

describe("NixosRebuild as another user", () => {
    it("switches with magic rollback through sudo that asks for connection.password, and rolls back through it too", async () => {
        const u = await createHost({ kind: "installer", disks: [128], extraUser: { name: "ops", password: "ops-sudo-pw-6" } });
        try {
            await installFixture(u, dir, "web");
            const connection = { host: u.address, user: "ops", privateKey: clientKey().privateKey, password: "ops-sudo-pw-6", hostKey: u.hostKey };
            const check = async (olds: Record<string, unknown>, news: Record<string, unknown>) => {
                const r = await hooks.check(olds, { __nixosName: "ops", connection, confirmTimeout: 5, ...news });
                expect(r.failures ?? []).toEqual([]);
                return r.inputs!;
            };
            const first = (await hooks.create(await check({}, { flake: flake("web") }))).outs;
            const next = await check(first, { flake: flake("web-bumped"), healthChecks: [{ command: "test -r /etc/sudoers.d/ops" }] });
            const bumped = (await hooks.update("id", first, next)).outs;
            expect((await u.execOk("readlink /run/current-system")).trim()).toBe(next.toplevel);
            const err = await hooks.update("id", bumped, await check(bumped, { flake: flake("web-swapped"), healthChecks: [{ command: "test -x /run/current-system/sw/bin/hello" }] })).catch((e) => e);
            expect(err.message).toMatch(/health check .* exited 1.*rolled back/s);
            expect(err.message).not.toContain("ops-sudo-pw-6");
            expect((await u.execOk("readlink /run/current-system")).trim()).toBe(next.toplevel);
        } finally {
            await u.destroy();
        }
    });
});
