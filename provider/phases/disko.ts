/**
 * disko: puts the disk-encryption keys into the installer's RAM, copies the disko script's closure
 * and runs it in the chosen mode. Before a destroying run, it refuses to touch a machine that
 * already holds an installed NixOS unless reinstalling was explicitly allowed.
 */
import { NixosDeployError } from "../errors";
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
    if [ -L "$p" ] || [ -e "$p" ]; then echo "$dev"; break; fi
  done
  umount "$m"
done
rmdir "$m"
`;

/** Block devices holding an installed NixOS (a system profile on their file system). */
export async function installedSystems(ctx: PhaseContext): Promise<string[]> {
    const r = await ctx.target.run(FIND_INSTALLED, { phase: "disko", what: "looking for an installed system on the disks" });
    return r.stdout.split("\n").filter(Boolean);
}

export async function disko(
    ctx: PhaseContext,
    o: { mode: DiskoMode; script?: string; scriptDrv?: string; buildOn?: BuildOn; diskEncryptionKeys: Record<string, string>; allowReinstall: boolean; substitute: boolean },
): Promise<void> {
    const t = ctx.target;
    if (!o.script) {
        throw new NixosDeployError({
            host: "localhost",
            phase: "disko",
            what: `the configuration provides no ${o.mode === "disko" ? "diskoScript" : o.mode + "Script"}`,
            hint: "import disko's NixOS module in the configuration, or leave \"disko\" out of phases and mount /mnt yourself",
        });
    }
    if (o.mode === "disko") {
        const found = await installedSystems(ctx);
        if (found.length && !o.allowReinstall) {
            throw new NixosDeployError({
                host: t.name,
                phase: "disko",
                what: `refusing to format: ${found.join(", ")} already ${found.length > 1 ? "hold" : "holds"} an installed NixOS`,
                hint: "reinstalling wipes these disks; set allowReinstall: true to do it anyway, or use diskoMode \"mount\" to install over the existing file systems",
            });
        }
    }
    for (const [file, key] of Object.entries(o.diskEncryptionKeys)) {
        // The installer's /tmp and /run are RAM: the key never reaches a disk.
        await writeFile(t, "disko", file, key, { mode: "0600" });
    }
    const copied = await deliver(t, [{ out: o.script, drv: o.scriptDrv }], { phase: "disko", buildOn: o.buildOn ?? "auto", substitute: o.substitute, log: (l) => ctx.log("disko", l), env: ctx.env });
    ctx.log("disko", `running the disko script in ${o.mode} mode${copied.copied ? "" : " (already on the target)"}`);
    await runOnce(ctx, sh`${o.script}`, { what: `the disko script (${o.mode} mode)`, timeoutS: 30 * 60, phase: "disko" });
}
