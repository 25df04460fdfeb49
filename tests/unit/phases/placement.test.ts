/** Where an install puts files, from a built system's etc/fstab and etc/ssh/sshd_config as NixOS writes them. */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { ed25519HostKey, imagePlacementProblems, isVolatile, onDisk, parseFstab, placementProblems, readSystemLayout } from "../../../provider/phases/placement";

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
            expect(readSystemLayout(path.join(dir, "missing"))).toEqual({ mounts: [], hostKeyPath: "/etc/ssh/ssh_host_ed25519_key" });
        } finally {
            fs.rmSync(dir, { recursive: true, force: true });
        }
    });
});
