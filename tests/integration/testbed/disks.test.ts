import * as fs from "node:fs";
import { execFileSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { createHost } from "../../testbed/host";

describe("test host disks", () => {
    it("appear only inside the host as /dev/vda, /dev/vdb", async () => {
        const h = await createHost({ disks: [32, 32] });
        try {
            const out = await h.execOk("ls /dev | grep '^vd'; blockdev --getsize64 /dev/vda");
            expect(out).toBe(`vda\nvdb\n${32 * 1024 * 1024}\n`);
        } finally {
            await h.destroy();
        }
    });

    it("survive a reboot and vanish on destroy", async () => {
        const h = await createHost({ disks: [64] });
        const loops = h.loopDevices;
        await h.execOk("mkfs.ext4 -q -F /dev/vda && mkdir -p /data && mount /dev/vda /data && echo persisted > /data/file && umount /data");
        await h.reboot();
        expect(await h.execOk("mkdir -p /data && mount /dev/vda /data && cat /data/file")).toBe("persisted\n");
        const dir = h.dir;
        await h.destroy();
        const attached = execFileSync("losetup", ["-a"]).toString();
        for (const l of loops) expect(attached).not.toContain(l + ":");
        expect(fs.existsSync(dir)).toBe(false);
    });
});
