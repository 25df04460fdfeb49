import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { utils } from "ssh2";
import { describe, expect, it } from "vitest";
import { derivedHostKey } from "../../../provider/ssh/derived-key";

describe("derived host keys", () => {
    it("writes a key OpenSSH's ssh-keygen and ssh2 read, with the public key it states", () => {
        const k = derivedHostKey("-----BEGIN OPENSSH PRIVATE KEY-----\nthe deployer's key\n", "203.0.113.10");
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

    it("is the same for the same secret and host, and differs for another of either", () => {
        const a = derivedHostKey("secret", "203.0.113.10");
        expect(derivedHostKey("secret", "203.0.113.10")).toEqual(a);
        expect(derivedHostKey("secret", "203.0.113.11").publicKey).not.toBe(a.publicKey);
        expect(derivedHostKey("other", "203.0.113.10").publicKey).not.toBe(a.publicKey);
        expect(a.privateKey).not.toContain("secret");
    });
});
