/**
 * reboot: restarts the target and confirms that the installed system came up: a new boot id, the
 * pinned host key, os-release saying NixOS (not the installer) and /run/current-system being the
 * installed toplevel. A failed install never reaches this phase.
 */
import { NixosDeployError } from "../errors";
import { ConnectionOptions, HostKeyMismatchError } from "../ssh/connection";
import { sh } from "../ssh/shell";

function isAuthFailure(e: unknown): boolean {
    return e instanceof NixosDeployError && /authentication methods failed/.test(e.message);
}
import type { PhaseContext } from "./context";
import { keyValues } from "./facts";

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
    const oldFingerprint = t.hostKeyFingerprint;
    const deadline = Date.now() + o.timeoutS * 1000;
    const login = { ...o.login };
    let user = login.user ?? t.options.user ?? "root";
    const ports = [...new Set([login.port ?? t.options.port ?? 22, 22])];
    let attempt = 0;
    // Detached with a short delay, so this command returns before the machine goes down.
    await t.run(sh`setsid -f sh -c 'sleep 1; reboot' </dev/null >/dev/null 2>&1 || (nohup sh -c 'sleep 1; reboot' </dev/null >/dev/null 2>&1 &)`, { phase });
    ctx.log(phase, "rebooting");
    await t.waitForDisconnect(phase, o.timeoutS);
    for (;;) {
        const left = Math.ceil((deadline - Date.now()) / 1000);
        if (left <= 0) throw new NixosDeployError({ host: t.name, phase, what: `the machine did not come back within ${o.timeoutS} s` });
        try {
            // With two ports to try, each gets a few seconds in turn.
            const port = ports[attempt++ % ports.length];
            await t.reconnect(phase, ports.length > 1 ? Math.min(left, 5) : left, { ...login, port, user, hostKey: o.expectedHostKey });
        } catch (e) {
            // The old system (still going down) shows its old key: not an impostor, just early.
            if (e instanceof HostKeyMismatchError && e.offered === oldFingerprint) {
                await new Promise((r) => setTimeout(r, 300));
                continue;
            }
            // The login user of the old system ("admin", "ubuntu") may not exist in the new one.
            if (isAuthFailure(e) && user !== "root") {
                ctx.log(phase, `${user} cannot log in to the installed system; checking it as root`);
                user = "root";
                continue;
            }
            if (isAuthFailure(e)) {
                throw new NixosDeployError({
                    host: t.name,
                    phase,
                    what: `the installed system came up but lets neither ${login.user ?? "root"} nor root log in with the connection's credentials`,
                    hint: "declare the login user (users.users.<name> with its key) or root's authorized keys in the configuration",
                    cause: e,
                });
            }
            if (ports.length > 1 && Date.now() < deadline && !(e instanceof HostKeyMismatchError)) continue;
            throw e;
        }
        let now: Awaited<ReturnType<typeof probe>>;
        try {
            now = await probe(ctx, phase);
        } catch {
            t.close();
            continue;
        }
        if (now.bootId === before.bootId) {
            t.close();
            await new Promise((r) => setTimeout(r, 300));
            continue;
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
}
