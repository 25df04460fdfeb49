/** Builds test-bed installer images shaped like the nixos-images kexec tarball. */
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

const FIXTURE = path.join(__dirname, "..", "fixtures", "kexec");
const KEXEC = path.join(__dirname, "sh", "target-bin", "common", "kexec");

export interface KexecImageOptions {
    /** RAM the image needs to unpack, in MiB; a host with less "fails unpacking initrd". Default: 900. */
    unpackedMiB?: number;
    /** Port the installer's sshd listens on. Default: 22. */
    sshPort?: number;
    /** Whether the image carries the old SSH host keys into the installer, as nixos-images' does. Default: true. */
    carryHostKeys?: boolean;
    /** Seconds between kexec/run returning and the kexec, while the old system still answers. Default: 6, as nixos-images'. */
    delayS?: number;
}

/** Writes nixos-kexec-installer-noninteractive-x86_64-linux.tar.gz into dir and returns its path. */
export function buildKexecTarball(dir: string, opts: KexecImageOptions = {}): string {
    const stage = fs.mkdtempSync(path.join(os.tmpdir(), "kexec-image-"));
    try {
        const k = path.join(stage, "kexec");
        fs.mkdirSync(k);
        fs.writeFileSync(path.join(k, "bzImage"), "TESTBED-KEXEC-KERNEL 6.6.60\n");
        const header = `TESTBED-INITRD unpacked-mib=${opts.unpackedMiB ?? 900}${opts.sshPort ? ` sshd-port=${opts.sshPort}` : ""}\n`;
        fs.writeFileSync(path.join(k, "initrd"), header);
        fs.copyFileSync(KEXEC, path.join(k, "kexec"));
        fs.chmodSync(path.join(k, "kexec"), 0o755);
        const run = fs.readFileSync(path.join(FIXTURE, "run"), "utf8").replace("@carryHostKeys@", opts.carryHostKeys === false ? "0" : "1").replace("@delay@", String(opts.delayS ?? 6));
        fs.writeFileSync(path.join(k, "run"), run, { mode: 0o755 });
        fs.mkdirSync(dir, { recursive: true });
        const out = path.join(dir, "nixos-kexec-installer-noninteractive-x86_64-linux.tar.gz");
        execFileSync("tar", ["-C", stage, "-czf", out, "kexec"]);
        return out;
    } finally {
        fs.rmSync(stage, { recursive: true, force: true });
    }
}
