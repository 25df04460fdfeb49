/** Host-key pins: parsing "ssh-ed25519 AAAA…" and computing OpenSSH's SHA256 fingerprints. */
import { createHash } from "node:crypto";

export interface HostKeyPin {
    type: string;
    /** The raw public-key blob, as sent in the SSH handshake. */
    blob: Buffer;
}

/** Parses an OpenSSH public key line ("type base64 [comment]"), as found in known_hosts or *.pub. */
export function parseHostKey(line: string): HostKeyPin {
    const parts = line.trim().split(/\s+/);
    // known_hosts lines may start with the host pattern: skip fields until a key type.
    const i = parts.findIndex((p) => /^(ssh-|ecdsa-sha2-|sk-)/.test(p));
    if (i < 0 || !parts[i + 1]) {
        throw new TypeError(`hostKey must look like "ssh-ed25519 AAAA…", got ${JSON.stringify(line.slice(0, 80))}`);
    }
    const blob = Buffer.from(parts[i + 1], "base64");
    // The blob starts with its own type name; a mismatch means a mangled key.
    const len = blob.length >= 4 ? blob.readUInt32BE(0) : -1;
    if (len < 0 || blob.subarray(4, 4 + len).toString() !== parts[i]) {
        throw new TypeError(`hostKey is not a valid ${parts[i]} public key: its base64 part does not decode to one`);
    }
    return { type: parts[i], blob };
}

/** Whether two "type base64 [comment]" lines are the same key (comments aside). */
export function sameHostKey(a: string, b: string): boolean {
    return a.trim().split(/\s+/)[1] === b.trim().split(/\s+/)[1];
}

/** "SHA256:…" as printed by ssh-keygen -l. */
export function fingerprint(blob: Buffer): string {
    return "SHA256:" + createHash("sha256").update(blob).digest("base64").replace(/=+$/, "");
}

/** "ssh-ed25519 AAAA…" from a raw key blob. */
export function formatHostKey(blob: Buffer): string {
    const len = blob.readUInt32BE(0);
    return `${blob.subarray(4, 4 + len).toString()} ${blob.toString("base64")}`;
}
