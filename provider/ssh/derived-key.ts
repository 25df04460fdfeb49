/**
 * Keys derived from a secret the deployer already holds (its SSH private key or password), so that
 * an install run repeated after losing its state writes, and expects, the same keys: the installed
 * system's host key, and the key that reaches the installer after a password login. Whoever holds
 * that secret is root on the machine anyway; each key is bound to the host address and its use.
 * Written in OpenSSH's own private-key format (PROTOCOL.key), which sshd and ssh-keygen read.
 *
 * A private key has full entropy: one HKDF pass is enough. A password may be guessable, and a
 * public key derived from it is a test for each guess, so passwords go through scrypt (a slow,
 * memory-hard KDF, RFC 7914) instead. The host key, which anyone can fetch with ssh-keyscan, also
 * takes a random salt that the resource keeps in its state (not secret: it is no key, and without
 * the password it derives nothing): without the state, its public key tests no guess at all. The
 * price is that a run which lost the state cannot derive that host key again (see planHostKey).
 * The installer's access key is seen only by root of the old system and the installer, and must be
 * found again by a run that lost its state (the installer takes no password): it is salted by the
 * host alone.
 */
import { createHash, createPrivateKey, createPublicKey, hkdfSync, randomBytes, scryptSync } from "node:crypto";

/** What a key is derived from: a private key as it is, or a password with the salt kept in state. */
export type KeySecret = { privateKey: string } | { password: string; salt?: string };

/** scrypt's cost: N = 2^17, r = 8 (128 MiB, a few tenths of a second per derivation), as OWASP advises. */
const SCRYPT = { N: 1 << 17, r: 8, p: 1, maxmem: 256 << 20 };

/** A new salt for a password's host key: 16 random bytes, hex. */
export function newKeySalt(): string {
    return randomBytes(16).toString("hex");
}

/** 32 bytes for `use` on `host`. */
function seedOf(secret: KeySecret, host: string, use: string): Buffer {
    if ("privateKey" in secret) return Buffer.from(hkdfSync("sha256", secret.privateKey, host, use, 32));
    const salt = Buffer.concat([Buffer.from(secret.salt ?? "", "hex"), Buffer.from(`\0${host}\0${use}`)]);
    return scryptSync(secret.password.normalize("NFC"), salt, 32, SCRYPT);
}

/** DER prefix of a PKCS#8 Ed25519 private key; the 32-byte seed follows (RFC 8410). */
const PKCS8_ED25519 = Buffer.from("302e020100300506032b657004220420", "hex");

function sshString(b: Buffer | string): Buffer {
    const data = typeof b === "string" ? Buffer.from(b) : b;
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    return Buffer.concat([len, data]);
}

function uint32(n: number): Buffer {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(n >>> 0);
    return b;
}

/** The Ed25519 public key (32 bytes) of a seed. */
function publicOf(seed: Buffer): Buffer {
    const priv = createPrivateKey({ key: Buffer.concat([PKCS8_ED25519, seed]), format: "der", type: "pkcs8" });
    const spki = createPublicKey(priv).export({ format: "der", type: "spki" });
    return spki.subarray(spki.length - 32);
}

/** An unencrypted OpenSSH private key file for an Ed25519 seed, and its public key line. */
export function ed25519FromSeed(seed: Buffer): { privateKey: string; publicKey: string } {
    const pub = publicOf(seed);
    const pubBlob = Buffer.concat([sshString("ssh-ed25519"), sshString(pub)]);
    // The check integers only need to match each other; derived, so the file is the same each time.
    const check = createHash("sha256").update(seed).digest().readUInt32BE(0);
    let secret = Buffer.concat([uint32(check), uint32(check), sshString("ssh-ed25519"), sshString(pub), sshString(Buffer.concat([seed, pub])), sshString("")]);
    const pad = (8 - (secret.length % 8)) % 8;
    secret = Buffer.concat([secret, Buffer.from(Array.from({ length: pad }, (_, i) => i + 1))]);
    const body = Buffer.concat([Buffer.from("openssh-key-v1\0"), sshString("none"), sshString("none"), sshString(""), uint32(1), sshString(pubBlob), sshString(secret)]);
    const lines = body.toString("base64").match(/.{1,70}/g) ?? [];
    return {
        privateKey: ["-----BEGIN OPENSSH PRIVATE KEY-----", ...lines, "-----END OPENSSH PRIVATE KEY-----", ""].join("\n"),
        publicKey: `ssh-ed25519 ${pubBlob.toString("base64")}`,
    };
}

/** The installed system's host key for `host`; a password's needs the salt kept in state. */
export function derivedHostKey(secret: KeySecret, host: string): { privateKey: string; publicKey: string } {
    if ("password" in secret && !secret.salt) throw new Error("a host key derived from a password needs a salt");
    return ed25519FromSeed(seedOf(secret, host, "pulumi-nixos installed host key"));
}

/** The key that reaches the installer as root for a password login, derived from that password (scrypt, salted by the host). */
export function derivedAccessKey(password: string, host: string): { privateKey: string; publicKey: string } {
    return ed25519FromSeed(seedOf({ password }, host, "pulumi-nixos installer access key"));
}
