import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as hooks from "../../../provider/resources/image";
import { gcRootRegistered } from "../../../provider/image/file";
import { countingNix, fixtureCopy } from "../../testbed/nix";

let dir: string;
let out: string;
beforeAll(() => {
    dir = fixtureCopy();
    out = fs.mkdtempSync(path.join(os.tmpdir(), "pnx-images-"));
});
afterAll(() => {
    fs.rmSync(out, { recursive: true, force: true });
    fs.rmSync(dir, { recursive: true, force: true });
});

async function checked(news: Record<string, unknown>): Promise<Record<string, any>> {
    const r = await hooks.check({}, { __nixosName: "web-image", directory: out, ...news });
    expect(r.failures ?? []).toEqual([]);
    return r.inputs!;
}

const qemuInfo = (f: string) => JSON.parse(execFileSync("qemu-img", ["info", "--output=json", f], { encoding: "utf8" })) as { format: string; "virtual-size": number };
const sha256 = (f: string) => execFileSync("sha256sum", [f], { encoding: "utf8" }).split(" ")[0];

describe("NixosImage", () => {
    it("shows the toplevel and the image's store path at check, without building", async () => {
        const nix = countingNix();
        const pathBefore = process.env.PATH;
        process.env.PATH = `${nix.dir}:${pathBefore}`;
        try {
            const inputs = await checked({ flake: `path:${dir}/flake#web-gpt` });
            expect(inputs.toplevel).toMatch(/^\/nix\/store\/[a-z0-9]{32}-nixos-system-web-/);
            expect(inputs.image).toMatch(/^\/nix\/store\/[a-z0-9]{32}-disko-images-web$/);
            expect(nix.calls("nix eval")).toBeGreaterThanOrEqual(1);
            expect(nix.calls("nix build") + nix.calls("nix-store --realise")).toBe(0);
        } finally {
            process.env.PATH = pathBefore;
        }
    });

    it.each([
        ["raw", "none"],
        ["qcow2", "none"],
        ["qcow2", "zstd"],
    ])("makes a %s image (compression %s) whose sizes and checksum qemu-img and sha256sum agree with, kept by a GC root that delete removes", async (format, compression) => {
        const inputs = await checked({ flake: `path:${dir}/flake#web-gpt`, format, compression });
        const { outs } = await hooks.create(inputs);
        expect(outs.path).toMatch(new RegExp(`^${out}/web-image-[0-9a-f]{12}\\.${format}$`));
        const info = qemuInfo(outs.path as string);
        expect(outs.format).toBe(format);
        expect(info.format).toBe(format);
        expect(outs.virtualSizeBytes).toBe(64 * 1048576);
        expect(info["virtual-size"]).toBe(64 * 1048576);
        expect(outs.sizeBytes).toBe(fs.statSync(outs.path as string).size);
        expect(outs.sha256).toBe(sha256(outs.path as string));
        if (format === "qcow2") expect(outs.sizeBytes as number).toBeLessThan(16 * 1048576);
        expect(await gcRootRegistered(outs.gcRoot as string)).toBe(true);
        expect(fs.readlinkSync(outs.gcRoot as string)).toBe(inputs.image);
        expect((await hooks.read("id", outs)).id).toBe("id");
        await hooks.del("id", outs);
        expect(fs.existsSync(outs.path as string)).toBe(false);
        expect(fs.existsSync(outs.gcRoot as string)).toBe(false);
        expect(await gcRootRegistered(outs.gcRoot as string)).toBe(false);
        // A refresh after the file went away reports the image gone.
        expect((await hooks.read("id", outs)).id).toBeUndefined();
    });

    it("compresses a qcow2's clusters with zlib when no compression is given, which QEMU before 5.1 opens; zstd only on request", async () => {
        const made = async (compression?: string) => {
            const { outs } = await hooks.create(await checked({ flake: `path:${dir}/flake#web-gpt`, format: "qcow2", ...(compression ? { compression } : {}) }));
            const info = JSON.parse(execFileSync("qemu-img", ["info", "--output=json", outs.path as string], { encoding: "utf8" }));
            return { outs, type: info["format-specific"].data["compression-type"] as string };
        };
        const [byDefault, none, zstd] = [await made(), await made("none"), await made("zstd")];
        expect(byDefault.type).toBe("zlib");
        // Compressed clusters, not only a zlib header: an uncompressed qcow2 says "zlib" too.
        expect(byDefault.outs.sizeBytes as number).toBeLessThan((none.outs.sizeBytes as number) * 0.8);
        expect(zstd.type).toBe("zstd");
        for (const m of [byDefault, none, zstd]) await hooks.del("id", m.outs);
    });

    it("update makes the new image's file and removes the old one", async () => {
        const first = await hooks.create(await checked({ flake: `path:${dir}/flake#web` }));
        const next = await checked({ flake: `path:${dir}/flake#web-bumped` });
        expect((await hooks.diff("id", first.outs, next)).changes).toBe(true);
        expect((await hooks.diff("id", first.outs, await checked({ flake: `path:${dir}/flake#web` }))).changes).toBe(false);
        const { outs } = await hooks.update("id", first.outs, next);
        expect(outs.path).not.toBe(first.outs.path);
        expect(fs.existsSync(outs.path as string)).toBe(true);
        expect(fs.existsSync(first.outs.path as string)).toBe(false);
        expect(fs.existsSync(first.outs.gcRoot as string)).toBe(false);
        await hooks.del("id", outs);
    });

    it("a check of an unchanged flake reuses the recorded image derivation without a `nix eval`", async () => {
        const nix = countingNix();
        const pathBefore = process.env.PATH;
        process.env.PATH = `${nix.dir}:${pathBefore}`;
        try {
            const first = await checked({ flake: `path:${dir}/flake#web-gpt`, directory: out });
            const evals = nix.calls("nix eval");
            expect(evals).toBeGreaterThanOrEqual(1);
            const again = await hooks.check(first, { __nixosName: "web-image", flake: `path:${dir}/flake#web-gpt`, directory: out });
            expect(again.inputs!.image).toBe(first.image);
            expect(nix.calls("nix eval")).toBe(evals);
            // Another attribute is evaluated again.
            const other = await hooks.check(first, { __nixosName: "web-image", flake: `path:${dir}/flake#web-gpt`, directory: out, imageAttribute: "toplevel" });
            expect(other.inputs!.image).toBe(first.toplevel);
            expect(nix.calls("nix eval")).toBe(evals + 1);
        } finally {
            process.env.PATH = pathBefore;
        }
    });

    it("names the property at check: compression on a raw image, an attribute the configuration lacks", async () => {
        const raw = await hooks.check({}, { flake: `path:${dir}/flake#web`, compression: "zstd" });
        expect(raw.failures).toEqual([{ property: "compression", reason: 'compresses qcow2 clusters; a raw image is never compressed (use format "qcow2")' }]);
        const missing = await hooks.check({}, { flake: `path:${dir}/flake#web`, imageAttribute: "brightboxImage" });
        expect(missing.failures?.[0].property).toBe("imageAttribute");
        expect(missing.failures?.[0].reason).toMatch(/^cannot evaluate the disk image config\.system\.build\.brightboxImage; name the configuration's image attribute in imageAttribute/);
    });
});
