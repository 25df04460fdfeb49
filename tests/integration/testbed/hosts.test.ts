import { describe, expect, it } from "vitest";
import { hostsForThisFile } from "../../testbed/per-file";
import { sshRun, sshTo } from "../../testbed/ssh";
import { HostKeyMismatchError } from "../../../provider/ssh/connection";
import { fingerprint, parseHostKey } from "../../../provider/ssh/hostkey";

const host = hostsForThisFile();
describe("a test host", () => {
    it("boots and answers SSH as root with the host key it reports", async () => {
        const h = await host({ name: "alpha" });
        const r = await sshRun(h, "hostname; id -u");
        expect(r.code).toBe(0);
        expect(r.stdout).toBe("alpha\n0\n");
        expect(h.hostKey).toMatch(/^ssh-ed25519 AAAA/);
    });

    it("is isolated: no default route, none of the machine's disks, an empty private /nix, a cache-free nix.conf", async () => {
        const h = await host();
        const out = await h.execOk("ip route; echo ---; ls /dev; echo ---; ls /nix/store 2>/dev/null | wc -l; echo ---; cat /etc/nix/nix.conf; echo ---; ls -A /root");
        const [routes, dev, store, nixConf, root] = out.split("---\n");
        expect(routes).not.toMatch(/default/);
        expect(routes).toMatch(/10\.123\.0\.0\/24/);
        expect(dev.split("\n")).not.toContain("vda");
        expect(dev).not.toMatch(/loop|sd[a-z]|nvme/);
        expect(store.trim()).toBe("0");
        expect(nixConf).toMatch(/^substituters =\s*$/m);
        expect(root.trim()).toBe(".ssh");
    });

    it("gets a fresh boot_id on every boot and keeps its host key across plain reboots", async () => {
        const h = await host();
        const id1 = (await h.execOk("cat /proc/sys/kernel/random/boot_id")).trim();
        const key1 = h.hostKey;
        await h.reboot();
        const id2 = (await h.execOk("cat /proc/sys/kernel/random/boot_id")).trim();
        expect(id2).not.toBe(id1);
        expect(h.hostKey).toBe(key1);
        expect(h.bootCount()).toBe(2);
    });

    it.each(["reboot", "systemctl reboot", "shutdown -r now"])("'%s' over SSH returns 0 first, then the host goes down and comes back", async (cmd) => {
        const h = await host();
        const boots = h.bootCount();
        const before = (await h.execOk("cat /proc/sys/kernel/random/boot_id")).trim();
        const r = await sshRun(h, cmd);
        expect(r.code).toBe(0);
        await h.waitForReboot(boots);
        expect((await h.execOk("cat /proc/sys/kernel/random/boot_id")).trim()).not.toBe(before);
    });

    it("drops open SSH sessions when it reboots", async () => {
        const h = await host();
        const conn = await sshTo(h);
        const closed = new Promise<string>((resolve) => {
            conn.client.on("close", () => resolve("closed"));
            conn.client.on("error", () => resolve("closed"));
        });
        const boots = h.bootCount();
        const pending = conn.exec("sleep 30; echo survived");
        await h.reboot({ wait: false });
        expect(await closed).toBe("closed");
        const r = await Promise.race([pending.catch(() => undefined), new Promise((r) => setTimeout(() => r("timeout"), 5000))]);
        expect(r === undefined || (typeof r === "object" && (r as any).stdout === "")).toBe(true);
        await h.waitForReboot(boots);
    });

    it("comes back with new host keys that ssh2's host verification refuses, naming both fingerprints", async () => {
        const h = await host();
        const oldKey = h.hostKey;
        await h.reboot({ newKeys: true });
        expect(h.hostKey).not.toBe(oldKey);
        const err = await sshTo(h, { pin: oldKey }).then(
            (c) => { c.close(); return undefined; },
            (e) => e,
        );
        expect(err).toBeInstanceOf(HostKeyMismatchError);
        expect(err.message).toContain(fingerprint(parseHostKey(oldKey).blob));
        expect(err.message).toContain(fingerprint(parseHostKey(h.hostKey).blob));
        // The new key, once pinned, is accepted.
        expect((await sshRun(h, "true", { pin: h.hostKey })).code).toBe(0);
    });

    it("powers off and on, keeping its disk layer", async () => {
        const h = await host();
        await h.execOk("echo kept > /etc/marker");
        await h.powerOff();
        expect(h.initPid()).toBeUndefined();
        await h.powerOn();
        expect(await h.execOk("cat /etc/marker")).toBe("kept\n");
    });

    it("offers an extra user with passwordless sudo", async () => {
        const h = await host({ extraUser: { name: "deploy" } });
        const r = await sshRun(h, "id -un; sudo -n id -u", { user: "deploy" });
        expect(r.stdout).toBe("deploy\n0\n");
    });

    it("offers an extra user whose sudo asks for the password, and password logins", async () => {
        const pw = "correct horse 42";
        const h = await host({ extraUser: { name: "ops", password: pw } });
        const noPw = await sshRun(h, "sudo -n true", { user: "ops" });
        expect(noPw.code).not.toBe(0);
        expect(noPw.stderr).toMatch(/password is required/);
        const c = await sshTo(h, { user: "ops", password: pw });
        const r = await c.exec("sudo -S -p '' id -u", { stdin: pw + "\n" });
        c.close();
        expect(r.stdout).toBe("0\n");
    });

    it("accepts root password logins when given a root password", async () => {
        const h = await host({ rootPassword: "hunter2-but-longer" });
        expect((await sshRun(h, "id -u", { password: "hunter2-but-longer" })).stdout).toBe("0\n");
    });

    it("can lack Nix, or other commands", async () => {
        const h = await host({ nix: false, removeCommands: ["tar", "cpio"] });
        const r = await h.exec("command -v nix; command -v nix-store; command -v tar; command -v cpio; command -v sh");
        expect(r.stdout.trim()).toBe("/usr/bin/sh");
    });

    it("reports the RAM it was given in /proc/meminfo", async () => {
        const h = await host({ memMiB: 768 });
        expect(await h.execOk("awk '/^MemTotal:/ {print $2}' /proc/meminfo")).toBe(`${768 * 1024}\n`);
    });
});

describe("many test hosts", () => {
    it("boot 10 in parallel, each with its own address and host key", async () => {
        const ten = await Promise.all(Array.from({ length: 10 }, (_, i) => host({ name: `par${i}` })));
        const names = await Promise.all(ten.map((h) => sshRun(h, "hostname").then((r) => r.stdout.trim())));
        expect(names).toEqual(ten.map((_, i) => `par${i}`));
        expect(new Set(ten.map((h) => h.address)).size).toBe(10);
        expect(new Set(ten.map((h) => h.hostKey)).size).toBe(10);
    });
});
