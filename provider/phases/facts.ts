/**
 * Host facts, gathered before anything destructive: what nixos-anywhere's facts script reports,
 * plus RAM, disks and boot id. checkKexecPreconditions() turns missing prerequisites into errors
 * that say what is missing, why it is needed and what to do.
 */
import { NixosDeployError } from "../errors";
import { sh } from "../ssh/shell";
import type { PhaseContext } from "./context";

export interface Facts {
    os: string;
    arch: string;
    distro: string;
    variant: string;
    isNixos: boolean;
    isInstaller: boolean;
    isContainer: boolean;
    uid: number;
    has: Record<"tar" | "cpio" | "setsid" | "sudo" | "doas" | "wget" | "curl" | "nix" | "nixosFacter" | "nixosGenerateConfig" | "systemdRun", boolean>;
    setsidWait: boolean;
    ramMiB: number;
    bootId: string;
    currentSystem: string;
    /** The running system was booted by UEFI (/sys/firmware/efi), not BIOS: the firmware an image must suit. */
    efi: boolean;
    /** Whole disks: name and size in bytes. */
    disks: { name: string; bytes: number }[];
}

const SCRIPT = sh`
has() { command -v "$1" >/dev/null 2>&1 && echo 1 || echo 0; }
[ -r /etc/os-release ] && . /etc/os-release
echo "os=$(uname -s)"
echo "arch=$(uname -m)"
echo "distro=\${ID:-unknown}"
echo "variant=\${VARIANT_ID:-}"
c=0; if command -v systemd-detect-virt >/dev/null 2>&1; then systemd-detect-virt -cq && c=1; elif [ -f /.dockerenv ] || [ -f /run/.containerenv ]; then c=1; fi
echo "container=$c"
echo "uid=$(id -u)"
for t in tar cpio setsid sudo doas wget curl nix nixos-facter nixos-generate-config systemd-run; do echo "has_$t=$(has $t)"; done
echo "setsid_wait=$(setsid --wait true >/dev/null 2>&1 && echo 1 || echo 0)"
echo "ram_kb=$(awk '/^MemTotal:/ {print $2}' /proc/meminfo)"
echo "boot_id=$(cat /proc/sys/kernel/random/boot_id)"
echo "efi=$([ -d /sys/firmware/efi ] && echo 1 || echo 0)"
echo "current_system=$(readlink /run/current-system 2>/dev/null)"
for d in /sys/block/* /dev/vd? /dev/sd? /dev/nvme?n?; do
  n=\${d##*/}; case $n in loop*|ram*|zram*|sr*|dm-*|md*|'vd?'|'sd?'|'nvme?n?') continue ;; esac
  [ -b /dev/$n ] || continue
  echo "disk=$n $(blockdev --getsize64 /dev/$n 2>/dev/null || echo 0)"
done | sort -u
`;

/**
 * "key=value" lines as a map. Output is read by key, never by line position: a missing line (no
 * /run/current-system) must leave its key empty, not shift the next value into it.
 */
export function keyValues(out: string): Map<string, string> {
    const kv = new Map<string, string>();
    for (const line of out.split("\n")) {
        const i = line.indexOf("=");
        if (i > 0 && !kv.has(line.slice(0, i))) kv.set(line.slice(0, i), line.slice(i + 1).trim());
    }
    return kv;
}

export function parseFacts(out: string): Facts {
    const kv = new Map<string, string>();
    const disks: Facts["disks"] = [];
    for (const line of out.split("\n")) {
        const i = line.indexOf("=");
        if (i < 0) continue;
        const k = line.slice(0, i);
        const v = line.slice(i + 1).trim();
        if (k === "disk") {
            const [name, bytes] = v.split(" ");
            if (!disks.some((d) => d.name === name)) disks.push({ name, bytes: Number(bytes) });
        } else kv.set(k, v);
    }
    const b = (k: string) => kv.get(k) === "1";
    return {
        os: kv.get("os") ?? "",
        arch: kv.get("arch") ?? "",
        distro: kv.get("distro") ?? "",
        variant: kv.get("variant") ?? "",
        isNixos: kv.get("distro") === "nixos",
        isInstaller: kv.get("distro") === "nixos" && kv.get("variant") === "installer",
        isContainer: b("container"),
        uid: Number(kv.get("uid") ?? -1),
        has: {
            tar: b("has_tar"),
            cpio: b("has_cpio"),
            setsid: b("has_setsid"),
            sudo: b("has_sudo"),
            doas: b("has_doas"),
            wget: b("has_wget"),
            curl: b("has_curl"),
            nix: b("has_nix"),
            nixosFacter: b("has_nixos-facter"),
            nixosGenerateConfig: b("has_nixos-generate-config"),
            systemdRun: b("has_systemd-run"),
        },
        setsidWait: b("setsid_wait"),
        efi: b("efi"),
        ramMiB: Math.floor(Number(kv.get("ram_kb") ?? 0) / 1024),
        bootId: kv.get("boot_id") ?? "",
        currentSystem: kv.get("current_system") ?? "",
        disks,
    };
}

export async function gatherFacts(ctx: PhaseContext): Promise<Facts> {
    const r = await ctx.target.run(SCRIPT, {
        phase: "facts",
        what: "retrieving host facts",
        hint: "the facts script needs a POSIX shell and coreutils on the target",
    });
    return parseFacts(r.stdout);
}

/** RAM the default kexec image needs to unpack and run (nixos-anywhere documents 1.5 GB). */
export const KEXEC_MIN_RAM_MIB = 1536;

/** Every problem that would make the kexec phase fail, found before anything changes. */
export function kexecProblems(f: Facts, opts: { customImage: boolean }): { what: string; hint: string }[] {
    const p: { what: string; hint: string }[] = [];
    if (f.os !== "Linux") p.push({ what: `this requires Linux as the operating system, but got ${f.os || "an unknown system"}`, hint: "boot the machine into a Linux rescue system first" });
    if (!opts.customImage && !["x86_64", "aarch64"].includes(f.arch)) {
        p.push({ what: `the default kexec image only supports x86_64 and aarch64, but the target is ${f.arch}`, hint: "build a kexec image for this architecture and pass it as kexecTarball" });
    }
    if (f.isContainer) p.push({ what: "the target is a container, which cannot kexec", hint: "install onto a virtual or physical machine" });
    if (!f.has.tar) p.push({ what: "no tar command found, but it is required to unpack the kexec tarball", hint: "install tar on the target, or boot it into a NixOS installer" });
    if (!f.has.cpio) p.push({ what: "no cpio command found, but it is required to pack the installer's extra initrd (SSH keys, network)", hint: "install cpio on the target, or boot it into a NixOS installer" });
    if (!f.has.setsid) p.push({ what: "no setsid command found, but it is required to run the kexec script in its own session", hint: "install util-linux on the target" });
    if (f.ramMiB && f.ramMiB < KEXEC_MIN_RAM_MIB) {
        p.push({
            what: `the target has ${f.ramMiB} MiB of RAM, but the kexec installer needs at least ${KEXEC_MIN_RAM_MIB} MiB to unpack its initrd`,
            hint: 'boot the target into a NixOS installer (then the kexec phase is skipped), or into its rescue system and install by image (method: "image")',
        });
    }
    return p;
}

export function failOnProblems(ctx: PhaseContext, problems: { what: string; hint: string }[]): void {
    if (problems.length === 0) return;
    throw new NixosDeployError({
        host: ctx.target.name,
        phase: "facts",
        what: problems.map((p) => p.what).join("; "),
        hint: problems.map((p) => p.hint).join("; "),
    });
}
