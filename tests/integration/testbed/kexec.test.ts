import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import type { Host } from "../../testbed/host";
import { hostsForThisFile } from "../../testbed/per-file";
import { buildKexecTarball, KexecImageOptions } from "../../testbed/kexec";
import { sshRun, sshTo } from "../../testbed/ssh";

const createHost = hostsForThisFile();
/** Uploads an image to the host and starts it the way nixos-anywhere does; returns run's output. */
async function kexecInto(h: Host, image: KexecImageOptions = {}, login: Parameters<typeof sshTo>[1] = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
    const tarball = buildKexecTarball(fs.mkdtempSync(path.join(os.tmpdir(), "pnx-kexec-")), image);
    const c = await sshTo(h, login);
    try {
        const up = await c.exec("mkdir -p /root/kexec && tar -C /root/kexec -xzf - --strip-components=1 && ls /root/kexec", { stdin: fs.readFileSync(tarball) });
        expect(up.code).toBe(0);
        return await c.exec("/root/kexec/run");
    } finally {
        c.close();
    }
}

describe("kexec on a test host", () => {
    it("turns a Debian host into a NixOS installer that keeps root's keys, its old host key, its address and its disks", async () => {
        const h = await createHost({ disks: [32] });
        const oldKey = h.hostKey;
        expect(await h.execOk(". /etc/os-release; echo $ID")).toBe("debian\n");
        const boots = h.bootCount();
        const r = await kexecInto(h);
        expect(r.code).toBe(0);
        expect(r.stdout).toContain("machine will boot into nixos");
        await h.waitForReboot(boots);
        expect(await h.bootKind()).toBe("installer");
        const os_ = await sshRun(h, ". /etc/os-release; echo $ID $VARIANT_ID; ls /dev | grep vd; ls /nix/store | wc -l", { pin: h.hostKey });
        expect(os_.stdout).toBe("nixos installer\nvda\n0\n");
        // nixos-images' image carries the old host keys.
        expect(h.hostKey).toBe(oldKey);
    });

    it("has new host keys when the image is built not to carry them, and listens on the image's SSH port", async () => {
        const h = await createHost();
        const oldKey = h.hostKey;
        const boots = h.bootCount();
        expect((await kexecInto(h, { carryHostKeys: false, sshPort: 2222 })).code).toBe(0);
        await h.waitForReboot(boots);
        expect(h.port).toBe(2222);
        expect(h.hostKey).not.toBe(oldKey);
        expect((await sshRun(h, "true", { port: 2222 })).code).toBe(0);
    });

    it("boots an installer nobody can log into when the host has no authorized_keys file, and never refuses", async () => {
        const h = await createHost({ authorizedKeys: [], rootPassword: "root-pw-8" });
        const boots = h.bootCount();
        const r = await kexecInto(h, {}, { password: "root-pw-8" });
        expect(r.code).toBe(0);
        await h.waitForReboot(boots);
        expect(await h.bootKind()).toBe("installer");
        expect((await h.execOk("wc -c < /root/.ssh/authorized_keys")).trim()).toBe("0");
        await expect(sshRun(h, "true", { password: "root-pw-8" })).rejects.toThrow(/authentication methods failed/);
        await expect(sshRun(h, "true")).rejects.toThrow(/authentication methods failed/);
    });

    it("kexecs 6 s after returning, and the old system answers until then", async () => {
        const h = await createHost();
        const boots = h.bootCount();
        const t0 = Date.now();
        expect((await kexecInto(h)).code).toBe(0);
        expect((await sshRun(h, "cat /run/testbed/boot-kind")).stdout).toBe("debian\n");
        await h.waitForReboot(boots);
        expect(Date.now() - t0).toBeGreaterThanOrEqual(5000);
    });

    it("accepts `kexec -l` of the image's kernel and initrd, then `kexec -e`, returning 0 before going down", async () => {
        const h = await createHost();
        const tarball = buildKexecTarball(fs.mkdtempSync(path.join(os.tmpdir(), "pnx-kexec-")));
        const c = await sshTo(h);
        await c.exec("mkdir -p /root/k && tar -C /root/k -xzf -", { stdin: fs.readFileSync(tarball) });
        const notLoaded = await c.exec("kexec -e");
        expect(notLoaded.code).not.toBe(0);
        expect(notLoaded.stderr).toContain("Nothing has been loaded");
        expect((await c.exec("kexec -l /root/k/kexec/bzImage --initrd=/root/k/kexec/initrd")).code).toBe(0);
        const boots = h.bootCount();
        expect((await c.exec("kexec -e")).code).toBe(0);
        c.close();
        await h.waitForReboot(boots);
        expect(await h.bootKind()).toBe("installer");
    });

    it("fails like the real image when it is too big for the host's RAM: the host never comes back until power-cycled", async () => {
        const h = await createHost({ memMiB: 512 });
        const boots = h.bootCount();
        expect((await kexecInto(h, { unpackedMiB: 900 })).code).toBe(0);
        const deadline = Date.now() + 10_000;
        while (h.state() !== "panicked" && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
        expect(h.state()).toBe("panicked");
        expect(fs.readFileSync(path.join(h.dir, "console.log"), "utf8")).toContain("Failure unpacking initrd");
        await expect(sshRun(h, "true")).rejects.toThrow();
        expect(h.bootCount()).toBe(boots);
        await h.powerCycle();
        expect(await h.bootKind()).toBe("debian");
    });
});
