/** Nix for tests: configured through the environment only, never reaching a cache or registry. */
import { execFile, execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { promisify } from "node:util";
import { NIX_FEATURES } from "../../provider/nix/local";
import { clientKey } from "./state";
import type { Host } from "./host";

const execFileP = promisify(execFile);
export const FIXTURES = path.resolve(__dirname, "..", "fixtures");

/**
 * NIX_CONFIG for tests: only the offline settings (no sandbox, no build users, no substituters, an
 * empty registry). Nothing experimental is enabled, as in a stock Nix: the product enables
 * nix-command and flakes per call, and so does nix() below.
 */
export function nixConfig(): string {
    return [
        "sandbox = false",
        "build-users-group =",
        "substituters =",
        `flake-registry = ${path.join(FIXTURES, "empty-registry.json")}`,
        "warn-dirty = false",
    ].join("\n");
}

export function nixEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
    return { ...process.env, NIX_CONFIG: nixConfig(), ...extra };
}

export async function nix(args: string[], env: Record<string, string> = {}, cmd = "nix"): Promise<string> {
    const { stdout } = await execFileP(cmd, cmd === "nix" ? [...NIX_FEATURES, ...args] : args, { env: nixEnv(env), maxBuffer: 64 << 20 });
    return stdout;
}

/**
 * Copies tests/fixtures to a fresh folder (a path: flake, outside any git tree) with root's
 * authorized keys for the installed systems. Returns the folder; the flake is at <dir>/flake.
 */
export function fixtureCopy(authorizedKeys: string[] = [clientKey().publicKey]): string {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pnx-fixtures-"));
    fs.cpSync(FIXTURES, dir, { recursive: true });
    fs.writeFileSync(path.join(dir, "flake", "authorized_keys"), authorizedKeys.join("\n") + "\n");
    fs.writeFileSync(path.join(dir, "non-flake", "authorized_keys"), authorizedKeys.join("\n") + "\n");
    return dir;
}

/** Builds nixosConfigurations.<name>.config.system.build.<attr> of a fixture copy; returns the store path. */
export async function buildFixture(dir: string, name: string, attr = "toplevel"): Promise<string> {
    const out = await nix(["build", "--no-link", "--json", `path:${dir}/flake#nixosConfigurations.${name}.config.system.build.${attr}`]);
    return JSON.parse(out)[0].outputs.out as string;
}

/** NIX_SSHOPTS that log in with the test client key and verify the host's key. */
export function sshOpts(host: Host): { NIX_SSHOPTS: string; knownHosts: string } {
    const knownHosts = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "pnx-kh-")), "known_hosts");
    const pattern = host.port === 22 ? host.address : `[${host.address}]:${host.port}`;
    fs.writeFileSync(knownHosts, `${pattern} ${host.hostKey}\n`);
    // Nix 2.8 cannot take a port in the store URL; it goes here.
    const opts = ["-i", clientKey().privateKeyPath, "-p", String(host.port), "-o", `UserKnownHostsFile=${knownHosts}`,
        "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-o", "ControlMaster=no", "-o", "ControlPath=none"];
    return { NIX_SSHOPTS: opts.join(" "), knownHosts };
}

/**
 * A directory to put first on PATH whose `nix` and `nix-store` write each call to a log, then run
 * the real ones (those PATH finds now) with the same arguments: counts what a run asks Nix to do.
 * `calls("nix eval")`, `calls("nix-store --realise")`: the calls of that tool whose arguments
 * (after the per-call feature flag) start so.
 */
export function countingNix(): { dir: string; calls: (prefix: string) => number } {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pnx-nix-count-"));
    const log = path.join(dir, "calls.log");
    fs.writeFileSync(log, "");
    for (const tool of ["nix", "nix-store"]) {
        const real = execFileSync("sh", ["-c", `command -v ${tool}`], { encoding: "utf8" }).trim();
        fs.writeFileSync(path.join(dir, tool), `#!/bin/sh\necho "${tool} $*" >> '${log}'\nexec '${real}' "$@"\n`, { mode: 0o755 });
    }
    const calls = (prefix: string) =>
        fs
            .readFileSync(log, "utf8")
            .split("\n")
            .filter((l) => l.replace(/^nix --extra-experimental-features nix-command flakes /, "nix ").startsWith(prefix + " ")).length;
    return { dir, calls };
}
