/**
 * Test-bed self-check: boots an installer target, installs the fixture NixOS system by hand the way
 * the install resource will, switches it to a newer configuration, and tears the target down.
 */
import { createHost } from "../tests/testbed/host";
import { copyClosure, installFixture } from "../tests/testbed/install";
import { buildFixture, fixtureCopy, nix } from "../tests/testbed/nix";
import { sshRun } from "../tests/testbed/ssh";

async function main(): Promise<void> {
    const t0 = Date.now();
    const step = (s: string) => console.log(`demo: ${((Date.now() - t0) / 1000).toFixed(1)}s ${s}`);
    const dir = fixtureCopy();
    const host = await createHost({ name: "demo", kind: "installer", disks: [256] });
    try {
        step(`target ${host.address} is up as an installer, host key ${host.hostKey}`);
        const toplevel = await installFixture(host, dir, "web");
        step(`installed ${toplevel}; now booted as ${await host.bootKind()}`);
        const bumped = await buildFixture(dir, "web-bumped");
        console.log((await nix(["store", "diff-closures", toplevel, bumped])).trim());
        await copyClosure(host, bumped);
        const r = await sshRun(host, `nix-env -p /nix/var/nix/profiles/system --set ${bumped} && ${bumped}/bin/switch-to-configuration switch && hello`);
        if (r.code !== 0) throw new Error(r.stderr);
        step(`switched: ${r.stdout.trim().split("\n").pop()}`);
    } finally {
        await host.destroy();
        step("target removed");
    }
}

main().catch((err) => {
    console.error(err);
    process.exit(1);
});
