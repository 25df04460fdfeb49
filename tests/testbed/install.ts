/**
 * The manual install procedure (the nixos-anywhere steps done by hand) on a test host, for tests
 * that need a machine already running an installed fixture system.
 */
import { buildFixture, nix, sshOpts } from "./nix";
import { sshRun } from "./ssh";
import type { Host } from "./host";

export async function copyClosure(host: Host, storePath: string, toMnt = false): Promise<void> {
    const { NIX_SSHOPTS } = sshOpts(host);
    const url = `ssh://root@${host.address}` + (toMnt ? "?remote-store=local%3Froot%3D%2Fmnt" : "");
    await nix(["copy", "--no-check-sigs", "--to", url, storePath], { NIX_SSHOPTS });
}

async function must(host: Host, command: string): Promise<string> {
    const r = await sshRun(host, command);
    if (r.code !== 0) throw new Error(`'${command}' on ${host.address} exited ${r.code}: ${r.stderr}`);
    return r.stdout;
}

/**
 * Installs fixture configuration `name` from the fixture copy `dir` onto an installer host, and
 * reboots into it unless `reboot` is false; returns the toplevel.
 */
export async function installFixture(host: Host, dir: string, name = "web", o: { reboot?: boolean } = {}): Promise<string> {
    const disko = await buildFixture(dir, name, "diskoScript");
    const toplevel = await buildFixture(dir, name);
    await copyClosure(host, disko);
    await must(host, disko);
    await copyClosure(host, toplevel, true);
    await must(host, `nixos-install --system ${toplevel} --no-root-passwd --no-channel-copy`);
    if (o.reboot === false) return toplevel;
    const boots = host.bootCount();
    await must(host, "reboot");
    await host.waitForReboot(boots);
    return toplevel;
}
