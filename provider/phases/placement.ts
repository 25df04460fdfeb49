/**
 * Where an install must put a file so that the installed system still has it after its first
 * boot, read from the built system itself (the deployer's copy of the toplevel):
 * - `etc/fstab` lists every `fileSystems` entry, "/" included, as "device mountpoint type …"
 *   (nixos/modules/tasks/filesystems.nix, environment.etc.fstab). With impermanence "/" is a
 *   tmpfs: what is written there is gone at boot, and only disk-backed mounts such as /nix keep it.
 * - `etc/ssh/sshd_config` has one "HostKey <path>" line per services.openssh.hostKeys entry
 *   (nixos/modules/services/networking/ssh/sshd.nix). At boot sshd's pre-start makes a new key at
 *   each path that holds none, so a key written elsewhere is never used.
 * - impermanence's persisted folders are `fileSystems` binds (<storage>/<dir> onto <dir>), so fstab
 *   shows them and a path under one is followed to where it lives on disk; its persisted files
 *   (links made at activation) are not in fstab and cannot be followed.
 * A system without these files (built elsewhere, or not NixOS-shaped) is taken as a disk-backed
 * root with NixOS's default host key path.
 */
import * as fs from "node:fs";
import * as path from "node:path";

export const DEFAULT_HOST_KEY = "/etc/ssh/ssh_host_ed25519_key";

/** File system types whose contents do not outlive a boot. */
const VOLATILE = new Set(["tmpfs", "ramfs"]);

export interface Mount {
    /** fstab's second field, unescaped. */
    point: string;
    type: string;
    device: string;
    options: string[];
}

export interface SystemLayout {
    mounts: Mount[];
    /** Where sshd reads its ed25519 host key. */
    hostKeyPath: string;
}

/** What a system is taken to be when it cannot be read: a disk-backed root, the default host key path. */
export const NIXOS_DEFAULTS: SystemLayout = { mounts: [], hostKeyPath: DEFAULT_HOST_KEY };

/** The layout of a built system; `toplevel` must be in the deployer's store. */
export function readSystemLayout(toplevel: string): SystemLayout {
    return { mounts: parseFstab(readOr(path.join(toplevel, "etc/fstab"))), hostKeyPath: ed25519HostKey(readOr(path.join(toplevel, "etc/ssh/sshd_config"))) };
}

function readOr(file: string): string {
    try {
        return fs.readFileSync(file, "utf8");
    } catch {
        return "";
    }
}

/** fstab escapes blanks in fields as octal (\040); swap lines have no mount point and are left out. */
export function parseFstab(text: string): SystemLayout["mounts"] {
    const unescape = (s: string) => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
    return text
        .split("\n")
        .map((l) => l.trim())
        .filter((l) => l && !l.startsWith("#"))
        .map((l) => l.split(/\s+/))
        .filter((f) => f.length >= 3 && f[1].startsWith("/"))
        .map((f) => ({ point: unescape(f[1]), type: f[2], device: unescape(f[0]), options: (f[3] ?? "").split(",") }));
}

/**
 * Where `file` really lives: through bind mounts (impermanence persists a directory as a
 * fileSystems bind of <persistentStoragePath>/<dir> onto <dir>), to the path on the mount that
 * holds it. An install writes there, before any bind exists.
 */
export function onDisk(layout: SystemLayout, file: string): string {
    for (let hops = 0; hops < 8; hops++) {
        const m = mountOf(layout, file);
        if (!m.options.includes("bind") || !m.device.startsWith("/")) return file;
        file = path.posix.join(m.device, file.slice(m.point.length));
    }
    return file;
}

/** The first HostKey line naming an ed25519 key, else the first HostKey line, else NixOS's default. */
export function ed25519HostKey(sshdConfig: string): string {
    const keys = [...sshdConfig.matchAll(/^\s*HostKey\s+(\S+)\s*$/gim)].map((m) => m[1]);
    return keys.find((k) => k.includes("ed25519")) ?? keys[0] ?? DEFAULT_HOST_KEY;
}

/** The mount that holds `file`: the longest mount point that is a prefix of it ("/" when fstab lists none). */
export function mountOf(layout: SystemLayout, file: string): Mount {
    const under = (p: string) => p === "/" || file === p || file.startsWith(p + "/");
    const found = layout.mounts.filter((m) => under(m.point)).sort((a, b) => b.point.length - a.point.length)[0];
    return found ?? { point: "/", type: "disk", device: "", options: [] };
}

/** Whether `file` lands on a file system that is emptied at every boot. */
export function isVolatile(layout: SystemLayout, file: string): boolean {
    return VOLATILE.has(mountOf(layout, file).type);
}

/**
 * What an install would write where the installed system would not find it: each a sentence that
 * names the property. Empty when everything lands on disk.
 */
export function placementProblems(layout: SystemLayout, o: { extraFiles: string[]; hostKey: boolean }): string[] {
    const problems: string[] = [];
    const lost = (f: string) => isVolatile(layout, onDisk(layout, f));
    for (const f of o.extraFiles.filter(lost)) {
        const m = mountOf(layout, onDisk(layout, f));
        problems.push(`extraFiles["${f}"] lands on ${m.point}, a ${m.type} in this configuration (fileSystems), so it would be gone at the first boot; give its path on a disk-backed mount (where impermanence keeps it, e.g. under /nix)`);
    }
    if (o.hostKey && lost(layout.hostKeyPath)) {
        const p = layout.hostKeyPath;
        const m = mountOf(layout, onDisk(layout, p));
        problems.push(
            `the host key's path ${p} (services.openssh.hostKeys) is on ${m.point}, a ${m.type}: sshd would make a new key at every boot, so the installed system could not be recognised; set services.openssh.hostKeys to a path on a disk-backed mount (e.g. [{ path = "/nix/persistent${p}"; type = "ed25519"; }]), or persist its folder (environment.persistence's directories)`,
        );
    }
    return problems;
}

/**
 * For an install by image, which finds file systems on the written disk by what they hold: the
 * root one, or the one mounted at /nix (its top holds store/ and var/). A file on any other
 * mount (a separate /persist partition) cannot be placed.
 */
export function imagePlacementProblems(layout: SystemLayout, o: { extraFiles: string[]; hostKey: boolean }): string[] {
    const volatile = placementProblems(layout, o);
    if (volatile.length) return volatile;
    const point = (f: string) => mountOf(layout, onDisk(layout, f)).point;
    const named = [...o.extraFiles.map((f) => ({ f, name: `extraFiles["${f}"]` })), ...(o.hostKey ? [{ f: layout.hostKeyPath, name: `the host key's path ${layout.hostKeyPath} (services.openssh.hostKeys)` }] : [])];
    return named.filter((n) => !["/", "/nix"].includes(point(n.f))).map((n) => `${n.name} is on the ${point(n.f)} mount, which an install by image cannot find on the disk (it writes into the file system of / or of /nix)`);
}
