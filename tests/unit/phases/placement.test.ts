/** Where an install puts files, from a built system's etc/fstab, mount units, sshd_config and sshd-keygen as NixOS writes them. */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { ed25519HostKey, escapeSystemdPath, imagePlacementProblems, isVolatile, onDisk, parseFstab, parseKeygen, placementProblems, readSystemLayout, refuseHiddenByEtcOverlay } from "../../../provider/phases/placement";

/** The shape nixos/modules/tasks/filesystems.nix gives etc/fstab, for the low-RAM guide's impermanence layout. */
const IMPERMANENT = `# This is a generated file.  Do not edit!
#
# <file system> <mount point>   <type>  <options>       <dump>  <pass>

# Filesystems.
tmpfs / tmpfs relatime,mode=755,nosuid,nodev 0 0
/dev/sda2 /boot vfat fmask=0077,dmask=0077 0 2
/dev/sda3 /nix btrfs compress-force=zstd,nosuid,nodev 0 0
/dev/sda3 /my\\040data btrfs subvol=data 0 0
/nix/persistent/etc/ssh /etc/ssh auto bind,X-fstrim.notrim 0 0

# Swap devices.
/dev/sda4 none swap defaults
`;

/** The same without the bind of /etc/ssh: the host key's default path is on the tmpfs. */
const TMPFS_ONLY = IMPERMANENT.replace(/^\/nix\/persistent.*\n/m, "");

/** A mount unit as nixos/lib/systemd-lib.nix (mountToUnit, attrsToSection) writes impermanence's systemd.mounts entry. */
const unit = (what: string, where: string) => `[Unit]
Before=local-fs.target
DefaultDependencies=false

[Mount]
Options=bind
Type=none
What=${what}
Where=${where}

[Install]
WantedBy=local-fs.target
`;

/** sshd-keygen.service's script as nixos/modules/services/networking/ssh/sshd.nix writes it, one block per hostKeys entry. */
const keygenBlock = (type: string, p: string, bits = "") => `if ! [ -s "${p}" ]; then
    if ! [ -h "${p}" ]; then
        rm -f "${p}"
    fi
    mkdir -p "$(dirname '${p}')"
    chmod 0755 "$(dirname '${p}')"
    ssh-keygen \\
      -t "${type}" \\
      ${bits ? `-b ${bits}` : ""} \\
       \\
       \\
      -f "${p}" \\
      -N ""
fi
`;

/** A toplevel-shaped folder: files under etc/, links made with `links` (name -> target), removed after `f`. */
function withToplevel(files: Record<string, string>, links: Record<string, string>, f: (top: string) => void): void {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pnx-top-"));
    try {
        for (const [name, text] of Object.entries(files)) {
            fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
            fs.writeFileSync(path.join(dir, name), text);
        }
        for (const [name, target] of Object.entries(links)) {
            fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
            fs.symlinkSync(target, path.join(dir, name));
        }
        f(dir);
    } finally {
        fs.rmSync(dir, { recursive: true, force: true });
    }
}

const UNITS = "etc/systemd/system";

describe("placement", () => {
    it("reads fstab's mount points, unescaping blanks and leaving swap out", () => {
        expect(parseFstab(IMPERMANENT).map((m) => ({ point: m.point, type: m.type }))).toEqual([
            { point: "/", type: "tmpfs" },
            { point: "/boot", type: "vfat" },
            { point: "/nix", type: "btrfs" },
            { point: "/my data", type: "btrfs" },
            { point: "/etc/ssh", type: "auto" },
        ]);
        expect(parseFstab(IMPERMANENT)[4]).toEqual({ point: "/etc/ssh", type: "auto", device: "/nix/persistent/etc/ssh", options: ["bind", "X-fstrim.notrim"] });
    });

    it("takes the ed25519 HostKey line, else the first, else NixOS's default", () => {
        expect(ed25519HostKey("Port 22\nHostKey /nix/persistent/etc/ssh/ssh_host_rsa_key\nHostKey /nix/persistent/etc/ssh/ssh_host_ed25519_key\n")).toBe("/nix/persistent/etc/ssh/ssh_host_ed25519_key");
        expect(ed25519HostKey("HostKey /persist/ssh/key\n")).toBe("/persist/ssh/key");
        expect(ed25519HostKey("")).toBe("/etc/ssh/ssh_host_ed25519_key");
    });

    it("finds a file's mount by the longest mount point, not by a name that merely starts the same", () => {
        const layout = { mounts: parseFstab(IMPERMANENT), hostKeyPath: "/etc/ssh/ssh_host_ed25519_key" };
        expect(isVolatile(layout, "/etc/foo")).toBe(true);
        expect(isVolatile(layout, "/nix/persistent/etc/foo")).toBe(false);
        expect(isVolatile(layout, "/nixos-notes")).toBe(true);
    });

    it("follows impermanence's bind mounts to where a file lives on disk", () => {
        const layout = { mounts: parseFstab(IMPERMANENT), hostKeyPath: "/etc/ssh/ssh_host_ed25519_key" };
        expect(onDisk(layout, "/etc/ssh/ssh_host_ed25519_key")).toBe("/nix/persistent/etc/ssh/ssh_host_ed25519_key");
        expect(onDisk(layout, "/etc/sshd.conf")).toBe("/etc/sshd.conf");
        expect(placementProblems(layout, { extraFiles: ["/etc/ssh/extra"], hostKey: true })).toEqual([]);
        expect(imagePlacementProblems(layout, { extraFiles: [], hostKey: true })).toEqual([]);
    });

    it("names each file and the host key that a tmpfs root would lose, and passes what lands on /nix", () => {
        const layout = { mounts: parseFstab(TMPFS_ONLY), hostKeyPath: "/etc/ssh/ssh_host_ed25519_key" };
        const problems = placementProblems(layout, { extraFiles: ["/etc/foo", "/nix/persistent/etc/bar"], hostKey: true });
        expect(problems).toHaveLength(2);
        expect(problems[0]).toMatch(/^extraFiles\["\/etc\/foo"\] lands on \/, a tmpfs in this configuration/);
        expect(problems[1]).toMatch(/^the host key's path \/etc\/ssh\/ssh_host_ed25519_key \(services\.openssh\.hostKeys\) is on \/, a tmpfs: sshd would make a new key at every boot/);
        expect(placementProblems({ ...layout, hostKeyPath: "/nix/persistent/etc/ssh/ssh_host_ed25519_key" }, { extraFiles: ["/nix/persistent/etc/bar"], hostKey: true })).toEqual([]);
        expect(placementProblems(layout, { extraFiles: [], hostKey: false })).toEqual([]);
    });

    it("refuses, for an image, a file on a mount other than / and /nix", () => {
        const layout = { mounts: parseFstab("/dev/vda2 / ext4 defaults 0 1\n/dev/vda3 /persist ext4 defaults 0 2\n"), hostKeyPath: "/etc/ssh/ssh_host_ed25519_key" };
        expect(imagePlacementProblems(layout, { extraFiles: ["/persist/foo", "/etc/bar"], hostKey: true })).toEqual([
            'extraFiles["/persist/foo"] is on the /persist mount, which an install by image cannot find on the disk (it writes into the file system of / or of /nix)',
        ]);
    });

    it("reads a built system's files through its symlinks, and takes a system without them as disk-backed", () => {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pnx-sys-"));
        try {
            fs.mkdirSync(path.join(dir, "etc-real/ssh"), { recursive: true });
            fs.writeFileSync(path.join(dir, "etc-real/fstab"), IMPERMANENT);
            fs.writeFileSync(path.join(dir, "sshd_config"), "HostKey /nix/persistent/etc/ssh/ssh_host_ed25519_key\n");
            fs.symlinkSync(path.join(dir, "sshd_config"), path.join(dir, "etc-real/ssh/sshd_config"));
            fs.mkdirSync(path.join(dir, "toplevel"));
            fs.symlinkSync(path.join(dir, "etc-real"), path.join(dir, "toplevel/etc"));
            const layout = readSystemLayout(path.join(dir, "toplevel"));
            expect(layout.hostKeyPath).toBe("/nix/persistent/etc/ssh/ssh_host_ed25519_key");
            expect(layout.mounts[0]).toMatchObject({ point: "/", type: "tmpfs" });
            expect(readSystemLayout(path.join(dir, "missing"))).toEqual({ mounts: [], hostKeyPath: "/etc/ssh/ssh_host_ed25519_key", hostKeys: [], etcOverlay: false });
        } finally {
            fs.rmSync(dir, { recursive: true, force: true });
        }
    });

    it.each([
        ["/etc/ssh", "etc-ssh"],
        ["/var/lib/my-app", "var-lib-my\\x2dapp"],
        ["/", "-"],
        ["//home//me/", "home-me"],
        ["/.cache/x.y", "\\x2ecache-x.y"],
        ["/my data", "my\\x20data"],
    ])("names the mount unit for %s as systemd-escape --path does: %s", (where, name) => {
        expect(escapeSystemdPath(where)).toBe(name);
    });

    it("follows impermanence's persisted folder as a systemd mount unit (What=, Where=, Options=bind), its form since 2025-04", () => {
        const files = { "etc/fstab": TMPFS_ONLY, "etc/ssh/sshd_config": "HostKey /etc/ssh/ssh_host_ed25519_key\n", [`${UNITS}/etc-ssh.mount`]: unit("/nix/persistent/etc/ssh", "/etc/ssh") };
        withToplevel(files, { [`${UNITS}/local-fs.target.wants/etc-ssh.mount`]: "../etc-ssh.mount" }, (top) => {
            const layout = readSystemLayout(top);
            expect(layout.mounts.at(-1)).toEqual({ point: "/etc/ssh", type: "none", device: "/nix/persistent/etc/ssh", options: ["bind"] });
            expect(onDisk(layout, "/etc/ssh/ssh_host_ed25519_key")).toBe("/nix/persistent/etc/ssh/ssh_host_ed25519_key");
            expect(placementProblems(layout, { extraFiles: ["/etc/ssh/extra"], hostKey: true })).toEqual([]);
            expect(imagePlacementProblems(layout, { extraFiles: [], hostKey: true })).toEqual([]);
        });
    });

    it("does not follow a mount unit that nothing wants, nor one whose name does not match its Where= (systemd refuses it)", () => {
        const fstab = { "etc/fstab": TMPFS_ONLY };
        withToplevel({ ...fstab, [`${UNITS}/etc-ssh.mount`]: unit("/nix/persistent/etc/ssh", "/etc/ssh") }, {}, (top) => {
            expect(placementProblems(readSystemLayout(top), { extraFiles: [], hostKey: true })).toHaveLength(1);
        });
        withToplevel({ ...fstab, [`${UNITS}/ssh.mount`]: unit("/nix/persistent/etc/ssh", "/etc/ssh") }, { [`${UNITS}/local-fs.target.wants/ssh.mount`]: "../ssh.mount" }, (top) => {
            expect(placementProblems(readSystemLayout(top), { extraFiles: [], hostKey: true })).toHaveLength(1);
        });
    });

    it("reads the host keys' types from sshd-keygen's script: the ed25519 one at a path that does not say so, not the first HostKey line", () => {
        const script = "#!/bin/sh\nset -e\n\n" + keygenBlock("rsa", "/etc/ssh/ssh_host_rsa_key", "4096") + keygenBlock("ed25519", "/etc/ssh/host_key_main");
        expect(parseKeygen(script)).toEqual([
            { type: "rsa", path: "/etc/ssh/ssh_host_rsa_key" },
            { type: "ed25519", path: "/etc/ssh/host_key_main" },
        ]);
        const sshdConfig = "HostKey /etc/ssh/ssh_host_rsa_key\nHostKey /etc/ssh/host_key_main\n";
        withToplevel({ "etc/ssh/sshd_config": sshdConfig, "keygen/bin/sshd-keygen-start": script }, {}, (top) => {
            fs.mkdirSync(path.join(top, UNITS), { recursive: true });
            fs.writeFileSync(path.join(top, UNITS, "sshd-keygen.service"), `[Unit]\nDescription=SSH Host Keys Generation\n\n[Service]\nExecStart=${top}/keygen/bin/sshd-keygen-start\nType=oneshot\n`);
            const layout = readSystemLayout(top);
            expect(layout.hostKeyPath).toBe("/etc/ssh/host_key_main");
            expect(layout.hostKeys).toHaveLength(2);
        });
    });

    it("refuses a system whose services.openssh.hostKeys has no ed25519 key, naming the keys it has", () => {
        const layout = { mounts: [], hostKeyPath: "", hostKeys: [{ type: "rsa", path: "/etc/ssh/ssh_host_rsa_key" }] };
        expect(placementProblems(layout, { extraFiles: [], hostKey: true })).toEqual([expect.stringMatching(/^services\.openssh\.hostKeys has no ed25519 key \(rsa at \/etc\/ssh\/ssh_host_rsa_key\)/)]);
        expect(placementProblems(layout, { extraFiles: [], hostKey: false })).toEqual([]);
    });

    it("refuses, with system.etc.overlay, a host key or extra file under the disk's /etc, and passes one outside it or under a persisted bind", () => {
        withToplevel({ "etc/fstab": "/dev/vda / ext4 defaults 0 1\n", "etc-metadata-image": "", "etc-basedir/x": "" }, {}, (top) => {
            const layout = readSystemLayout(top);
            expect(layout.etcOverlay).toBe(true);
            const err = (() => {
                try {
                    refuseHiddenByEtcOverlay("web", layout, { extraFiles: ["/etc/demo.conf", "/var/lib/demo"], hostKey: true });
                } catch (e) {
                    return e as Error;
                }
            })();
            expect(err?.message).toMatch(/^facts on web failed: extraFiles\["\/etc\/demo\.conf"\] and the host key's path \/etc\/ssh\/ssh_host_ed25519_key \(services\.openssh\.hostKeys\) are under \/etc, which system\.etc\.overlay mounts over at boot/);
            expect(() => refuseHiddenByEtcOverlay("web", { ...layout, hostKeyPath: "/var/lib/ssh/ssh_host_ed25519_key" }, { extraFiles: [], hostKey: true })).not.toThrow();
            const persisted = { ...layout, mounts: [...layout.mounts, { point: "/etc/ssh", type: "none", device: "/persist/etc/ssh", options: ["bind"] }] };
            expect(() => refuseHiddenByEtcOverlay("web", persisted, { extraFiles: [], hostKey: true })).not.toThrow();
        });
        withToplevel({ "etc/fstab": "/dev/vda / ext4 defaults 0 1\n" }, {}, (top) => {
            expect(() => refuseHiddenByEtcOverlay("web", readSystemLayout(top), { extraFiles: ["/etc/demo.conf"], hostKey: true })).not.toThrow();
        });
    });
});
