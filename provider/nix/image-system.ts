/**
 * The NixOS system a disk image holds, read from the image's derivation before anything is built.
 * disko's image builder installs `systemToInstall`, the configuration extended for its build VM
 * (disko `lib/make-disk-image.nix`: `disko.testMode`, disks renamed to /dev/vda…, GRUB devices
 * forced to /dev/vda or "nodev", `lib/tests.nix` prepareDiskoConfig). That toplevel differs from
 * `config.system.build.toplevel` whenever those settings show in it (a BIOS-boot GPT on /dev/sda,
 * Linode's GRUB devices, whole-disk and MBR layouts), and it is the one the machine boots.
 * Every NixOS toplevel derivation is named `nixos-system-<name>-<label>` (nixpkgs
 * nixos/modules/system/activation/top-level.nix); the image's is the one among its build inputs
 * that holds any others (specialisations are toplevels too, inputs of their parent).
 */
import type { Drv } from "../schema/state";
import { mustLocal } from "./local";

const TOPLEVEL_DRV = /^\/nix\/store\/[0-9a-z]{32}-nixos-system-[^/]*\.drv$/;

const requisites = async (drv: string, env: NodeJS.ProcessEnv) =>
    (await mustLocal("evaluate", `cannot read the build inputs of ${drv}`, "nix-store", ["--query", "--requisites", drv], { env })).trim().split("\n").filter(Boolean);

/** The toplevel an image derivation installs, or undefined when its inputs hold no NixOS system. */
export async function imageSystem(imageDrv: string, env: NodeJS.ProcessEnv = process.env): Promise<Drv | undefined> {
    if (!imageDrv) return undefined;
    const candidates = (await requisites(imageDrv, env)).filter((p) => TOPLEVEL_DRV.test(p));
    let top = candidates.length === 1 ? candidates[0] : undefined;
    for (const c of candidates.length > 1 ? candidates : []) {
        const inner = new Set(await requisites(c, env));
        if (candidates.every((o) => inner.has(o))) top = c;
    }
    if (!top) return undefined;
    const out = (await mustLocal("evaluate", `cannot read the outputs of ${top}`, "nix-store", ["--query", "--outputs", top], { env })).trim().split("\n")[0];
    return { drv: top, out };
}
