import { execFileSync } from "node:child_process";
import { hkdfSync } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { utils } from "ssh2";
import { describe, expect, it } from "vitest";
import { planHostKey } from "../../../provider/phases/install";
import { derivedAccessKey, derivedHostKey, ed25519FromSeed, newKeySalt } from "../../../provider/ssh/derived-key";

const KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nthe deployer's key\n";
const HOST = "203.0.113.10";

/** What one fast HKDF pass of a password gave: anyone with the public key could test guesses at hash speed. */
const fastFromPassword = (password: string, use: string) => ed25519FromSeed(Buffer.from(hkdfSync("sha256", password, HOST, use, 32))).publicKey;

describe("derived host keys", () => {
    it("writes a key OpenSSH's ssh-keygen and ssh2 read, with the public key it states", () => {
        const k = derivedHostKey({ privateKey: KEY }, HOST);
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pnx-derived-"));
        try {
            fs.writeFileSync(path.join(dir, "k"), k.privateKey, { mode: 0o600 });
            expect(execFileSync("ssh-keygen", ["-y", "-f", path.join(dir, "k")], { encoding: "utf8" }).trim().split(" ").slice(0, 2).join(" ")).toBe(k.publicKey);
        } finally {
            fs.rmSync(dir, { recursive: true, force: true });
        }
        const parsed = utils.parseKey(k.privateKey);
        expect(parsed instanceof Error ? parsed.message : parsed.type).toBe("ssh-ed25519");
    });

    it("is the same for the same private key and host, and differs for another of either", () => {
        const a = derivedHostKey({ privateKey: "secret" }, HOST);
        expect(derivedHostKey({ privateKey: "secret" }, HOST)).toEqual(a);
        expect(derivedHostKey({ privateKey: "secret" }, "203.0.113.11").publicKey).not.toBe(a.publicKey);
        expect(derivedHostKey({ privateKey: "other" }, HOST).publicKey).not.toBe(a.publicKey);
        expect(a.privateKey).not.toContain("secret");
    });

    it("derives a password's host key with scrypt and a salt, so the public key tests no guess without the salt, and each guess is slow", () => {
        const salt = newKeySalt();
        expect(salt).toMatch(/^[0-9a-f]{32}$/);
        const t0 = Date.now();
        const a = derivedHostKey({ password: "hunter2", salt }, HOST);
        expect(Date.now() - t0).toBeGreaterThanOrEqual(50); // scrypt at N=2^17: hundreds of ms; HKDF: microseconds
        expect(a.publicKey).not.toBe(fastFromPassword("hunter2", "pulumi-nixos installed host key"));
        expect(derivedHostKey({ password: "hunter2", salt }, HOST)).toEqual(a);
        expect(derivedHostKey({ password: "hunter2", salt: newKeySalt() }, HOST).publicKey).not.toBe(a.publicKey);
        expect(() => derivedHostKey({ password: "hunter2" }, HOST)).toThrow(/needs a salt/);
    });

    it("derives the installer's access key from a password with scrypt, the same on a run that lost its state", () => {
        const a = derivedAccessKey("hunter2", HOST);
        expect(derivedAccessKey("hunter2", HOST)).toEqual(a);
        expect(a.publicKey).not.toBe(fastFromPassword("hunter2", "pulumi-nixos installer access key"));
        expect(derivedAccessKey("hunter2", "203.0.113.11").publicKey).not.toBe(a.publicKey);
    });
});

describe("planHostKey", () => {
    const v = (connection: { privateKey?: string; password?: string }) => ({ hostKeyPair: "generate" as const, copyHostKeys: false, connection: { host: HOST, ...connection } });

    it("plans the same key from a private key whatever the salt (a run that lost its state finds its system), and records no salt", () => {
        const a = planHostKey(v({ privateKey: KEY }), newKeySalt());
        const b = planHostKey(v({ privateKey: KEY }), newKeySalt());
        expect(b.expected).toBe(a.expected);
        expect(a.keySalt).toBeUndefined();
    });

    it("plans a password's key from the recorded salt, and returns the salt to record; a lost state plans another key", () => {
        const salt = newKeySalt();
        const a = planHostKey(v({ password: "hunter2" }), salt);
        expect(a.keySalt).toBe(salt);
        expect(planHostKey(v({ password: "hunter2" }), salt).expected).toBe(a.expected);
        expect(planHostKey(v({ password: "hunter2" }), newKeySalt()).expected).not.toBe(a.expected);
        expect(a.expected).not.toBe(fastFromPassword("hunter2", "pulumi-nixos installed host key"));
    });
});
