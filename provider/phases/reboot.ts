/**
 * reboot: restarts the target and confirms that the installed system came up: a new boot id, the
 * pinned host key, os-release saying NixOS (not the installer) and /run/current-system being the
 * installed toplevel. A failed install never reaches this phase.
 */
import { NixosDeployError } from "../errors";
import { HostKeyMismatchError } from "../ssh/connection";
import type { PhaseContext } from "./context";

export interface BootCheck {
    bootId: string;
    currentSystem: string;
}

const PROBE = `cat /proc/sys/kernel/random/boot_id; readlink /run/current-system || true; . /etc/os-release; echo "$ID \${VARIANT_ID:-}"`;

async function probe(ctx: PhaseContext, phase: string): Promise<{ bootId: string; currentSystem: string; os: string }> {
    const out = (await ctx.target.run(PROBE, { phase })).stdout.split("\n");
    return { bootId: out[0]?.trim() ?? "", currentSystem: out[1]?.trim() ?? "", os: out[2]?.trim() ?? "" };
}

/**
 * Reboots and waits, at most timeoutS seconds, for the system to return with expectedHostKey.
 */
export async function rebootInto(
    ctx: PhaseContext,
    o: { toplevel: string; expectedHostKey: string; port?: number; user?: string; timeoutS: number; phase?: string },
): Promise<BootCheck> {
    const phase = o.phase ?? "reboot";
    const t = ctx.target;
    const before = await probe(ctx, phase);
    const oldFingerprint = t.hostKeyFingerprint;
    const deadline = Date.now() + o.timeoutS * 1000;
    // Detached with a short delay, so this command returns before the machine goes down.
    await t.run("setsid -f sh -c 'sleep 1; reboot' </dev/null >/dev/null 2>&1 || (nohup sh -c 'sleep 1; reboot' </dev/null >/dev/null 2>&1 &)", { phase });
    ctx.log(phase, "rebooting");
    await t.waitForDisconnect(phase, o.timeoutS);
    for (;;) {
        const left = Math.ceil((deadline - Date.now()) / 1000);
        if (left <= 0) throw new NixosDeployError({ host: t.name, phase, what: `the machine did not come back within ${o.timeoutS} s` });
        try {
            await t.reconnect(phase, left, { port: o.port ?? t.options.port, user: o.user ?? t.options.user, hostKey: o.expectedHostKey });
        } catch (e) {
            // The old system (still going down) shows its old key: not an impostor, just early.
            if (e instanceof HostKeyMismatchError && e.offered === oldFingerprint) {
                await new Promise((r) => setTimeout(r, 300));
                continue;
            }
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
