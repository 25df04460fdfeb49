/**
 * Where an install must put a file so that the installed system still has it after its first
 * boot, read from the built system itself (the deployer's copy of the toplevel):
 * - `etc/fstab` lists every `fileSystems` entry, "/" included, as "device mountpoint type …"
 *   (nixos/modules/tasks/filesystems.nix, environment.etc.fstab). With impermanence "/" is a
 *   tmpfs: what is written there is gone at boot, and only disk-backed mounts such as /nix keep it.
 * - `etc/systemd/system/*.mount` are the `systemd.mounts` units (nixos/lib/systemd-lib.nix,
 *   mountConfig and mountToUnit: "[Mount]" with What=, Where=, Type=, Options=, the file named
 *   after Where= as `systemd-escape --path` names it). impermanence persists each folder as such a
 *   bind unit (What=<storage>/<dir>, Where=/<dir>, Options=bind), wanted by local-fs.target
 *   (impermanence nixos.nix:291-307, since 2025-04); before that, as a `fileSystems` bind in fstab.
 *   A path under either is followed to where it lives on disk. Its persisted files (links or binds
 *   made by a service at boot) cannot be followed.
 * - `etc/ssh/sshd_config` has one "HostKey <path>" line per services.openssh.hostKeys entry, paths
 *   only. The types are in sshd-keygen.service's script (`ssh-keygen -t <type> … -f <path>` per
 *   entry, nixos/modules/services/networking/ssh/sshd.nix), which at boot makes a new key at each
 *   path that holds none, so a key written elsewhere is never used.
 * - `etc-metadata-image` (and `etc-basedir`) exist when system.etc.overlay is on
 *   (nixos/modules/system/activation/top-level.nix): /etc is then an overlay that hides the disk's /etc.
 * A system without these files (built elsewhere, or not NixOS-shaped) is taken as a disk-backed
 * root with NixOS's default host key path.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { NixosDeployError } from "../errors";

export const DEFAULT_HOST_KEY = "/etc/ssh/ssh_host_ed25519_key";

/** File system types whose contents do not outlive a boot. */
const VOLATILE = new Set(["tmpfs", "ramfs"]);

export interface Mount {
    /** fstab's second field (or a mount unit's Where=), unescaped. */
    point: string;
    type: string;
    device: string;
    options: string[];
}

/** One services.openssh.hostKeys entry, as sshd-keygen's script makes it. */
export interface HostKeySpec {
    type: string;
    path: string;
}

export interface SystemLayout {
    mounts: Mount[];
    /** Where sshd reads its ed25519 host key; "" when services.openssh.hostKeys has no ed25519 key. */
    hostKeyPath: string;
    /** services.openssh.hostKeys, read from sshd-keygen.service; empty when the system has none. */
    hostKeys?: HostKeySpec[];
    /** system.etc.overlay: /etc is an overlay mounted at boot over the disk's /etc. */
    etcOverlay?: boolean;
}

/** What a system is taken to be when it cannot be read: a disk-backed root, the default host key path. */
export const NIXOS_DEFAULTS: SystemLayout = { mounts: [], hostKeyPath: DEFAULT_HOST_KEY };

/** The layout of a built system; `toplevel` must be in the deployer's store. */
export function readSystemLayout(toplevel: string): SystemLayout {
    const units = path.join(toplevel, "etc/systemd/system");
    const hostKeys = parseKeygen(readOr(execStartOf(readOr(path.join(units, "sshd-keygen.service")))));
    const sshdConfig = readOr(path.join(toplevel, "etc/ssh/sshd_config"));
    return {
        mounts: [...parseFstab(readOr(path.join(toplevel, "etc/fstab"))), ...readMountUnits(units)],
        hostKeyPath: hostKeys.length ? (hostKeys.find((k) => k.type === "ed25519")?.path ?? "") : ed25519HostKey(sshdConfig),
        hostKeys,
        etcOverlay: fs.existsSync(path.join(toplevel, "etc-metadata-image")),
    };
}

function readOr(file: string): string {
    if (!file) return "";
    try {
        return fs.readFileSync(file, "utf8");
    } catch {
        return "";
    }
}

/** A service's ExecStart= program (NixOS's `script` becomes one store script), without systemd's prefixes. */
export function execStartOf(unit: string): string {
    const m = /^\s*ExecStart\s*=\s*[-@:+!]*(\S+)/m.exec(unit);
    return m ? m[1] : "";
}

/**
 * The keys sshd-keygen's script makes: one `ssh-keygen -t "<type>" … -f "<path>"` per
 * services.openssh.hostKeys entry, its arguments split over continued lines.
 */
export function parseKeygen(script: string): HostKeySpec[] {
    const unquote = (s: string) => s.replace(/^(["'])(.*)\1$/, "$2");
    return script
        .replace(/\\\n/g, " ")
        .split("\n")
        .map((l) => /(?:^|\s)ssh-keygen\s.*?-t\s+("[^"]*"|'[^']*'|\S+).*?\s-f\s+("[^"]*"|'[^']*'|\S+)/.exec(l))
        .filter((m): m is RegExpExecArray => m !== null)
        .map((m) => ({ type: unquote(m[1]), path: unquote(m[2]) }));
}

/** `systemd-escape --path`: the unit name systemd requires for a mount at `where` (src/basic/unit-name.c). */
export function escapeSystemdPath(where: string): string {
    const p = where.replace(/\/+/g, "/").replace(/^\/|\/$/g, "");
    if (!p) return "-";
    const hex = (c: string) => [...Buffer.from(c)].map((b) => "\\x" + b.toString(16).padStart(2, "0")).join("");
    return [...p].map((c, i) => (c === "/" ? "-" : /[A-Za-z0-9:_]/.test(c) || (c === "." && i > 0) ? c : hex(c))).join("");
}

/** The [Mount] section of a unit file: What=, Where=, Type=, Options=; undefined without What= and Where=. */
export function parseMountUnit(text: string): Mount | undefined {
    let section = "";
    const keys: Record<string, string> = {};
    for (const raw of text.split("\n")) {
        const l = raw.trim();
        if (!l || l.startsWith("#") || l.startsWith(";")) continue;
        if (l.startsWith("[")) section = l;
        else if (section === "[Mount]" && l.includes("=")) keys[l.slice(0, l.indexOf("=")).trim()] = l.slice(l.indexOf("=") + 1).trim();
    }
    if (!keys.What || !keys.Where) return undefined;
    return { point: keys.Where, type: keys.Type || "auto", device: keys.What, options: (keys.Options ?? "").split(",") };
}

/**
 * The mount units systemd starts at boot: each `*.mount` in the system's units whose name matches
 * its Where= (systemd refuses one that does not) and that a target wants or requires (a unit
 * nothing pulls in is not mounted at boot). A masked unit (a link to /dev/null) has no [Mount].
 */
export function readMountUnits(dir: string): Mount[] {
    const names = listOr(dir);
    const pulled = new Set(names.filter((n) => /\.(wants|requires|upholds)$/.test(n)).flatMap((n) => listOr(path.join(dir, n))));
    return names
        .filter((n) => n.endsWith(".mount") && pulled.has(n))
        .map((n) => ({ n, m: parseMountUnit(readOr(path.join(dir, n))) }))
        .filter((u): u is { n: string; m: Mount } => u.m !== undefined && escapeSystemdPath(u.m.point) + ".mount" === u.n)
        .map((u) => u.m);
}

function listOr(dir: string): string[] {
    try {
        return fs.readdirSync(dir).sort();
    } catch {
        return [];
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
 * Where `file` really lives: through bind mounts (impermanence persists a directory as a bind of
 * <persistentStoragePath>/<dir> onto <dir>: a mount unit, or a fileSystems entry before 2025-04),
 * to the path on the mount that holds it. An install writes there, before any bind exists.
 */
export function onDisk(layout: SystemLayout, file: string): string {
    for (let hops = 0; hops < 8; hops++) {
        const m = mountOf(layout, file);
        if (!m.options.includes("bind") || !m.device.startsWith("/")) return file;
        file = path.posix.join(m.device, file.slice(m.point.length));
    }
    return file;
}

/**
 * For a system without sshd-keygen (its types unknown): the first HostKey line whose path names an
 * ed25519 key, else the first HostKey line, else NixOS's default.
 */
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
    if (o.hostKey && !layout.hostKeyPath) {
        const types = (layout.hostKeys ?? []).map((k) => `${k.type} at ${k.path}`).join(", ");
        problems.push(`services.openssh.hostKeys has no ed25519 key (${types}), and the host key the install writes and pins is ed25519; add { type = "ed25519"; path = "/etc/ssh/ssh_host_ed25519_key"; } to services.openssh.hostKeys`);
    } else if (o.hostKey && lost(layout.hostKeyPath)) {
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

/** Whether `file` is in /etc on the disk, where system.etc.overlay's /etc hides it at boot (no mount under /etc holds it). */
function hiddenByEtcOverlay(layout: SystemLayout, file: string): boolean {
    const inEtc = (p: string) => p === "/etc" || p.startsWith("/etc/");
    const p = onDisk(layout, file);
    return layout.etcOverlay === true && inEtc(p) && !inEtc(mountOf(layout, p).point);
}

/**
 * With system.etc.overlay, /etc is mounted at boot from the system's own metadata image, over the
 * disk's /etc: a host key or extra file written there is hidden, and sshd-keygen makes a new key.
 * Refused before anything changes, naming each file.
 */
export function refuseHiddenByEtcOverlay(host: string, layout: SystemLayout, o: { extraFiles: string[]; hostKey: boolean }): void {
    const named = [...o.extraFiles.map((f) => ({ f, name: `extraFiles["${f}"]` })), ...(o.hostKey && layout.hostKeyPath ? [{ f: layout.hostKeyPath, name: `the host key's path ${layout.hostKeyPath} (services.openssh.hostKeys)` }] : [])];
    const hidden = named.filter((n) => hiddenByEtcOverlay(layout, n.f)).map((n) => n.name);
    if (!hidden.length) return;
    throw new NixosDeployError({
        host,
        phase: "facts",
        what: `${hidden.join(" and ")} ${hidden.length > 1 ? "are" : "is"} under /etc, which system.etc.overlay mounts over at boot (the system has etc-metadata-image): what the install writes there would be hidden, and sshd would make a new host key`,
        hint: 'keep them outside /etc: set services.openssh.hostKeys to e.g. [{ path = "/var/lib/ssh/ssh_host_ed25519_key"; type = "ed25519"; }] and give extra files paths outside /etc, or persist /etc/ssh with a bind mount (impermanence\'s directories)',
    });
}
