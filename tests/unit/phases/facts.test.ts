import { describe, expect, it } from "vitest";
import { keyValues, parseFacts } from "../../../provider/phases/facts";

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
});
