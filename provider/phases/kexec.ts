/**
 * kexec: boots the target into a NixOS installer from a kexec tarball laid out like nixos-images'
 * (kexec/run, bzImage, initrd). Every wait is bounded; success means a new boot id and an
 * installer answering on the post-kexec port.
 */
import * as fs from "node:fs";
import { utils } from "ssh2";
import { NixosDeployError } from "../errors";
import { ConnectionOptions, HostKeyMismatchError, isAuthFailure } from "../ssh/connection";
import { derivedAccessKey } from "../ssh/derived-key";
import { sameHostKey } from "../ssh/hostkey";
import { Command, sh } from "../ssh/shell";
import type { Target } from "../ssh/target";
import { Deadline, poll } from "../wait";
import type { PhaseContext } from "./context";
import { parseFacts, gatherFacts, Facts } from "./facts";
import { writeFile } from "./files";

export function defaultKexecUrl(arch: string): string {
    return `https://github.com/nix-community/nixos-images/releases/download/nixos-unstable/nixos-kexec-installer-noninteractive-${arch}-linux.tar.gz`;
}

export interface KexecOptions {
    tarball?: string;
    /** The installer's sshd port: 22 for nixos-images' image, whatever port the old system used. */
    postKexecSshPort: number;
    timeoutS: number;
    /** Carry the machine's SSH host keys into the installer's RAM for the install phase to keep. */
    keepHostKeys?: boolean;
    /** The key that reaches the installer as root (see installerAccess). */
    access: InstallerAccess;
}

export interface InstallerAccess {
    privateKey: string;
    privateKeyPassword?: string;
    publicKey: string;
    /**
     * Made for this install at random (an agent login: no key or password to derive it from), so
     * it is recorded, secret, for a resume. A password login's key is derived and never recorded.
     */
    generated: boolean;
}

/** Where the old system's host keys wait in the installer's RAM (tmpfs), as base64 of a tar. */
export const KEPT_HOST_KEYS = "/run/pulumi-nixos/old-host-keys.tar.b64";

/**
 * The key that will reach the installer as root. kexec/run carries only authorized_keys files
 * (root's, $SUDO_USER's, /etc/ssh/authorized_keys.d), never a password login or an
 * AuthorizedKeysCommand: so, like nixos-anywhere, a key the deployer holds is put into root's file
 * first. That is connection.privateKey when there is one; for a password login, a key derived from
 * the password (a run that lost its state derives the same one); for an agent login, a key made for
 * this install (`made`, when an earlier run recorded it).
 */
export function installerAccess(connection: { host: string; privateKey?: string; privateKeyPassword?: string; password?: string }, made?: string): InstallerAccess {
    const derived = !connection.privateKey && connection.password ? derivedAccessKey(connection.password, connection.host).privateKey : undefined;
    const privateKey = connection.privateKey ?? derived ?? made ?? utils.generateKeyPairSync("ed25519").private;
    const passphrase = connection.privateKey ? connection.privateKeyPassword : undefined;
    const k = utils.parseKey(privateKey, passphrase);
    if (k instanceof Error) {
        throw new NixosDeployError({ host: "localhost", phase: "facts", what: `connection.privateKey cannot be read: ${k.message}`, hint: "give an OpenSSH or PEM private key, with connection.privateKeyPassword when it is encrypted" });
    }
    const key = Array.isArray(k) ? k[0] : k;
    return { privateKey, privateKeyPassword: passphrase, publicKey: `${key.type} ${key.getPublicSSH().toString("base64")}`, generated: !connection.privateKey && !derived };
}

/** How the installer is reached: as root on its port with the access key, never the old login's password or agent. */
export function installerLogin(access: InstallerAccess, port: number): Partial<ConnectionOptions> {
    return { user: "root", port, privateKey: access.privateKey, privateKeyPassword: access.privateKeyPassword, password: undefined, agentSocketPath: undefined };
}

/** Adds the public key to root's authorized_keys unless it is there (it goes on stdin, not argv). */
const AUTHORIZE = sh`k=$(cat); h=$(getent passwd root | cut -d: -f6); h=\${h:-/root}
mkdir -p "$h/.ssh" && chmod 700 "$h/.ssh" && touch "$h/.ssh/authorized_keys" &&
{ grep -qxF -- "$k" "$h/.ssh/authorized_keys" || printf '%s\\n' "$k" >> "$h/.ssh/authorized_keys"; } && grep -qxF -- "$k" "$h/.ssh/authorized_keys"`;

/**
 * A URL as logs and errors show it: without user, password, query or fragment, where presigned
 * and private image URLs carry their secrets.
 */
export function shownUrl(url: string): string {
    const u = new URL(url);
    const hidden = u.username || u.password ? "…@" : "";
    return `${u.protocol}//${hidden}${u.host}${u.pathname}${u.search || u.hash ? "?…" : ""}`;
}

/**
 * The download: the URL goes to curl or wget on stdin (curl's config, wget's URL list), never on
 * the command line, where any user of the machine could read it.
 */
function download(facts: Facts, url: string): { fetch: Command; stdin: string } | undefined {
    if (facts.has.curl) return { fetch: sh`curl -fsSL --config -`, stdin: `url = "${url.replace(/[\\"]/g, "\\$&")}"\n` };
    if (facts.has.wget) return { fetch: sh`wget -qO- -i -`, stdin: `${url}\n` };
    return undefined;
}

async function unpack(ctx: PhaseContext, facts: Facts, source: string): Promise<void> {
    const t = ctx.target;
    const into = sh`rm -rf /root/kexec && mkdir -p /root/kexec && tar -C /root/kexec -xzf -`;
    if (/^https?:\/\//.test(source)) {
        ctx.log("kexec", `downloading ${shownUrl(source)} on the target`);
        const d = download(facts, source);
        if (!d) {
            throw new NixosDeployError({ host: t.name, phase: "kexec", what: "neither curl nor wget is on the target to download the kexec image", hint: "install curl, or pass a local file as kexecTarball" });
        }
        await t.run(sh`${d.fetch} | (${into})`, { phase: "kexec", stdin: d.stdin, what: `downloading and unpacking ${shownUrl(source)}` });
        return;
    }
    if (!fs.existsSync(source)) {
        throw new NixosDeployError({ host: "localhost", phase: "kexec", what: `kexecTarball ${source} does not exist` });
    }
    ctx.log("kexec", `uploading ${source} (${(fs.statSync(source).size / 1048576).toFixed(1)} MiB)`);
    await t.run(into, { phase: "kexec", stdin: fs.createReadStream(source), what: "unpacking the kexec tarball" });
}

/**
 * Waits until the old system stops answering on the session that started the kexec: kexec/run
 * returns seconds before the kexec, and the old system answers until then. Logging in again
 * before it is gone would reach the old system, where root may not log in at all.
 */
async function waitForOldSystemToGo(ctx: PhaseContext, bootId: string, deadline: Deadline): Promise<void> {
    const t = ctx.target;
    await poll(deadline, { intervalMs: 100, factor: 2, maxIntervalMs: 1000 }, async () => {
        const r = await t.run(sh`cat /proc/sys/kernel/random/boot_id`, { phase: "kexec", allowFailure: true, timeoutMs: 3000 }).catch(() => undefined);
        return !r || r.code !== 0 || r.stdout.trim() !== bootId ? true : undefined;
    });
    t.close();
}

export async function kexec(ctx: PhaseContext, facts: Facts, o: KexecOptions): Promise<Facts> {
    const t = ctx.target;
    await unpack(ctx, facts, o.tarball ?? defaultKexecUrl(facts.arch));
    await t.run(AUTHORIZE, { phase: "kexec", stdin: o.access.publicKey, what: "authorizing the deployer's key for root, so that kexec/run carries it into the installer" });
    // Read into memory only: the keys never touch the deployer's disk, state or logs.
    const kept = o.keepHostKeys
        ? (await t.run(sh`cd /etc/ssh && ls ssh_host_*_key >/dev/null && tar -cf - ssh_host_* | base64 -w0`, { phase: "kexec", what: "reading the SSH host keys to keep", secretOutput: true })).stdout
        : "";
    const r = await t.run(sh`/root/kexec/kexec/run`, { phase: "kexec", allowFailure: true, timeoutMs: 120_000 });
    if (r.code !== 0 || !/machine will boot into nixos/.test(r.stdout + r.stderr)) {
        throw new NixosDeployError({ host: t.name, phase: "kexec", what: "the kexec script did not start the installer", exitCode: r.code, stderr: r.stderr + r.stdout });
    }
    ctx.log("kexec", "the target is booting into the installer");
    const pinned = t.options.hostKey;
    const deadline = new Deadline(o.timeoutS);
    await waitForOldSystemToGo(ctx, facts.bootId, deadline);
    // The installer: root, on its own port, with the key put in place above. Its host key is the
    // old one when the image carries it, else learned on this first connection, which must show a
    // new boot id and an installer.
    const now = await reachNewBoot(ctx, facts.bootId, deadline, o, { ...installerLogin(o.access, o.postKexecSshPort), hostKey: undefined, alsoAccept: [] });
    if (!now.isInstaller) {
        throw new NixosDeployError({ host: t.name, phase: "kexec", what: `the machine rebooted into ${now.distro || "an unknown system"}, not a NixOS installer` });
    }
    t.options = { ...t.options, hostKey: t.hostKey };
    if (kept) await writeFile(t, "kexec", KEPT_HOST_KEYS, kept, { mode: "0600" });
    ctx.log("kexec", `installer is up, host key ${t.hostKeyFingerprint}${pinned && sameHostKey(t.hostKey, pinned) ? " (carried over)" : ""}`);
    return gatherFacts(ctx);
}

/** Connects with `changes` until a boot other than `oldBootId` answers; returns its facts. */
async function reachNewBoot(ctx: PhaseContext, oldBootId: string, deadline: Deadline, o: KexecOptions, changes: Partial<ConnectionOptions>): Promise<Facts> {
    const t = ctx.target;
    const now = await poll(deadline, { intervalMs: 100, factor: 2, maxIntervalMs: 1000 }, async () => {
        if (!(await connectAsRoot(t, deadline, changes))) return undefined;
        const r = await t.run(sh`cat /proc/sys/kernel/random/boot_id | sed 's/^/boot_id=/'; . /etc/os-release; echo distro=$ID; echo variant=\${VARIANT_ID:-}`, { phase: "kexec", allowFailure: true }).catch(() => undefined);
        const f = r && r.code === 0 ? parseFacts(r.stdout) : undefined;
        if (f && f.bootId && f.bootId !== oldBootId) return f;
        t.close();
        return undefined;
    });
    if (now) return now;
    throw new NixosDeployError({
        host: t.name,
        phase: "kexec",
        what: `the installer did not answer SSH on port ${o.postKexecSshPort} within ${o.timeoutS} s`,
        hint: "if the target has little RAM the installer may have failed unpacking its initrd; check the machine's console",
    });
}

/** One connection as root to whatever answers; false while nothing does. A refused login is final. */
async function connectAsRoot(t: Target, deadline: Deadline, changes: Partial<ConnectionOptions>): Promise<boolean> {
    try {
        await t.reconnect("kexec", deadline.leftS, changes);
        return true;
    } catch (e) {
        if (e instanceof HostKeyMismatchError) throw e;
        if (!isAuthFailure(e)) return false;
        throw new NixosDeployError({
            host: t.name,
            phase: "kexec",
            what: "the installer refused root's login with the key that kexec/run should have carried",
            hint: "a custom kexec image must carry root's authorized_keys as nixos-images' does; reach the machine through its console",
            cause: e,
        });
    }
}
