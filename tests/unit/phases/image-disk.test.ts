import { describe, expect, it } from "vitest";
import { refuseSectorSize } from "../../../provider/phases/image-disk";

describe("the image's target disk's sector size", () => {
    it("passes 512-byte logical sectors, and refuses 4Kn or an unreadable size naming the disk", () => {
        expect(() => refuseSectorSize("root@h", "/dev/sda", 512)).not.toThrow();
        expect(() => refuseSectorSize("root@h", "/dev/sda", 4096)).toThrow(/^facts on root@h failed: \/dev\/sda has 4096-byte logical sectors; the image is laid out in 512-byte sectors/);
        expect(() => refuseSectorSize("root@h", "/dev/sda", 0)).toThrow("cannot read the logical sector size of /dev/sda (blockdev --getss)");
    });
});
