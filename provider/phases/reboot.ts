/**
 * reboot: restarts the target and confirms that the installed system came up: a new boot id, the
 * pinned host key, os-release saying NixOS (not the installer) and /run/current-system being the
 * installed toplevel. A failed install never reaches this phase.
 */
import { NixosDeployError } from "../errors";
import { ConnectionOptions, HostKeyMismatchError, isAuthFailure, isDropped } from "../ssh/connection";
import { sh } from "../ssh/shell";
import { Deadline, poll } from "../wait";
import type { PhaseContext } from "./context";
import { keyValues } from "./facts";
import { sshdPorts } from "./sshd-ports";

/**
 * What nixos-anywhere does in the installer before its reboot: unmount /mnt, turn swap off, and
 * export ZFS pools. A pool left imported by the installer is "in use from another system" at boot;
 * with boot.zfs.forceImportRoot = false it is not imported, and the machine does not come back.
 */
const RELEASE_DISKS = sh`umount -R /mnt 2>/dev/null; swapoff -a 2>/dev/null
if command -v zpool >/dev/null 2>&1 && [ -n "$(zpool list -H -o name 2>/dev/null)" ]; then zpool export -a; fi`;

export async function releaseDisks(ctx: PhaseContext): Promise<void> {
    await ctx.target.run(RELEASE_DISKS, {
        phase: "reboot",
        what: "exporting the ZFS pools before the reboot failed",
        hint: "a pool that stays imported by the installer does not import at boot; see which file system is still busy in the installer",
    });
}

export interface BootCheck {
    bootId: string;
    currentSystem: string;
}

const PROBE = sh`echo "boot_id=$(cat /proc/sys/kernel/random/boot_id)"; echo "current_system=$(readlink /run/current-system)"; . /etc/os-release; echo "os=$ID \${VARIANT_ID:-}"`;

async function probe(ctx: PhaseContext, phase: string): Promise<{ bootId: string; currentSystem: string; os: string }> {
    const kv = keyValues((await ctx.target.run(PROBE, { phase })).stdout);
    return { bootId: kv.get("boot_id") ?? "", currentSystem: kv.get("current_system") ?? "", os: kv.get("os") ?? "" };
}

/**
 * Asks for the reboot, detached, with no delay. The session may drop before the command's exit
 * status arrives; that is the reboot under way, not a failure. A reboot that never happened is
 * caught afterwards: the old boot id keeps answering.
 */
async function startReboot(ctx: PhaseContext, phase: string): Promise<void> {
    const cmd = sh`setsid -f reboot </dev/null >/dev/null 2>&1 || (nohup reboot </dev/null >/dev/null 2>&1 &)`;
    await ctx.target.run(cmd, { phase, what: "the reboot command failed" }).catch((e: unknown) => {
        if (!isDropped(e)) throw e;
    });
}

/**
 * Reboots and waits, at most timeoutS seconds, for the system to return with expectedHostKey.
 * `login` is how to log in afterwards (by default the current connection's settings). After an
 * install it is the configured connection; the new system may listen on 22 rather than the old
 * system's port, and may not have the old system's login user: both are tried, then 22 and root.
 */
export async function rebootInto(
    ctx: PhaseContext,
    o: { toplevel: string; expectedHostKey: string; login?: Partial<ConnectionOptions>; timeoutS: number; phase?: string },
): Promise<BootCheck> {
    const phase = o.phase ?? "reboot";
    const t = ctx.target;
    const before = await probe(ctx, phase);
    const deadline = new Deadline(o.timeoutS);
    const login = new LoginAfterReboot(ctx, phase, o.expectedHostKey, o.login ?? {}, sshdPorts(o.toplevel));
    await startReboot(ctx, phase);
    ctx.log(phase, "rebooting");
    await t.waitForDisconnect(phase, o.timeoutS);
    const now = await poll(deadline, { intervalMs: 100, factor: 2, maxIntervalMs: 1000 }, async () => {
        if (!(await login.attempt(deadline))) return undefined;
        const p = await probe(ctx, phase).catch(() => undefined);
        if (p && p.bootId !== before.bootId) return p;
        t.close();
        return undefined;
    });
    if (!now) throw new NixosDeployError({ host: t.name, phase, what: `the machine did not come back within ${o.timeoutS} s` });
    if (now.os === before.os && now.os.trim() !== "nixos") {
        throw new NixosDeployError({
            host: t.name,
            phase,
            what: `the machine came back into "${now.os}" again, the system it ran before the reboot, instead of the installed NixOS`,
            hint: "a rescue or netboot mode that persists across reboots (OVH's netboot rescue) boots it again: set the machine to boot from its disk in the provider's panel and restart it there; the next pulumi up finds the installed system and completes the install",
        });
    }
    if (now.os.startsWith("nixos installer") || !now.os.startsWith("nixos")) {
        throw new NixosDeployError({ host: t.name, phase, what: `the machine booted "${now.os}" instead of the installed NixOS`, hint: "check the boot order and that the boot loader was installed to the right disk" });
    }
    if (now.currentSystem !== o.toplevel) {
        throw new NixosDeployError({ host: t.name, phase, what: `the machine booted ${now.currentSystem || "an unknown system"} instead of ${o.toplevel}` });
    }
    ctx.log(phase, `the installed system is running (boot ${now.bootId})`);
    return { bootId: now.bootId, currentSystem: now.currentSystem };
}

/**
 * Logging in after a reboot, one attempt at a time: on the ports the installed system's sshd
 * listens on (its sshd_config), the login's port, then 22 (a few seconds each), as the login user
 * and, when that user is refused, as root. The old system still going down (its old key) is only
 * early; any other key is final.
 */
class LoginAfterReboot {
    private user: string;
    private readonly ports: number[];
    private readonly oldKey: string;
    private readonly oldFingerprint: string;
    private tries = 0;

    constructor(private readonly ctx: PhaseContext, private readonly phase: string, private readonly hostKey: string, private readonly login: Partial<ConnectionOptions>, systemPorts: number[]) {
        const t = ctx.target;
        this.user = login.user ?? t.options.user ?? "root";
        this.ports = [...new Set([...systemPorts, login.port ?? t.options.port ?? 22, 22])];
        this.oldKey = t.hostKey;
        this.oldFingerprint = t.hostKeyFingerprint;
    }

    async attempt(deadline: Deadline): Promise<boolean> {
        const port = this.ports[this.tries++ % this.ports.length];
        try {
            // The old system's key too: still going down (its boot id), or booted again (a rescue mode that persists).
            const keys = { hostKey: this.hostKey, alsoAccept: this.oldKey ? [this.oldKey] : [] };
            await this.ctx.target.reconnect(this.phase, this.ports.length > 1 ? Math.min(deadline.leftS, 5) : deadline.leftS, { ...this.login, port, user: this.user, ...keys });
            return true;
        } catch (e) {
            if (e instanceof HostKeyMismatchError && e.offered !== this.oldFingerprint) throw this.otherKey(e);
            if (isAuthFailure(e)) return this.refused(e);
            return false;
        }
    }

    /** Neither the installed system's key nor the old one: a rescue that made new keys as it booted again, or another machine. */
    private otherKey(e: HostKeyMismatchError): NixosDeployError {
        return new NixosDeployError({
            host: this.ctx.target.name,
            phase: this.phase,
            what: `the machine came back with a host key that is neither the installed system's nor the one it had before the reboot (it offered ${e.offered})`,
            hint: "a rescue system booted again makes new keys (a rescue mode that persists across reboots, as OVH's netboot): set the machine to boot from its disk in the provider's panel and restart it there; the next pulumi up finds the installed system and completes the install; otherwise something else answers at this address",
            cause: e,
        });
    }

    private refused(e: unknown): false {
        if (this.user === "root") {
            throw new NixosDeployError({
                host: this.ctx.target.name,
                phase: this.phase,
                what: `the installed system came up but lets neither ${this.login.user ?? "root"} nor root log in with the connection's credentials`,
                hint: "declare the login user (users.users.<name> with its key) or root's authorized keys in the configuration",
                cause: e,
            });
        }
        // The login user of the old system ("admin", "ubuntu") may not exist in the new one.
        this.ctx.log(this.phase, `${this.user} cannot log in to the installed system; checking it as root`);
        this.user = "root";
        return false;
    }
}
