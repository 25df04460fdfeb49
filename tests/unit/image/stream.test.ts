import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { BLOCK, dataSample, fileSha256, imageRecords, MIN_ZERO_RUN } from "../../../provider/image/stream";

/** What the target's receiver does with the records, done in memory: the disk afterwards, and the records seen. */
function receive(stream: Buffer, disk: Buffer): { types: string[] } {
    const types: string[] = [];
    let at = 0;
    for (;;) {
        const nl = stream.indexOf(10, at);
        const [t, bs, seek, count] = stream.subarray(at, nl).toString().split(" ");
        at = nl + 1;
        types.push(t);
        if (t === "E") break;
        const [b, s, n] = [Number(bs), Number(seek), Number(count)];
        if (t === "Z") disk.fill(0, b * s, b * (s + n));
        else {
            stream.copy(disk, b * s, at, at + b * n);
            at += b * n;
        }
    }
    expect(at).toBe(stream.length);
    return { types };
}

async function records(image: Buffer): Promise<{ stream: Buffer; stats: Awaited<ReturnType<typeof imageRecords>["stats"]> }> {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "pnx-stream-")), "image.raw");
    fs.writeFileSync(file, image);
    const r = imageRecords(file);
    const parts: Buffer[] = [];
    for await (const c of r.stream) parts.push(c as Buffer);
    return { stream: Buffer.concat(parts), stats: await r.stats };
}

describe("the image's record stream", () => {
    it("rebuilds the image exactly over a disk full of old data, zeroing long zero runs instead of sending them", async () => {
        const image = Buffer.alloc(16 * 1024 * 1024);
        randomBytes(3 * BLOCK).copy(image, 0); // data
        randomBytes(BLOCK).copy(image, 4 * BLOCK); // after a short zero gap: sent as data
        randomBytes(BLOCK + 512).copy(image, 10 * 1024 * 1024); // after a long gap, ending mid-block
        const { stream, stats } = await records(image);
        const disk = randomBytes(image.length + 4 * BLOCK); // old data, and a disk bigger than the image
        const tail = Buffer.from(disk.subarray(image.length));
        const { types } = receive(stream, disk);
        expect(disk.subarray(0, image.length).equals(image)).toBe(true);
        expect(disk.subarray(image.length).equals(tail)).toBe(true);
        expect(types).toEqual(["D", "Z", "D", "Z", "E"]);
        expect(stats.bytes).toBe(image.length);
        expect(stats.dataBytes).toBe(5 * BLOCK + 2 * BLOCK);
        expect(stats.zeroBytes + stats.dataBytes).toBe(image.length);
        expect(stream.length).toBeLessThan(stats.dataBytes + 200);
    });

    it("sends zero stretches shorter than MIN_ZERO_RUN as data, and a last partial block in sectors", async () => {
        const image = Buffer.alloc(MIN_ZERO_RUN + 3 * 512);
        image[0] = 1;
        image[image.length - 1] = 1;
        const { stream } = await records(image);
        const disk = randomBytes(image.length);
        expect(receive(stream, disk).types).toEqual(["D", "D", "E"]);
        expect(disk.equals(image)).toBe(true);
        expect(stream.toString("latin1")).toContain(`D 512 ${MIN_ZERO_RUN / 512} 3\n`);
    });

    it("an all-zero image is one zero record; the sample finds the first data; the file's sha256 is sha256sum's", async () => {
        const { stream, stats } = await records(Buffer.alloc(4 * MIN_ZERO_RUN));
        expect(stream.toString()).toBe(`Z ${BLOCK} 0 ${(4 * MIN_ZERO_RUN) / BLOCK}\nE\n`);
        expect(stats.dataBytes).toBe(0);
        const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "pnx-stream-")), "image.raw");
        const image = Buffer.alloc(8 * MIN_ZERO_RUN);
        image.fill(7, 5 * MIN_ZERO_RUN, 5 * MIN_ZERO_RUN + 3 * BLOCK);
        fs.writeFileSync(file, image);
        const sample = await dataSample(file, 2 * BLOCK);
        expect(sample.equals(Buffer.alloc(2 * BLOCK, 7))).toBe(true);
        const { createHash } = await import("node:crypto");
        expect(await fileSha256(file)).toBe(createHash("sha256").update(image).digest("hex"));
    });
});
