import type * as net from "node:net";
import type { Client, ServerChannel } from "ssh2";
import { afterEach, describe, expect, it } from "vitest";
import { HostKeyMismatchError, SshConnection } from "../../../provider/ssh/connection";
import { fingerprint, parseHostKey } from "../../../provider/ssh/hostkey";
import { NixosDeployError } from "../../../provider/errors";
import { sh } from "../../../provider/ssh/shell";
import { Target } from "../../../provider/ssh/target";
import { ed25519, noDelay, Peer, sshPeer } from "./peer";

/** An in-process SSH server that runs `echo` for any command and records authentication attempts. */
function peer(password = "pw", stderr = "to stderr\n"): Promise<Peer> {
    return sshPeer(password, (command, ch) => {
        ch.write(`ran: ${command}\n`);
        if (stderr) ch.stderr.write(stderr);
        ch.exit(3);
        ch.end();
    });
}

let open: Peer[] = [];
afterEach(() => {
    open.forEach((p) => p.close());
    open = [];
});

describe("SshConnection", () => {
    it("connects when the pinned host key matches and returns stdout, stderr and the exit code", async () => {
        const p = await peer();
        open.push(p);
        const c = await SshConnection.open({ host: "127.0.0.1", port: p.port, password: "pw", hostKey: p.hostKey });
        const r = await c.exec("hello");
        c.close();
        expect(r).toEqual({ stdout: "ran: hello\n", stderr: "to stderr\n", code: 3, signal: null });
        expect(c.hostKey).toBe(p.hostKey);
    });

    it("refuses a different host key before authenticating, naming expected and offered fingerprints", async () => {
        const p = await peer();
        open.push(p);
        const other = ed25519().pub;
        const err = await SshConnection.open({ host: "127.0.0.1", port: p.port, password: "pw", hostKey: other }).catch((e) => e);
        expect(err).toBeInstanceOf(HostKeyMismatchError);
        expect(err.message).toContain(`expected ${fingerprint(parseHostKey(other).blob)}`);
        expect(err.message).toContain(`offered ${fingerprint(parseHostKey(p.hostKey).blob)}`);
        expect(err.message).toMatch(/^connect on root@127\.0\.0\.1:\d+ failed: the host key does not match/);
        expect(p.authAttempts).toEqual([]);
    });

    it("trusts the first key when none is pinned and reports it with its fingerprint", async () => {
        const p = await peer();
        open.push(p);
        const c = await SshConnection.open({ host: "127.0.0.1", port: p.port, password: "pw" });
        c.close();
        expect(c.hostKey).toBe(p.hostKey);
        expect(c.hostKeyFingerprint).toBe(fingerprint(parseHostKey(p.hostKey).blob));
    });

    it("fails authentication once, without retrying, and never puts the password in the error", async () => {
        const p = await peer("right-password");
        open.push(p);
        const err = await SshConnection.open({ host: "127.0.0.1", port: p.port, password: "wrong-secret-value", dialErrorLimit: 5 }).catch((e) => e);
        expect(err).toBeInstanceOf(NixosDeployError);
        expect(err.message).toContain("authentication methods failed");
        expect(err.message).not.toContain("wrong-secret-value");
        expect(p.authAttempts.filter((m) => m === "password")).toHaveLength(1);
    });

    it("closes the bastion connection when the bastion cannot reach the target", async () => {
        const bastion = await peer();
        open.push(bastion);
        // This bastion forwards nothing (ssh2 refuses tcpip requests without a handler).
        const err = await SshConnection.open({ host: "10.9.9.9", port: 22, password: "pw", dialErrorLimit: 2, proxy: { host: "127.0.0.1", port: bastion.port, password: "pw", hostKey: bastion.hostKey } }).catch((e) => e);
        expect(err.message).toMatch(/the bastion root@127\.0\.0\.1:\d+ cannot reach 10\.9\.9\.9:22/);
        for (let i = 0; i < 50 && bastion.connected() > 0; i++) await new Promise((r) => setTimeout(r, 20));
        expect(bastion.connected()).toBe(0);
    });

    it("turns Nagle's algorithm off on the target's socket and on the bastion's", async () => {
        const target = await peer();
        const bastion = await sshPeer("pw", () => undefined, { forward: true });
        open.push(target, bastion);
        const direct = await SshConnection.open({ host: "127.0.0.1", port: target.port, password: "pw", hostKey: target.hostKey });
        const hopped = await SshConnection.open({ host: "127.0.0.1", port: target.port, password: "pw", hostKey: target.hostKey, proxy: { host: "127.0.0.1", port: bastion.port, password: "pw", hostKey: bastion.hostKey } });
        const sockOf = (c: Client) => (c as unknown as { _sock: net.Socket })._sock;
        try {
            expect(noDelay(sockOf(direct.client))).toBe(true);
            expect((await hopped.exec("through")).stdout).toBe("ran: through\n");
            expect(noDelay(sockOf(hopped.hops[0]))).toBe(true);
        } finally {
            direct.close();
            hopped.close();
        }
    });

    it("starts a command again when sshd refused to start it (nothing ran), at most three times", async () => {
        const echo = (command: string, ch: ServerChannel) => {
            ch.write(`ran: ${command}`);
            ch.exit(0);
            ch.end();
        };
        const twice = await sshPeer("pw", echo, { refuseExecs: 2 });
        const always = await sshPeer("pw", echo, { refuseExecs: 99 });
        open.push(twice, always);
        const a = await SshConnection.open({ host: "127.0.0.1", port: twice.port, password: "pw", hostKey: twice.hostKey });
        expect(await a.exec("x")).toMatchObject({ stdout: "ran: x", code: 0 });
        a.close();
        const b = await SshConnection.open({ host: "127.0.0.1", port: always.port, password: "pw", hostKey: always.hostKey });
        await expect(b.exec("x")).rejects.toThrow("Unable to exec");
        // The connection goes away between two tries: an error, never an exception out of a timer.
        const pending = b.exec("y");
        b.close();
        await expect(pending).rejects.toThrow(/Not connected|closed/);
    });

    it("gives up after dialErrorLimit attempts when nothing listens", async () => {
        const t0 = Date.now();
        const err = await SshConnection.open({ host: "127.0.0.1", port: 1, dialErrorLimit: 2, perDialTimeout: 1 }).catch((e) => e);
        expect(err).toBeInstanceOf(NixosDeployError);
        expect(err.message).toMatch(/ECONNREFUSED/);
        expect(Date.now() - t0).toBeLessThan(5000);
    });
});

describe("parseHostKey", () => {
    it.each([
        ["not a key", /must look like/],
        ["ssh-ed25519 AAAAB3NzaC1yc2EAAAADAQABAAABAQ", /not a valid ssh-ed25519 public key/],
    ])("rejects %j", (line, msg) => {
        expect(() => parseHostKey(line)).toThrow(msg);
    });

    it("accepts a known_hosts line with a host pattern in front", () => {
        const k = ed25519().pub;
        expect(parseHostKey(`[10.0.0.1]:2222 ${k}`).type).toBe("ssh-ed25519");
    });
});

describe("Target errors", () => {
    it("quote stdout when stderr is empty, unless the output is secret", async () => {
        const p = await peer("pw", "");
        open.push(p);
        const t = new Target({ host: "127.0.0.1", port: p.port, password: "pw", hostKey: p.hostKey });
        const plain = await t.run(sh`cat key.pub`, { phase: "test" }).catch((e) => e);
        expect(plain.message).toContain("ran: cat key.pub");
        const secret = await t.run(sh`cat key`, { phase: "test", what: "reading a key", secretOutput: true }).catch((e) => e);
        t.close();
        expect(secret).toBeInstanceOf(NixosDeployError);
        expect(secret.message).toMatch(/^test on root@127\.0\.0\.1:\d+ failed: reading a key \(exit 3\)/);
        expect(secret.message).not.toContain("ran: cat key");
    });
});
