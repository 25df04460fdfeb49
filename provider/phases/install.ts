/**
 * install: copies the system closure into /mnt's store, writes extra files and SSH host keys,
 * runs nixos-install and captures the hardware configuration when asked.
 */
import * as path from "node:path";
import { NixosDeployError } from "../errors";
import type { Cache } from "../nix/cache";
import { BuildOn, deliver } from "../nix/deliver";
import { utils } from "ssh2";
import { derivedHostKey } from "../ssh/derived-key";
import { formatHostKey } from "../ssh/hostkey";
import { sh } from "../ssh/shell";
import type { PhaseContext } from "./context";
import { KEPT_HOST_KEYS } from "./kexec";
import { writeExtraFiles, writeHostKey } from "./files";
export { hostKeyPair } from "./files";
import { runOnce } from "./run-once";

export type { ExtraFile } from "./files";
import type { ExtraFile } from "./files";

export type HostKeyPair = "generate" | "keep" | { privateKey: string };

export interface InstallOptions {
    toplevel: string;
    /** The toplevel's derivation, for buildOn "remote". */
    toplevelDrv?: string;
    buildOn?: BuildOn;
    substitute: boolean;
    cache?: Cache;
    extraFiles: Record<string, ExtraFile>;
    copyHostKeys: boolean;
    hostKeyPair: HostKeyPair;
    /** Where the installed system's sshd reads its ed25519 host key (placement.ts). */
    hostKeyPath: string;
    hardwareConfig: "none" | "nixos-generate-config" | "nixos-facter";
    timeoutS: number;
}

/**
 * The installed system's host key, decided before anything runs: "generate" becomes a key derived
 * from the deployer's private key or password (provider/ssh/derived-key.ts). From a private key, a
 * run repeated after losing its state writes the same key and recognises the system it installed.
 * From a password, the key also takes `keySalt`, a random salt kept in the state (returned when it
 * was used, for the caller to record): a run that lost the state makes a new salt, so it plans
 * another key, and meets the system an earlier run installed as an unknown host key (refused, not
 * trusted) rather than turning the password into a test against a public key. `expected` is the
 * key's public line when it is known in advance.
 */
export function planHostKey(
    v: { hostKeyPair: HostKeyPair; copyHostKeys: boolean; connection: { host: string; privateKey?: string; password?: string; hostKey?: string } },
    keySalt: string,
): { hostKeyPair: HostKeyPair; expected?: string; keySalt?: string } {
    if (v.copyHostKeys || v.hostKeyPair === "keep") return { hostKeyPair: "keep", expected: v.connection.hostKey };
    if (typeof v.hostKeyPair === "object") {
        const k = utils.parseKey(v.hostKeyPair.privateKey);
        const key = k instanceof Error ? undefined : Array.isArray(k) ? k[0] : k;
        return { hostKeyPair: v.hostKeyPair, expected: key ? formatHostKey(key.getPublicSSH() as Buffer) : undefined };
    }
    const { privateKey, password } = v.connection;
    // An agent login leaves nothing to derive from: a random key, which a lost state cannot recover.
    if (!privateKey && !password) return { hostKeyPair: "generate" };
    const derived = privateKey ? derivedHostKey({ privateKey }, v.connection.host) : derivedHostKey({ password: password!, salt: keySalt }, v.connection.host);
    return { hostKeyPair: { privateKey: derived.privateKey }, expected: derived.publicKey, keySalt: privateKey ? undefined : keySalt };
}

export interface InstallResult {
    /** The host key the installed system will present, "ssh-ed25519 AAAA…". */
    hostKey: string;
    hardwareConfig: string;
}

export async function install(ctx: PhaseContext, o: InstallOptions): Promise<InstallResult> {
    const t = ctx.target;
    const phase = "install";
    const mounted = await t.run(sh`mountpoint -q /mnt`, { phase, allowFailure: true });
    if (mounted.code !== 0) {
        throw new NixosDeployError({ host: t.name, phase, what: "/mnt is not a mount point, so there is nowhere to install to", hint: "run the disko phase first, or mount the target file systems at /mnt" });
    }
    await deliver(t, [{ out: o.toplevel, drv: o.toplevelDrv }], { phase, buildOn: o.buildOn ?? "auto", root: "/mnt", substitute: o.substitute, cache: o.cache, log: (l) => ctx.log(phase, l), env: ctx.env, timeoutS: o.timeoutS });

    await writeExtraFiles(ctx, phase, "/mnt", o.extraFiles);

    let hostKey: string;
    if (o.copyHostKeys || o.hostKeyPair === "keep") {
        // Keep the old system's keys, which the kexec phase left in the installer's RAM; without a
        // kexec the machine was an installer already and its own keys are kept. Keys already in
        // /mnt (from extraFiles) win.
        // They go where the installed system's sshd reads its keys (services.openssh.hostKeys).
        const dir = `/mnt${path.posix.dirname(o.hostKeyPath)}`;
        await t.run(
            sh`mkdir -p ${dir} && if [ -s ${KEPT_HOST_KEYS} ]; then base64 -d ${KEPT_HOST_KEYS} | tar -C ${dir} --skip-old-files -xpf -; else for k in /etc/ssh/ssh_host_*; do [ -e ${dir}/"\${k##*/}" ] || cp -p "$k" ${dir}/; done; fi`,
            { phase, what: "copying the SSH host keys" },
        );
        hostKey = (await t.run(sh`cut -d' ' -f1-2 ${`/mnt${o.hostKeyPath}.pub`}`, { phase, what: "reading the kept ed25519 host key" })).stdout.trim();
    } else {
        hostKey = await writeHostKey(t, phase, `/mnt${o.hostKeyPath}`, typeof o.hostKeyPair === "object" ? o.hostKeyPair.privateKey : undefined);
    }

    ctx.log(phase, "running nixos-install");
    await runOnce(ctx, sh`nixos-install --system ${o.toplevel} --no-root-passwd --no-channel-copy`, { what: "nixos-install", timeoutS: o.timeoutS });

    let hardwareConfig = "";
    if (o.hardwareConfig === "nixos-generate-config") {
        hardwareConfig = (await t.run(sh`nixos-generate-config --show-hardware-config --no-filesystems --root /mnt`, { phase, what: "nixos-generate-config failed" })).stdout;
    } else if (o.hardwareConfig === "nixos-facter") {
        hardwareConfig = (await t.run(sh`nixos-facter`, { phase, what: "nixos-facter failed" })).stdout;
    }
    return { hostKey, hardwareConfig };
}
