/**
 * disko: puts the disk-encryption keys into the installer's RAM, copies the disko script's closure
 * and runs it in the chosen mode. Before a destroying run, it refuses to touch a machine that
 * already holds an installed NixOS unless reinstalling was explicitly allowed. A disk that holds
 * the very system being installed (an earlier run installed it and was interrupted before
 * recording that) is mounted instead of formatted, so that run's work is resumed, never wiped.
 */
import { NixosDeployError } from "../errors";
import type { Cache } from "../nix/cache";
import { BuildOn, deliver } from "../nix/deliver";
import { sh } from "../ssh/shell";
import type { PhaseContext } from "./context";
import { writeFile } from "./files";
import { runOnce } from "./run-once";

export type DiskoMode = "disko" | "format" | "mount";

const FIND_INSTALLED = sh`
m=$(mktemp -d)
for dev in /dev/vd* /dev/sd* /dev/xvd* /dev/nvme*n* /dev/mmcblk*; do
  [ -b "$dev" ] || continue
  mount -o ro "$dev" "$m" 2>/dev/null || continue
  # -L: the profile is a symlink to an absolute store path that only resolves inside that system.
  # It sits at the top (plain file system), under a subvolume-like folder (btrfs "@", "root"), or
  # at var/nix/... of a separate /nix file system.
  for p in "$m/nix/var/nix/profiles/system" "$m"/*/nix/var/nix/profiles/system "$m/var/nix/profiles/system"; do
    # The profile links to a generation link (system-N-link), which links to the system.
    if [ -L "$p" ] || [ -e "$p" ]; then
      t=$(readlink "$p"); case $t in /*) ;; *) t=$(readlink "\${p%/*}/$t") ;; esac
      echo "$dev \${t:-unknown}"; break
    fi
  done
  umount "$m"
done
rmdir "$m"
`;

/** Block devices holding an installed NixOS (a system profile on their file system), and its system. */
export async function installedSystems(ctx: PhaseContext): Promise<{ device: string; system: string }[]> {
    const r = await ctx.target.run(FIND_INSTALLED, { phase: "disko", what: "looking for an installed system on the disks" });
    return r.stdout
        .split("\n")
        .filter(Boolean)
        .map((l) => ({ device: l.split(" ")[0], system: l.split(" ")[1] ?? "" }));
}

export interface DiskoOptions {
    mode: DiskoMode;
    script?: string;
    scriptDrv?: string;
    buildOn?: BuildOn;
    diskEncryptionKeys: Record<string, string>;
    allowReinstall: boolean;
    substitute: boolean;
    cache?: Cache;
    /** The system being installed and its mount script: a disk already holding it is mounted. */
    resume?: { toplevel: string; mountScript: string; mountScriptDrv?: string };
}

/**
 * Before the destroying mode: refuses disks that hold an installed NixOS, unless allowed; when
 * they all hold the system being installed, returns the options that mount them instead.
 */
async function guardInstalled(ctx: PhaseContext, o: DiskoOptions): Promise<DiskoOptions> {
    if (o.mode !== "disko" || o.allowReinstall) return o;
    const found = await installedSystems(ctx);
    if (found.length === 0) return o;
    const devices = found.map((f) => f.device).join(", ");
    if (o.resume && found.every((f) => f.system === o.resume!.toplevel)) {
        ctx.log("disko", `${devices} already ${found.length > 1 ? "hold" : "holds"} ${o.resume.toplevel}, installed by an earlier run: mounting instead of formatting`);
        return { ...o, mode: "mount", script: o.resume.mountScript, scriptDrv: o.resume.mountScriptDrv };
    }
    throw new NixosDeployError({
        host: ctx.target.name,
        phase: "disko",
        what: `refusing to format: ${devices} already ${found.length > 1 ? "hold" : "holds"} an installed NixOS`,
        hint: "reinstalling wipes these disks; set allowReinstall: true to do it anyway, or use diskoMode \"mount\" to install over the existing file systems",
    });
}

export async function disko(ctx: PhaseContext, options: DiskoOptions): Promise<void> {
    const t = ctx.target;
    if (!options.script) {
        throw new NixosDeployError({
            host: "localhost",
            phase: "disko",
            what: `the configuration provides no ${options.mode === "disko" ? "diskoScript" : options.mode + "Script"}`,
            hint: "import disko's NixOS module in the configuration, or leave \"disko\" out of phases and mount /mnt yourself",
        });
    }
    const o = await guardInstalled(ctx, options);
    for (const [file, key] of Object.entries(o.diskEncryptionKeys)) {
        // The installer's /tmp and /run are RAM: the key never reaches a disk.
        await writeFile(t, "disko", file, key, { mode: "0600" });
    }
    const script = o.script!;
    const copied = await deliver(t, [{ out: script, drv: o.scriptDrv }], { phase: "disko", buildOn: o.buildOn ?? "auto", substitute: o.substitute, cache: o.cache, log: (l) => ctx.log("disko", l), env: ctx.env });
    ctx.log("disko", `running the disko script in ${o.mode} mode${copied.copied ? "" : " (already on the target)"}`);
    await runOnce(ctx, sh`${script}`, { what: `the disko script (${o.mode} mode)`, timeoutS: 30 * 60, phase: "disko" });
}
