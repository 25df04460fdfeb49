/**
 * `npm run demo`: boots an embedded target machine (a test-bed host: plain Debian with one empty
 * disk), runs the root Pulumi program against it through the real Pulumi CLI (install NixOS via
 * kexec, disko, nixos-install, reboot), previews and applies a follow-up configuration change,
 * then destroys the stack and the target.
 */
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { createHost } from "../tests/testbed/host";
import { buildKexecTarball } from "../tests/testbed/kexec";
import { fixtureCopy, nixConfig } from "../tests/testbed/nix";
import { clientKey } from "../tests/testbed/state";
import { engineEnv } from "../tests/e2e/engine";

const ROOT = path.resolve(__dirname, "..");

function pulumi(args: string[], env: NodeJS.ProcessEnv, input?: string): Promise<void> {
    console.log(`\n$ pulumi ${args.join(" ")}`);
    return new Promise((resolve, reject) => {
        const child = spawn("pulumi", args, { cwd: ROOT, env, stdio: [input === undefined ? "ignore" : "pipe", "inherit", "inherit"] });
        if (input !== undefined) child.stdin!.end(input);
        child.on("error", reject);
        child.on("close", (code) => (code === 0 ? resolve() : reject(new Error(`pulumi ${args[0]} exited ${code}`))));
    });
}

async function main(): Promise<void> {
    const work = fs.mkdtempSync(path.join(os.tmpdir(), "pulumi-nixos-demo-"));
    const fixtures = fixtureCopy();
    const env = engineEnv(work, { NIX_CONFIG: nixConfig() });
    console.log("demo: booting the embedded target (Debian, one empty 256 MiB disk)");
    const host = await createHost({ name: "demo", disks: [256] });
    try {
        console.log(`demo: target ${host.address}, host key ${host.hostKey}`);
        const tarball = buildKexecTarball(work);
        await pulumi(["stack", "init", "demo"], env);
        const set = (k: string, v: string) => pulumi(["config", "set", k, v], env);
        await set("host", host.address);
        await set("hostKey", host.hostKey);
        await set("privateKeyFile", clientKey().privateKeyPath);
        await set("kexecTarball", tarball);
        await set("flake", `path:${fixtures}/flake#web`);
        await pulumi(["up", "--yes", "--skip-preview"], env);
        console.log("\ndemo: a follow-up change: the configuration with hello 2.12.2");
        await set("flake", `path:${fixtures}/flake#web-bumped`);
        await pulumi(["preview", "--diff"], env);
        await pulumi(["up", "--yes", "--skip-preview"], env);
        await pulumi(["destroy", "--yes", "--skip-preview"], env);
        await pulumi(["stack", "rm", "--yes", "demo"], env);
    } finally {
        await host.destroy();
        fs.rmSync(work, { recursive: true, force: true });
        fs.rmSync(fixtures, { recursive: true, force: true });
        console.log("demo: target removed");
    }
}

main().catch((err) => {
    console.error(`demo failed: ${err instanceof Error ? err.message : err}`);
    process.exit(1);
});
