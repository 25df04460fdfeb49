/**
 * The closure copy on a test host's real link: compressed when the link is slower than the
 * compressor (a 20 Mbit/s token bucket on the host's veth), sent as it is on the fast bridge, and
 * reporting progress while it runs. Bytes are the veth's own counter.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { copyClosure } from "../../../provider/nix/copy";
import { Target } from "../../../provider/ssh/target";
import type { Host } from "../../testbed/host";
import { installFixture } from "../../testbed/install";
import { buildFixture, fixtureCopy } from "../../testbed/nix";
import { hostsForThisFile } from "../../testbed/per-file";
import { clientKey } from "../../testbed/state";

const createHost = hostsForThisFile();
let dir: string;
let text: string;
beforeAll(async () => {
    dir = fixtureCopy();
    text = await buildFixture(dir, "web-text");
});

async function copyTo(h: Host): Promise<{ lines: string[]; sent: number; bytes: number }> {
    const t = new Target({ host: h.address, privateKey: clientKey().privateKey, hostKey: h.hostKey });
    const lines: string[] = [];
    const before = h.sentBytes();
    try {
        const r = await copyClosure(t, [text], { phase: "copy", log: (l) => lines.push(l) });
        expect((await h.execOk(`nix-store --check-validity ${text} && echo valid`)).trim()).toBe("valid");
        return { lines, sent: h.sentBytes() - before, bytes: r.bytes };
    } finally {
        t.close();
    }
}

describe("the closure copy on a real link", () => {
    it("compresses over a slow link, sends fewer bytes than the closure holds, and reports progress every 2 s", async () => {
        const h = await createHost({ kind: "installer", disks: [256] });
        await installFixture(h, dir, "web");
        await h.shapeLink(20);
        const { lines, sent, bytes } = await copyTo(h);
        expect(lines[0]).toMatch(/^copying \d+ of \d+ paths \(5\d\.\d MiB\), zstd-compressed \(link \d+\.\d MiB\/s, zstd \d+\.\d MiB\/s to \d+%\)$/);
        expect(sent).toBeLessThan(0.6 * bytes);
        const progress = lines.filter((l) => /^copied \d+\.\d of 5\d\.\d MiB \(\d+\.\d MiB\/s, \d+\.\d MiB sent compressed\)$/.test(l));
        expect(progress.length).toBeGreaterThanOrEqual(2);
    });

    it("sends a closure as it is over the fast bridge", async () => {
        const h = await createHost({ kind: "installer", disks: [256] });
        await installFixture(h, dir, "web");
        const { lines, sent, bytes } = await copyTo(h);
        expect(lines[0]).toMatch(/^copying \d+ of \d+ paths \(5\d\.\d MiB\), uncompressed \(link \d+\.\d MiB\/s, zstd \d+\.\d MiB\/s to \d+%\)$/);
        expect(sent).toBeGreaterThan(bytes);
    });
});
