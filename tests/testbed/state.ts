/** Where the test bed keeps its state, and the test run's SSH client key. */
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";

/** Root of all test-bed state on this machine. Overlay upper layers must live on a real file system. */
export function stateDir(): string {
    const dir = process.env.PULUMI_NIXOS_TESTBED_DIR ?? "/var/tmp/pulumi-nixos-testbed";
    fs.mkdirSync(dir, { recursive: true });
    return dir;
}

/** This test run's folder: its host records (for the global teardown) and client key. */
export function runDir(): string {
    const id = process.env.PULUMI_NIXOS_TESTBED_RUN ?? `adhoc-${process.pid}`;
    const dir = path.join(stateDir(), "runs", id);
    fs.mkdirSync(dir, { recursive: true });
    return dir;
}

export interface ClientKey {
    privateKeyPath: string;
    privateKey: string;
    publicKey: string;
}

let cached: ClientKey | undefined;

/** The SSH key pair test clients log in with; generated once per run, mode 0600. */
export function clientKey(): ClientKey {
    if (cached) return cached;
    const dir = path.join(runDir(), "client");
    const file = path.join(dir, "id_ed25519");
    if (!fs.existsSync(file + ".pub")) {
        fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
        const tmp = path.join(dir, `tmp-${process.pid}`);
        fs.rmSync(tmp, { force: true });
        fs.rmSync(tmp + ".pub", { force: true });
        execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "pulumi-nixos-tests", "-f", tmp]);
        // rename is atomic: parallel test files agree on one key
        try {
            fs.linkSync(tmp, file);
            fs.linkSync(tmp + ".pub", file + ".pub");
        } catch {
            /* another process won */
        }
        fs.rmSync(tmp, { force: true });
        fs.rmSync(tmp + ".pub", { force: true });
    }
    cached = {
        privateKeyPath: file,
        privateKey: fs.readFileSync(file, "utf8"),
        publicKey: fs.readFileSync(file + ".pub", "utf8").trim(),
    };
    return cached;
}
