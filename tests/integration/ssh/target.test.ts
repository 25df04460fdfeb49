import { Readable } from "node:stream";
import { describe, expect, it } from "vitest";
import { HostKeyMismatchError } from "../../../provider/ssh/connection";
import { sh } from "../../../provider/ssh/shell";
import { Target } from "../../../provider/ssh/target";
import { hostsForThisFile } from "../../testbed/per-file";
import { clientKey } from "../../testbed/state";

const host = hostsForThisFile();
describe("Target over ssh2", () => {
    it("reaches a host through a bastion, verifying both host keys", async () => {
        const [bastion, inner] = await Promise.all([host({ name: "bastion" }), host({ name: "inner" })]);
        const t = new Target({
            host: inner.address,
            privateKey: clientKey().privateKey,
            hostKey: inner.hostKey,
            proxy: { host: bastion.address, privateKey: clientKey().privateKey, hostKey: bastion.hostKey },
        });
        const r = await t.run(sh`hostname`, { phase: "test" });
        t.close();
        expect(r.stdout).toBe("inner\n");
        const wrong = new Target({ host: inner.address, privateKey: clientKey().privateKey, proxy: { host: bastion.address, privateKey: clientKey().privateKey, hostKey: inner.hostKey } });
        await expect(wrong.run(sh`true`, { phase: "test" })).rejects.toBeInstanceOf(HostKeyMismatchError);
    });

    it("runs commands as root through passwordless sudo for another user", async () => {
        const h = await host({ extraUser: { name: "deploy" } });
        const t = new Target({ host: h.address, user: "deploy", privateKey: clientKey().privateKey, hostKey: h.hostKey });
        const r = await t.run(sh`id -u; whoami`, { phase: "test" });
        t.close();
        expect(r.stdout).toBe("0\nroot\n");
    });

    it("gives sudo connection.password on stdin when sudo asks for one, keeping the command's own stdin intact", async () => {
        const h = await host({ extraUser: { name: "ops", password: "ops-password-1" } });
        const t = new Target({ host: h.address, user: "ops", password: "ops-password-1", hostKey: h.hostKey });
        expect((await t.run(sh`id -u`, { phase: "test" })).stdout).toBe("0\n");
        expect((await t.run(sh`cat`, { phase: "test", stdin: "line one\nline two\n" })).stdout).toBe("line one\nline two\n");
        expect((await t.run(sh`wc -c`, { phase: "test", stdin: Readable.from([Buffer.alloc(70000, 1), Buffer.alloc(5, 2)]) })).stdout.trim()).toBe("70005");
        t.close();
        // With a key login and no password known, the error says what to do.
        const keyOnly = new Target({ host: h.address, user: "ops", privateKey: clientKey().privateKey, hostKey: h.hostKey });
        const err = await keyOnly.run(sh`true`, { phase: "test" }).catch((e) => e);
        keyOnly.close();
        expect(err.message).toMatch(/^test on ops@\S+ failed: .*exited 1/);
        expect(err.message).toMatch(/hint: ops needs passwordless sudo on the target, or set connection.password to the sudo password/);
        // A wrong password is refused without being echoed anywhere.
        const wrong = new Target({ host: h.address, user: "ops", privateKey: clientKey().privateKey, password: "not-the-password-3", hostKey: h.hostKey });
        const bad = await wrong.run(sh`true`, { phase: "test" }).catch((e) => e);
        wrong.close();
        expect(bad.message).toMatch(/sudo refused connection.password for ops/);
        expect(bad.message).not.toContain("not-the-password-3");
    });

    it("logs in with a password", async () => {
        const h = await host({ rootPassword: "root-password-2" });
        const t = new Target({ host: h.address, password: "root-password-2", hostKey: h.hostKey });
        expect((await t.run(sh`id -u`, { phase: "test" })).stdout).toBe("0\n");
        t.close();
    });
});

describe("systemd-run stand-in", () => {
    it("returns at once without --pipe, like systemd-run, while the unit keeps running", async () => {
        const h = await host();
        // Absolute paths: a unit's PATH holds only systemd's bin/, as on NixOS.
        await h.execOk("systemd-run --unit=bg --collect --quiet sh -c '/bin/sleep 2; /usr/bin/touch /root/bg-done'");
        // Returned before the unit finished, and the unit finishes on its own afterwards.
        expect((await h.exec("test -e /root/bg-done")).code).not.toBe(0);
        expect((await h.exec("for i in $(seq 100); do [ -e /root/bg-done ] && exit 0; sleep 0.1; done; exit 1")).code).toBe(0);
    });

    it("gives the unit systemd's PATH and only the variables -E passes, as on NixOS", async () => {
        const h = await host();
        const r = await h.exec("FOO=from-caller LOCALE_ARCHIVE=/la systemd-run --unit=env --pipe -E LOCALE_ARCHIVE -E BAR=set sh -c '/usr/bin/env; sleep 0'");
        expect(r.stdout).toContain("PATH=/run/systemd-bin\n");
        expect(r.stdout).toContain("LOCALE_ARCHIVE=/la\n");
        expect(r.stdout).toContain("BAR=set\n");
        expect(r.stdout).not.toContain("FOO=");
        expect(r.code).toBe(127);
        expect(r.stdout).toMatch(/sleep: (command )?not found/);
    });
});
