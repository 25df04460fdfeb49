/**
 * Package-level difference between two system closures, like `nix store diff-closures` and nvd:
 * versions changed, packages added and removed, and the closure-size delta.
 */
import { argvChunks } from "./argv";
import { runLocal } from "./local";

export interface ClosureDiff {
    /** "hello: 2.12.1 → 2.12.2" lines, sorted by package name. */
    changed: string[];
    added: string[];
    removed: string[];
    /** Closure size of the new system minus the old one, in bytes; undefined when the old closure is unknown here. */
    sizeDelta?: number;
}

const NAME_VERSION = /^[0-9a-z]{32}-(.+?)(?:-(\d[^-]*))?$/;

/** Splits a store path's name into package name and version, as diff-closures does. */
export function parsePackage(storePath: string): { name: string; version: string } {
    const base = storePath.replace(/^\/nix\/store\//, "");
    const m = NAME_VERSION.exec(base);
    if (!m) return { name: base, version: "" };
    return { name: m[1], version: m[2] ?? "" };
}

function versions(paths: string[]): Map<string, Set<string>> {
    const m = new Map<string, Set<string>>();
    for (const p of paths) {
        const { name, version } = parsePackage(p);
        // The system's own derivations change on every edit and say nothing about packages.
        if (/^(nixos-system-|system-path$|etc$|unit-|initrd-|nixos-version)/.test(name)) continue;
        if (!m.has(name)) m.set(name, new Set());
        m.get(name)!.add(version);
    }
    return m;
}

function fmt(vs: Set<string> | undefined): string {
    return vs && vs.size ? [...vs].sort().join(", ") || "∅" : "∅";
}

export function diffPackageSets(oldPaths: string[], newPaths: string[]): Omit<ClosureDiff, "sizeDelta"> {
    const a = versions(oldPaths);
    const b = versions(newPaths);
    const changed: string[] = [];
    const added: string[] = [];
    const removed: string[] = [];
    for (const name of [...new Set([...a.keys(), ...b.keys()])].sort()) {
        const va = a.get(name);
        const vb = b.get(name);
        if (!va) added.push(`${name}: ∅ → ${fmt(vb)}`);
        else if (!vb) removed.push(`${name}: ${fmt(va)} → ∅`);
        else if (fmt(va) !== fmt(vb)) changed.push(`${name}: ${fmt(va)} → ${fmt(vb)}`);
    }
    return { changed, added, removed };
}

/** Closure and total NAR size of a path in the local store, or undefined when it is not there. */
export async function localClosure(storePath: string, env?: NodeJS.ProcessEnv, o: { size?: boolean } = {}): Promise<{ paths: string[]; size: number } | undefined> {
    const r = await runLocal("nix-store", ["--query", "--requisites", storePath], { env });
    if (r.code !== 0) return undefined;
    const paths = r.stdout.trim().split("\n").filter(Boolean);
    if (o.size === false) return { paths, size: 0 };
    let size = 0;
    // In argv-bounded chunks: a closure of tens of thousands of paths does not fit one command line.
    for (const chunk of argvChunks(paths)) {
        const s = await runLocal("nix-store", ["--query", "--size", ...chunk], { env });
        if (s.code !== 0) return { paths, size: 0 };
        size += s.stdout.trim().split("\n").reduce((x, y) => x + Number(y), 0);
    }
    return { paths, size };
}

export function formatBytes(n: number): string {
    const sign = n < 0 ? "-" : "+";
    const a = Math.abs(n);
    if (a >= 1 << 30) return `${sign}${(a / (1 << 30)).toFixed(1)} GiB`;
    if (a >= 1 << 20) return `${sign}${(a / (1 << 20)).toFixed(1)} MiB`;
    if (a >= 1 << 10) return `${sign}${(a / (1 << 10)).toFixed(1)} KiB`;
    return `${sign}${a} B`;
}
