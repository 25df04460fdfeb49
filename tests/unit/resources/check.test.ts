import * as path from "node:path";
import { describe, expect, it } from "vitest";
import * as install from "../../../provider/resources/install";
import * as rebuild from "../../../provider/resources/rebuild";
import { UNKNOWN } from "../../../provider/schema/common";
import { FIXTURES } from "../../testbed/nix";
import { countingListener } from "./listener";

// Bad inputs must never reach a host.
const listener = countingListener();

const store = "/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-nixos-system-web";
const base = () => ({ connection: { host: "127.0.0.1", port: listener.port }, storePaths: { toplevel: store } });

const bad: [string, Record<string, unknown>, string, RegExp][] = [
    ["no connection", { connection: undefined }, "connection", /is required/],
    ["empty host", { connection: { host: "" } }, "connection.host", /must not be empty/],
    ["port 0", { connection: { host: "h", port: 0 } }, "connection.port", /greater than or equal to 1/],
    ["port 70000", { connection: { host: "h", port: 70000 } }, "connection.port", /less than or equal to 65535/],
    ["port as text", { connection: { host: "h", port: "22" } }, "connection.port", /Expected number/],
    ["fractional port", { connection: { host: "h", port: 22.5 } }, "connection.port", /integer/],
    ["empty user", { connection: { host: "h", user: "" } }, "connection.user", /at least 1/],
    ["garbage host key", { connection: { host: "h", hostKey: "nonsense" } }, "connection.hostKey", /must look like/],
    ["mangled host key", { connection: { host: "h", hostKey: "ssh-ed25519 AAAAB3NzaC1yc2EAAAADAQABAAABAQ" } }, "connection.hostKey", /not a valid ssh-ed25519/],
    ["dialErrorLimit -2", { connection: { host: "h", dialErrorLimit: -2 } }, "connection.dialErrorLimit", /greater than or equal to -1/],
    ["dialErrorLimit 1e6", { connection: { host: "h", dialErrorLimit: 1e6 } }, "connection.dialErrorLimit", /less than or equal to 1000/],
    ["privateKey that is garbage", { connection: { host: "h", privateKey: "not-a-key-4711" } }, "connection.privateKey", /is not a private key ssh2 can read/],
    ["privateKey that is a file path", { connection: { host: "h", privateKey: "/root/.ssh/id_ed25519" } }, "connection.privateKey", /give the key itself, not a path/],
    ["privateKey that is a public key", { connection: { host: "h", privateKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl" } }, "connection.privateKey", /is a public key; give the private key/],
    ["bastion privateKey that is garbage", { connection: { host: "h", proxy: { host: "b", privateKey: "junk" } } }, "connection.proxy.privateKey", /is not a private key/],
    ["perDialTimeout 0", { connection: { host: "h", perDialTimeout: 0 } }, "connection.perDialTimeout", /greater than 0/],
    // Never the whole connection: the engine prints the value of the property a failure names.
    ["typo in connection", { connection: { host: "h", hots: "x" } }, "connection.hots", /unknown property "hots"/],
    ["nested proxy", { connection: { host: "h", proxy: { host: "b", proxy: { host: "c" } } } }, "connection.proxy.proxy", /unknown property "proxy"/],
    ["proxy without host", { connection: { host: "h", proxy: { port: 22 } } }, "connection.proxy.host", /is required/],
    ["no source", { storePaths: undefined }, "flake", /one source is required/],
    ["two sources", { flake: "./x#web" }, "storePaths", /only one source may be set, but flake and storePaths are/],
    ["flake without fragment", { storePaths: undefined, flake: "./infra" }, "flake", /must be "<flake>#<name>"/],
    ["store path not in /nix/store", { storePaths: { toplevel: "/tmp/system" } }, "storePaths.toplevel", /must be a store path/],
    ["store path with shell syntax", { storePaths: { toplevel: "/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-x;reboot" } }, "storePaths.toplevel", /must be a store path/],
    ["store path with a hash Nix cannot make", { storePaths: { toplevel: "/nix/store/eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee-x" } }, "storePaths.toplevel", /must be a store path/],
    ["disko script not a store path", { storePaths: { toplevel: store, diskoScript: "disko.sh" } }, "storePaths.diskoScript", /must be a store path/],
    ["empty nixosConfiguration file", { storePaths: undefined, nixosConfiguration: { file: "" } }, "nixosConfiguration.file", /at least 1/],
    ["unknown phase", { phases: ["kexec", "partition"] }, "phases.1", /Invalid enum value/],
    ["no phases", { phases: [] }, "phases", /at least 1/],
    ["bad disko mode", { diskoMode: "wipe" }, "diskoMode", /Invalid enum value.*'disko' \| 'format' \| 'mount'/],
    ["bad buildOn", { buildOn: "cloud" }, "buildOn", /Invalid enum value/],
    ["cache URL that is not a binary cache", { cache: { url: "cache.example.org", publicKey: "c-1:OTISt6UscuCmjsALJritoa1ATcfxPVHgErcnx9Ydj+A=" } }, "cache.url", /must be a binary cache URL/],
    ["cache key without its name", { cache: { url: "https://c.example.org", publicKey: "OTISt6UscuCmjsALJritoa1ATcfxPVHgErcnx9Ydj+A=" } }, "cache.publicKey", /must be "<name>:<base64 key>"/],
    ["cache pushTo that is not a store URL", { cache: { url: "https://c.example.org", publicKey: "c-1:OTISt6UscuCmjsALJritoa1ATcfxPVHgErcnx9Ydj+A=", pushTo: "/srv/cache" } }, "cache.pushTo", /must be a Nix store URL/],
    ["relative extra file", { extraFiles: { "etc/x": { content: "x" } } }, "extraFiles.etc/x.content", /absolute file path/],
    ["extra file escaping with ..", { extraFiles: { "/etc/../../x": { content: "x" } } }, "extraFiles./etc/../../x.content", /without '\.\.'/],
    ["extra file with both content and source", { extraFiles: { "/etc/x": { content: "a", source: "./a" } } }, "extraFiles./etc/x.content", /exactly one of content and source/],
    ["extra file mode 777x", { extraFiles: { "/etc/x": { content: "a", mode: "777x" } } }, "extraFiles./etc/x.mode", /octal mode/],
    ["extra file owner with spaces", { extraFiles: { "/etc/x": { content: "a", owner: "bad owner" } } }, "extraFiles./etc/x.owner", /must be numeric "uid:gid"/],
    // The installer that writes extra files has none of the target's users.
    ["extra file owned by a user name", { extraFiles: { "/var/lib/app/token": { content: "a", owner: "app" } } }, "extraFiles./var/lib/app/token.owner", /none of the target's users/],
    ["extra file owned by a user:group name", { extraFiles: { "/etc/x": { content: "a", owner: "app:app" } } }, "extraFiles./etc/x.owner", /none of the target's users/],
    ["extra file path ending in /", { extraFiles: { "/etc/": { content: "x" } } }, "extraFiles./etc/.content", /absolute file path \(no trailing slash/],
    ["extra file path with a newline", { extraFiles: { "/etc/x\n/../../y": { content: "x" } } }, "extraFiles./etc/x\n/../../y.content", /no newline/],
    ["extra file source that does not exist", { extraFiles: { "/etc/x": { source: "./no-such-file-2718" } } }, "extraFiles./etc/x.source", /does not exist on the machine running Pulumi/],
    ["hostKeyPair.privateKey that does not parse", { hostKeyPair: { privateKey: "BEGIN nothing" } }, "hostKeyPair.privateKey", /is not an unencrypted OpenSSH or PEM private key/],
    ["kexecTarball neither URL nor file", { kexecTarball: "ftp://mirror/kexec.tar.gz" }, "kexecTarball", /http\(s\) URL or an existing local file/],
    ["kexecTarball missing locally", { kexecTarball: "./no-such-kexec-2718.tar.gz" }, "kexecTarball", /http\(s\) URL or an existing local file/],
    ["kexec then install without disko", { phases: ["kexec", "install"] }, "phases", /install after kexec needs "disko"/],
    ["timeouts.kexec 1e9", { timeouts: { kexec: 1e9 } }, "timeouts.kexec", /at most 3600 seconds/],
    ["relative disk key path", { diskEncryptionKeys: { "disk.key": "k" } }, "diskEncryptionKeys.disk.key", /absolute file path/],
    ["bad hostKeyPair", { hostKeyPair: "rotate" }, "hostKeyPair", /Invalid input/],
    ["copyHostKeys with a given key", { copyHostKeys: true, hostKeyPair: { privateKey: "k" } }, "copyHostKeys", /cannot be combined with hostKeyPair.privateKey/],
    ["bad hardwareConfig", { hardwareConfig: "lshw" }, "hardwareConfig", /Invalid enum value/],
    ["negative timeout", { timeouts: { kexec: -5 } }, "timeouts.kexec", /greater than 0/],
    ["unknown timeout", { timeouts: { disko: 5 } }, "timeouts", /unknown property "disko"/],
    ["postKexecSshPort 0", { postKexecSshPort: 0 }, "postKexecSshPort", /greater than or equal to 1/],
    ["allowReinstall as text", { allowReinstall: "yes" }, "allowReinstall", /Expected boolean/],
    ["unknown top-level input", { reinstall: true }, "(inputs)", /unknown property "reinstall"/],
    ["bad method", { method: "dd" }, "method", /Invalid enum value.*'nixos-install' \| 'image'/],
    ["kexec in an install by image", { method: "image", phases: ["kexec", "write"] }, "phases", /method "image" has the phases write, install, reboot; kexec belongs to the other method/],
    ["write in a nixos-install", { phases: ["write", "reboot"] }, "phases", /method "nixos-install" has the phases kexec, disko, install, reboot; write belongs to the other method/],
    ["kept host keys in an install by image", { method: "image", hostKeyPair: "keep" }, "hostKeyPair", /a rescue system's keys are not the machine's/],
    ["copyHostKeys in an install by image", { method: "image", copyHostKeys: true }, "copyHostKeys", /an install by image replaces the disk/],
    ["imageDisk not a device", { method: "image", imageDisk: "sda" }, "imageDisk", /must be a device path like "\/dev\/sda"/],
    ["imageAttribute with shell syntax", { method: "image", imageAttribute: "image; reboot" }, "imageAttribute", /attribute path under config\.system\.build/],
    ["storePaths.image not a store path", { method: "image", storePaths: { toplevel: store, image: "./main.raw" } }, "storePaths.image", /must be a store path/],
];

describe("NixosInstall check()", () => {
    it.each(bad)("rejects %s, naming the property, without connecting anywhere", async (_title, change, property, reason) => {
        const before = listener.connections;
        const news: Record<string, unknown> = { ...base(), ...change };
        for (const k of Object.keys(news)) if (news[k] === undefined) delete news[k];
        const r = await install.check({}, news);
        const f = (r.failures ?? []).find((x) => x.property === property);
        expect(f, JSON.stringify(r.failures)).toBeDefined();
        expect(f!.reason).toMatch(reason);
        expect(listener.connections).toBe(before);
    });

    it("never names an object holding secrets, nor quotes a secret, in a failure", async () => {
        const r = await install.check({}, {
            ...base(),
            connection: { host: "h", password: "pw-in-connection-99", passwrd: "x" },
            hostKeyPair: { privateKey: "secret-host-key-99" },
            extraFiles: { "/etc/x": { content: "secret-content-99", source: "./a" } },
        });
        expect(r.failures!.map((f) => f.property).sort()).toEqual(["connection.passwrd", "extraFiles./etc/x.content", "hostKeyPair.privateKey"]);
        expect(JSON.stringify(r.failures)).not.toMatch(/-99/);
    });

    it("accepts values still unknown during preview and validates the rest", async () => {
        const r = await install.check({}, { connection: { host: UNKNOWN, port: 22, privateKey: UNKNOWN }, storePaths: { toplevel: store } });
        expect(r.failures ?? []).toEqual([]);
        expect(r.inputs!.toplevel).toBe(store);
        const r2 = await install.check({}, { connection: { host: UNKNOWN, port: 0 }, storePaths: { toplevel: store } });
        expect(r2.failures).toEqual([{ property: "connection.port", reason: expect.stringMatching(/greater than or equal to 1/) }]);
    });

    it("evaluates the source in preview while the connection is still unknown", async () => {
        const r = await install.check({}, { connection: UNKNOWN, flake: `path:${path.join(FIXTURES, "flake")}#no-such-machine` });
        expect(r.failures).toEqual([{ property: "flake", reason: expect.stringMatching(/does not provide nixosConfigurations."no-such-machine".*it provides nixosConfigurations: web/s) }]);
        const ok = await install.check({}, { connection: { host: UNKNOWN }, flake: `path:${path.join(FIXTURES, "flake")}#web` });
        expect(ok.failures ?? []).toEqual([]);
        expect(ok.inputs!.toplevel).toMatch(/-nixos-system-web-/);
        expect(listener.connections).toBe(0);
    });

    it("skips evaluation while the source is unknown", async () => {
        const r = await install.check({}, { connection: { host: "h" }, flake: UNKNOWN });
        expect(r.failures ?? []).toEqual([]);
        expect(r.inputs!.toplevel).toBeUndefined();
    });
});

describe("NixosRebuild check()", () => {
    it.each([
        ["bad action", { action: "restart" }, "action", /Invalid enum value/],
        ["health check as a bare string", { healthChecks: ["true"] }, "healthChecks.0", /Expected object/],
        ["health check without command", { healthChecks: [{ timeout: 3 }] }, "healthChecks.0.command", /is required/],
        ["confirmTimeout 0", { confirmTimeout: 0 }, "confirmTimeout", /greater than 0/],
        ["confirmTimeout 1e9", { confirmTimeout: 1e9 }, "confirmTimeout", /at most 3600 seconds/],
        ["health check timeout 1e9", { healthChecks: [{ command: "true", timeout: 1e9 }] }, "healthChecks.0.timeout", /at most 3600 seconds/],
        ["keepGenerations 0", { keepGenerations: 0 }, "keepGenerations", /greater than or equal to 1/],
        ["bad onDelete", { onDelete: "destroy" }, "onDelete", /Invalid enum value/],
    ] as [string, Record<string, unknown>, string, RegExp][])("rejects %s, naming the property", async (_t, change, property, reason) => {
        const r = await rebuild.check({}, { ...base(), ...change });
        const f = (r.failures ?? []).find((x) => x.property === property);
        expect(f, JSON.stringify(r.failures)).toBeDefined();
        expect(f!.reason).toMatch(reason);
        expect(listener.connections).toBe(0);
    });
});
