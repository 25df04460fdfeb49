import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Host, waitForSsh } from "../../testbed/host";
import { hostsForThisFile } from "../../testbed/per-file";
import { copyClosure, installFixture } from "../../testbed/install";
import { buildFixture, fixtureCopy, nix } from "../../testbed/nix";
import { sshRun, sshTo } from "../../testbed/ssh";

const host = hostsForThisFile();
let dir: string;
beforeAll(() => {
    dir = fixtureCopy();
});
afterAll(() => {
    fs.rmSync(dir, { recursive: true, force: true });
});

async function activations(h: Host): Promise<string[][]> {
    const log = await h.exec("cat /var/lib/testbed/activations.log");
    return log.stdout.trim().split("\n").filter(Boolean).map((l) => l.split(" ").slice(1));
}

describe("fixture systems", () => {
    it("have the real top-level shape", async () => {
        const top = await buildFixture(dir, "web");
        for (const f of ["bin/switch-to-configuration", "nixos-version", "init", "kernel", "initrd", "sw/bin/hello"]) {
            expect(fs.existsSync(path.join(top, f)), f).toBe(true);
        }
        expect(path.basename(top)).toMatch(/^[a-z0-9]{32}-nixos-system-web-25\.05/);
    });

    it("differ by one package version between web and web-bumped, as diff-closures sees it", async () => {
        const a = await buildFixture(dir, "web");
        const b = await buildFixture(dir, "web-bumped");
        expect(await nix(["store", "diff-closures", a, b])).toContain("hello: 2.12.1 → 2.12.2");
    });

    it("build through the stand-in <nixpkgs/nixos> without a flake", async () => {
        const out = await nix(
            ["--no-out-link", "<nixpkgs/nixos>", "-A", "config.system.build.toplevel", "-I", `nixos-config=${dir}/non-flake/configuration.nix`, "-I", `nixpkgs=${dir}/nixpkgs`],
            {},
            "nix-build",
        );
        expect(out.trim()).toMatch(/-nixos-system-legacy-/);
    });
});

describe("nix copy to a test host", () => {
    it("lands in that host's store only", async () => {
        const [a, b] = await Promise.all([host(), host()]);
        const top = await buildFixture(dir, "web");
        await copyClosure(a, top);
        expect((await a.exec(`nix-store --check-validity ${top} && test -x ${top}/bin/switch-to-configuration`)).code).toBe(0);
        expect((await b.exec(`nix-store --check-validity ${top}`)).code).not.toBe(0);
        expect((await b.exec(`ls /nix/store | wc -l`)).stdout.trim()).toBe("0");
    });
});

describe("disko fixture scripts", () => {
    it("destroy, format and mount the host's disks at /mnt; format keeps an existing file system; mount only mounts", async () => {
        const h = await host({ kind: "installer", disks: [64, 64] });
        const disko = await buildFixture(dir, "web-two-disks", "diskoScript");
        const format = await buildFixture(dir, "web-two-disks", "formatScript");
        const mount = await buildFixture(dir, "web-two-disks", "mountScript");
        for (const p of [disko, format, mount]) await copyClosure(h, p);
        const r = await sshRun(h, `${disko} && findmnt -n -l -o SOURCE,TARGET -R /mnt && echo data > /mnt/data1/f && umount -R /mnt`);
        expect(r.code).toBe(0);
        expect(r.stdout).toContain("/dev/vda /mnt");
        expect(r.stdout).toContain("/dev/vdb /mnt/data1");
        const f = await sshRun(h, `${format} && ${mount} && cat /mnt/data1/f`);
        expect(f.stdout).toContain("already has a file system; keeping it");
        expect(f.stdout.trim().endsWith("data")).toBe(true);
    });
});

describe("an installed fixture system", () => {
    let h: Host;
    let toplevel: string;
    beforeAll(async () => {
        h = await host({ kind: "installer", disks: [128] });
        await h.execOk("mkdir -p /mnt/etc/ssh && true");
        toplevel = await installFixture(h, dir, "web");
    });

    it("boots after nixos-install: /run/current-system is the toplevel and os-release says NixOS", async () => {
        expect(await h.bootKind()).toBe("nixos");
        const r = await sshRun(h, ". /etc/os-release; echo $ID $VARIANT_ID; readlink /run/current-system; readlink -f /nix/var/nix/profiles/system; hello");
        expect(r.stdout).toBe(`nixos\n${toplevel}\n${toplevel}\nhello 2.12.1\n`);
        expect((await activations(h))[0]).toEqual(["install", toplevel]);
    });

    it("records switch, boot and test, and moves /run/current-system and the boot loader as NixOS does", async () => {
        const bumped = await buildFixture(dir, "web-bumped");
        await copyClosure(h, bumped);
        const c = await sshTo(h);
        try {
            expect((await c.exec(`${bumped}/bin/switch-to-configuration test`)).code).toBe(0);
            expect((await c.exec("readlink /run/current-system; sed -n s/default=//p /boot/testbed-loader")).stdout).toBe(`${bumped}\n${toplevel}\n`);
            expect((await c.exec(`${toplevel}/bin/switch-to-configuration switch`)).code).toBe(0);
            expect((await c.exec(`${bumped}/bin/switch-to-configuration boot`)).code).toBe(0);
            expect((await c.exec("readlink /run/current-system; sed -n s/default=//p /boot/testbed-loader")).stdout).toBe(`${toplevel}\n${bumped}\n`);
            const dry = await c.exec(`${bumped}/bin/switch-to-configuration dry-activate`);
            expect(dry.stdout).toContain("would restart the following units");
        } finally {
            c.close();
        }
        expect((await activations(h)).slice(-3)).toEqual([
            ["test", bumped],
            ["switch", toplevel],
            ["boot", bumped],
        ]);
        // boot takes effect on the next boot only
        await h.reboot();
        expect((await h.execOk("readlink /run/current-system")).trim()).toBe(bumped);
    });

    it("exits 4 naming the failed units, fails before changing anything when activation breaks, and can stop sshd", async () => {
        const failed = await buildFixture(dir, "web-failed-units");
        const broken = await buildFixture(dir, "web-broken");
        const noSshd = await buildFixture(dir, "web-no-sshd");
        for (const p of [failed, broken, noSshd]) await copyClosure(h, p);
        const good = (await h.execOk("readlink /run/current-system")).trim();
        const r4 = await sshRun(h, `${failed}/bin/switch-to-configuration switch`);
        expect(r4.code).toBe(4);
        expect(r4.stderr).toContain("the following units failed: demo.service");
        const before = (await h.execOk("readlink /run/current-system")).trim();
        const r1 = await sshRun(h, `${broken}/bin/switch-to-configuration switch`);
        expect(r1.code).toBe(1);
        expect((await h.execOk("readlink /run/current-system")).trim()).toBe(before);
        // A switch that stops sshd, started detached so the session's end cannot kill it.
        const r = await sshRun(h, `systemd-run --unit=deploy-test --collect --pipe ${noSshd}/bin/switch-to-configuration switch`);
        expect(r.code).toBe(0);
        await expect(sshRun(h, "true")).rejects.toThrow();
        // Re-activating the previous system from inside brings sshd back. Its unit counts as started
        // before it listens, as a Type=simple unit does, so the test waits for the port.
        await h.execOk(`${good}/bin/switch-to-configuration switch`);
        await waitForSsh(h.address, h.port, 10_000);
        expect((await sshRun(h, "echo back")).stdout).toBe("back\n");
    });

    it("keeps host keys placed in /mnt/etc/ssh by the installer", async () => {
        const g = await host({ kind: "installer", disks: [128] });
        await g.execOk("mkdir -p /tmp/k && ssh-keygen -q -t ed25519 -N '' -f /tmp/k/ssh_host_ed25519_key");
        const planted = (await g.execOk("cut -d' ' -f1-2 /tmp/k/ssh_host_ed25519_key.pub")).trim();
        const disko = await buildFixture(dir, "web", "diskoScript");
        const top = await buildFixture(dir, "web");
        await copyClosure(g, disko);
        await g.execOk(disko);
        await g.execOk("mkdir -p /mnt/etc/ssh && cp -p /tmp/k/ssh_host_ed25519_key* /mnt/etc/ssh/");
        await copyClosure(g, top, true);
        await g.execOk(`nixos-install --system ${top} --no-root-passwd --no-channel-copy`);
        const boots = g.bootCount();
        await sshRun(g, "reboot");
        await g.waitForReboot(boots);
        expect(g.hostKey).toBe(planted);
        expect((await sshRun(g, "true", { pin: planted })).code).toBe(0);
    });
});

describe("systemd-run stand-in", () => {
    it("keeps the unit running when the SSH session that started it drops", async () => {
        const h = await host();
        const c = await sshTo(h);
        const pending = c.exec("systemd-run --unit=slow --pipe sh -c '/bin/sleep 1.5; echo finished > /root/unit-done'").catch(() => undefined);
        await new Promise((r) => setTimeout(r, 300));
        c.close();
        await pending;
        await new Promise((r) => setTimeout(r, 2000));
        expect(await h.execOk("cat /root/unit-done")).toBe("finished\n");
    });
});
