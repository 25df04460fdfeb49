/**
 * A rescue host with old grow tools (oldTools): each stand-in fails where its real release fails.
 * - util-linux 2.33's sfdisk has no --relocate (added in v2.36, commit ee5a16025): getopt_long's
 *   "unrecognized option" and errtryhelp's line (v2.33 include/c.h:223), exit 1.
 * - e2fsprogs 1.46.5 does not know orphan_file (1.47.0): e2fsck refuses it (v1.46.5 e2fsck/unix.c:1823
 *   and :1701, "Get a newer version of e2fsck!", exit 8), resize2fs too (v1.46.5 resize/main.c:467,
 *   exit 1).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createHost, Host } from "../../testbed/host";

let h: Host;
beforeAll(async () => {
    h = await createHost({ kind: "rescue", disks: [64], oldTools: true });
});
afterAll(async () => {
    await h?.destroy();
});

describe("a rescue host with util-linux 2.33 and e2fsprogs 1.46.5 (oldTools)", () => {
    it("reports the old versions, as sfdisk --version, e2fsck -V and resize2fs print them", async () => {
        const r = await h.exec("sfdisk --version; e2fsck -V; resize2fs");
        expect(r.stdout).toBe("sfdisk from util-linux 2.33.1\n");
        expect(r.stderr).toMatch(/^e2fsck 1\.46\.5 \(30-Dec-2021\)\n\tUsing EXT2FS Library version 1\.46\.5, 30-Dec-2021\nresize2fs 1\.46\.5 \(30-Dec-2021\)\nUsage: /);
    });

    it("refuses sfdisk --relocate as an unknown option, exit 1, leaving the table alone", async () => {
        await h.execOk("printf 'label: gpt\\nstart=2048, size=40960\\n' | sfdisk -q --no-reread --no-tell-kernel /dev/vda");
        const before = await h.execOk("sfdisk -d /dev/vda");
        const r = await h.exec("sfdisk --no-reread --no-tell-kernel --relocate gpt-bak-std /dev/vda");
        expect(r.code).toBe(1);
        expect(r.stderr).toBe("sfdisk: unrecognized option '--relocate'\nTry 'sfdisk --help' for more information.\n");
        expect(await h.execOk("sfdisk -d /dev/vda")).toBe(before);
    });

    it("refuses to check or resize an ext4 with orphan_file, as e2fsprogs 1.46 does, and handles one without it", async () => {
        await h.execOk("mkfs.ext4 -q -F -O orphan_file /dev/vda");
        const fsck = await h.exec("e2fsck -f -y /dev/vda");
        expect(fsck.code).toBe(8);
        expect(fsck.stderr).toBe("e2fsck 1.46.5 (30-Dec-2021)\n/dev/vda has unsupported feature(s): FEATURE_C12\ne2fsck: Get a newer version of e2fsck!\n");
        const resize = await h.exec("resize2fs /dev/vda");
        expect(resize.code).toBe(1);
        expect(resize.stderr).toBe("resize2fs 1.46.5 (30-Dec-2021)\nresize2fs: Filesystem has unsupported feature(s) (/dev/vda)\n");
        await h.execOk("mkfs.ext4 -q -F -O ^orphan_file /dev/vda 32M");
        expect((await h.exec("e2fsck -f -y /dev/vda >/dev/null")).code).toBe(0);
        const grown = await h.exec("resize2fs /dev/vda");
        expect(grown.code).toBe(0);
        expect(grown.stderr.split("\n")[0]).toBe("resize2fs 1.46.5 (30-Dec-2021)");
    });
});
