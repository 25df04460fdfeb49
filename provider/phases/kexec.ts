/**
 * kexec: boots the target into a NixOS installer from a kexec tarball laid out like nixos-images'
 * (kexec/run, bzImage, initrd). Every wait is bounded; success means a new boot id and an
 * installer answering on the post-kexec port.
 */
import * as fs from "node:fs";
import { NixosDeployError } from "../errors";
import { quote } from "../ssh/target";
import type { PhaseContext } from "./context";
import { parseFacts, gatherFacts, Facts } from "./facts";
import { writeFile } from "./files";

export function defaultKexecUrl(arch: string): string {
    return `https://github.com/nix-community/nixos-images/releases/download/nixos-unstable/nixos-kexec-installer-noninteractive-${arch}-linux.tar.gz`;
}

export interface KexecOptions {
    tarball?: string;
    postKexecSshPort?: number;
    timeoutS: number;
    /** Carry the machine's SSH host keys into the installer's RAM for the install phase to keep. */
    keepHostKeys?: boolean;
}

/** Where the old system's host keys wait in the installer's RAM (tmpfs), as base64 of a tar. */
export const KEPT_HOST_KEYS = "/run/pulumi-nixos/old-host-keys.tar.b64";

export async function kexec(ctx: PhaseContext, facts: Facts, o: KexecOptions): Promise<Facts> {
    const t = ctx.target;
    const source = o.tarball ?? defaultKexecUrl(facts.arch);
    const unpack = "rm -rf /root/kexec && mkdir -p /root/kexec && tar -C /root/kexec -xzf -";
    if (/^https?:\/\//.test(source)) {
        ctx.log("kexec", `downloading ${source} on the target`);
        const fetch = facts.has.curl ? `curl -fsSL ${quote(source)}` : facts.has.wget ? `wget -qO- ${quote(source)}` : "";
        if (!fetch) {
            throw new NixosDeployError({ host: t.name, phase: "kexec", what: "neither curl nor wget is on the target to download the kexec image", hint: "install curl, or pass a local file as kexecTarball" });
        }
        await t.run(`${fetch} | (${unpack})`, { phase: "kexec", what: `downloading and unpacking ${source}` });
    } else {
        if (!fs.existsSync(source)) {
            throw new NixosDeployError({ host: "localhost", phase: "kexec", what: `kexecTarball ${source} does not exist` });
        }
        ctx.log("kexec", `uploading ${source} (${(fs.statSync(source).size / 1048576).toFixed(1)} MiB)`);
        await t.run(unpack, { phase: "kexec", stdin: fs.createReadStream(source), what: "unpacking the kexec tarball" });
    }
    // Read into memory only: the keys never touch the deployer's disk, state or logs.
    const kept = o.keepHostKeys
        ? (await t.run("cd /etc/ssh && ls ssh_host_*_key >/dev/null && tar -cf - ssh_host_* | base64 -w0", { phase: "kexec", what: "reading the SSH host keys to keep", secretOutput: true })).stdout
        : "";
    const r = await t.run("/root/kexec/kexec/run", { phase: "kexec", allowFailure: true, timeoutMs: 120_000 });
    if (r.code !== 0 || !/machine will boot into nixos/.test(r.stdout + r.stderr)) {
        throw new NixosDeployError({ host: t.name, phase: "kexec", what: "the kexec script did not start the installer", exitCode: r.code, stderr: r.stderr + r.stdout });
    }
    ctx.log("kexec", "the target is booting into the installer");
    // The installer has its own host key unless the image carries the old ones: its key is
    // learned on the first connection that sees a new boot id and an installer.
    const pinned = t.options.hostKey;
    const deadline = Date.now() + o.timeoutS * 1000;
    t.close();
    for (;;) {
        const left = Math.ceil((deadline - Date.now()) / 1000);
        if (left <= 0) {
            throw new NixosDeployError({
                host: t.name,
                phase: "kexec",
                what: `the installer did not answer SSH on port ${o.postKexecSshPort ?? t.options.port ?? 22} within ${o.timeoutS} s`,
                hint: "if the target has little RAM the installer may have failed unpacking its initrd; check the machine's console",
            });
        }
        await t.reconnect("kexec", left, { port: o.postKexecSshPort ?? t.options.port, user: "root", hostKey: undefined });
        let now: Facts;
        try {
            now = parseFacts((await t.run("cat /proc/sys/kernel/random/boot_id | sed 's/^/boot_id=/'; . /etc/os-release; echo distro=$ID; echo variant=${VARIANT_ID:-}", { phase: "kexec" })).stdout);
        } catch {
            // The old system refusing work while it goes down.
            t.close();
            continue;
        }
        if (now.bootId !== facts.bootId) {
            if (!now.isInstaller) {
                throw new NixosDeployError({ host: t.name, phase: "kexec", what: `the machine rebooted into ${now.distro || "an unknown system"}, not a NixOS installer` });
            }
            break;
        }
        t.close();
        await new Promise((res) => setTimeout(res, 500));
    }
    t.options = { ...t.options, hostKey: t.hostKey };
    if (kept) await writeFile(t, "kexec", KEPT_HOST_KEYS, kept, { mode: "0600" });
    ctx.log("kexec", `installer is up, host key ${t.hostKeyFingerprint}${pinned && t.hostKey.split(" ")[1] === pinned.split(" ")[1] ? " (carried over)" : ""}`);
    return gatherFacts(ctx);
}
