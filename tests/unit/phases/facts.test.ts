import { describe, expect, it } from "vitest";
import { kexecProblems, keyValues, parseFacts } from "../../../provider/phases/facts";

describe("reading command output by key", () => {
    it("leaves a key empty when its line is missing, instead of taking the next line for it", () => {
        // No /run/current-system (a Debian host): the old line-position reader took os-release for it.
        const kv = keyValues("boot_id=b-1\ncurrent_system=\nos=debian \n");
        expect(kv.get("current_system")).toBe("");
        expect(kv.get("os")).toBe("debian");
        expect(keyValues("boot_id=b-1\nos=nixos\n").get("current_system")).toBeUndefined();
    });

    it("keeps the first value of a key and values that contain '='", () => {
        const kv = keyValues("a=1\na=2\nb=x=y\nnoise\n=novalue\n");
        expect([...kv.entries()]).toEqual([["a", "1"], ["b", "x=y"]]);
    });

    it("parses facts: an installer, its tools, RAM in MiB and each disk once", () => {
        const f = parseFacts(["os=Linux", "arch=x86_64", "distro=nixos", "variant=installer", "container=0", "uid=0", "has_tar=1", "has_cpio=0", "ram_kb=2097152", "boot_id=b", "current_system=", "disk=vda 1073741824", "disk=vda 1073741824", "disk=vdb 5"].join("\n"));
        expect(f).toMatchObject({ isNixos: true, isInstaller: true, ramMiB: 2048, currentSystem: "", disks: [{ name: "vda", bytes: 1073741824 }, { name: "vdb", bytes: 5 }] });
        expect(f.has.tar).toBe(true);
        expect(f.has.cpio).toBe(false);
    });

    it("finds every kexec problem at once, before anything changes", () => {
        const f = parseFacts(["os=FreeBSD", "arch=riscv64", "distro=freebsd", "container=1", "has_tar=0", "has_cpio=0", "has_setsid=0", "ram_kb=524288"].join("\n"));
        const found = kexecProblems(f, { customImage: false }).map((p) => p.what);
        expect(found).toEqual([
            "this requires Linux as the operating system, but got FreeBSD",
            "the default kexec image only supports x86_64 and aarch64, but the target is riscv64",
            "the target is a container, which cannot kexec",
            "no tar command found, but it is required to unpack the kexec tarball",
            "no cpio command found, but it is required to pack the installer's extra initrd (SSH keys, network)",
            "no setsid command found, but it is required to run the kexec script in its own session",
            "the target has 512 MiB of RAM, but the kexec installer needs at least 1536 MiB to unpack its initrd",
        ]);
        expect(kexecProblems(f, { customImage: true }).map((p) => p.what)).not.toContain(found[1]);
    });
});
