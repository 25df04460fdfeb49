import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { missingBootDevices } from "../../../provider/phases/boot-devices";
import { parseFstab } from "../../../provider/phases/placement";
import { sshdPorts } from "../../../provider/phases/sshd-ports";

describe("missingBootDevices", () => {
    const fstab = parseFstab(
        [
            "/dev/vda / ext4 defaults 0 1",
            "/dev/disk/by-partlabel/disk-main-root /srv ext4 defaults 0 2",
            "/dev/nvme0n1p2 /data ext4 defaults 0 2",
            "/dev/sdb1 /backup ext4 nofail 0 2",
            "/dev/mmcblk0p1 /boot vfat defaults 0 2",
        ].join("\n"),
    );

    it("names each kernel-named device whose disk the machine lacks, leaving names by label and nofail entries", () => {
        expect(missingBootDevices(fstab, ["sda"])).toEqual([
            { device: "/dev/vda", point: "/" },
            { device: "/dev/nvme0n1p2", point: "/data" },
            { device: "/dev/mmcblk0p1", point: "/boot" },
        ]);
    });

    it("accepts devices on the machine's disks, partitions included", () => {
        expect(missingBootDevices(fstab, ["vda", "nvme0n1", "mmcblk0"])).toEqual([]);
    });
});

describe("sshdPorts", () => {
    const system = (config: string) => {
        const top = fs.mkdtempSync(path.join(os.tmpdir(), "pnx-ports-"));
        fs.mkdirSync(path.join(top, "etc/ssh"), { recursive: true });
        fs.writeFileSync(path.join(top, "etc/ssh/sshd_config"), config);
        return top;
    };

    it("reads Port lines and the ports of ListenAddress lines, as sshd.nix writes them", () => {
        const top = system("UsePAM yes\nPort 2222\nPort 22\nListenAddress 0.0.0.0:2200\nListenAddress [::1]:2201\nListenAddress fe80::1\nHostKey /etc/ssh/k\n");
        expect(sshdPorts(top)).toEqual([2222, 22, 2200, 2201]);
    });

    it("is empty for a system without sshd_config or without ports", () => {
        expect(sshdPorts(system("UsePAM yes\n"))).toEqual([]);
        expect(sshdPorts("/nonexistent")).toEqual([]);
    });
});
