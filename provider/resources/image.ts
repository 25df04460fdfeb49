/**
 * NixosImage's dynamic-provider hooks: a disk image of a configuration as a local file, for a
 * cloud's image import. check() evaluates the toplevel and the image derivation (preview shows
 * both, nothing is built); create() builds the image, writes it in the asked format into
 * `directory` and keeps the built store path alive with a GC root; update() makes the new file
 * and removes the old one; delete() removes the file and the root.
 */
import { createHash, randomUUID } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { addGcRoot, convertImage, imageFileOf, imageInfo } from "../image/file";
import { fileSha256 } from "../image/stream";
import { mustBeLocal, realise } from "../nix/build";
import { limitBuild } from "../nix/limit";
import { IMAGE_COMPUTED, imageSchema } from "../schema/image";
import { drvSchema, Raw, readState } from "../schema/state";
import { z } from "zod";
import { CheckFailure, defined, evaluateImageInput, logger, mustParse, validateAndEvaluate } from "./common";

const evaluatedSchema = z.object({
    toplevel: z.string().optional(),
    image: z.string().optional(),
    __drvs: z.object({ image: drvSchema }).partial().default({}),
    __nixosName: z.string().optional(),
});

/** What create and update record. */
const outputsSchema = z.object({ path: z.string(), gcRoot: z.string() }).partial();

export async function check(olds: Raw, news: Raw): Promise<{ inputs?: Raw; failures?: CheckFailure[] }> {
    const ev = await validateAndEvaluate(imageSchema, IMAGE_COMPUTED, news, olds);
    if (ev.failures.length || !ev.inputs || !ev.paths) return { inputs: ev.inputs, failures: ev.failures };
    const v = imageSchema.safeParse(Object.fromEntries(Object.entries(ev.inputs).filter(([k]) => !k.startsWith("__"))));
    if (!v.success) return { inputs: ev.inputs };
    const image = await evaluateImageInput(v.data, { evaluation: ev.evaluation, olds });
    if (!image.drv) return { failures: image.failures };
    return { inputs: defined({ ...ev.inputs, toplevel: ev.paths.toplevel, image: image.drv.out, __drvs: { image: image.drv }, __evaluation: ev.evaluation }) };
}

/** A new image, format, compression or folder means a new file; the resource itself stays. */
export async function diff(_id: string, olds: Raw, news: Raw): Promise<{ changes: boolean }> {
    const file = (p: Raw) => JSON.stringify([p.image, p.format ?? "raw", p.compression ?? "none", p.directory ?? "nixos-images"]);
    return { changes: file(olds) !== file(news) };
}

export async function create(inputs: Raw): Promise<{ id: string; outs: Raw }> {
    return { id: randomUUID(), outs: await make(inputs) };
}

export async function update(_id: string, olds: Raw, news: Raw): Promise<{ outs: Raw }> {
    const outs = await make(news);
    const before = readState(outputsSchema, olds, "NixosImage");
    if (before.path && before.path !== outs.path) remove(before);
    return { outs };
}

/** A refresh finds the image gone when its file was removed: the next `pulumi up` makes it again. */
export async function read(id: string, props: Raw): Promise<{ id?: string; props: Raw }> {
    const o = readState(outputsSchema, props, "NixosImage");
    if (o.path && !fs.existsSync(o.path)) return { props: {} };
    return { id, props };
}

export async function del(_id: string, props: Raw): Promise<void> {
    remove(readState(outputsSchema, props, "NixosImage"));
}

function remove(o: z.infer<typeof outputsSchema>): void {
    for (const f of [o.path, o.gcRoot]) if (f) fs.rmSync(f, { force: true });
}

/** Builds the image and writes it as `<directory>/<name>-<hash>.<format>`; returns the outputs. */
async function make(props: Raw): Promise<Raw> {
    const v = mustParse(imageSchema, props, IMAGE_COMPUTED);
    const ev = readState(evaluatedSchema, props, "NixosImage");
    const drv = ev.__drvs.image;
    if (!drv) throw new Error("no evaluated image: check() did not evaluate the image attribute");
    const name = ev.__nixosName ?? "nixos-image";
    const log = logger(name);
    const t0 = Date.now();
    await limitBuild(() => realise([drv], process.env));
    await mustBeLocal([drv.out]);
    const dir = path.resolve(process.cwd(), v.directory);
    const tag = createHash("sha256").update(`${drv.out} ${v.format} ${v.compression}`).digest("hex").slice(0, 12);
    const file = path.join(dir, `${name}-${tag}.${v.format}`);
    const gcRoot = path.join(dir, ".gcroots", `${name}-${tag}`);
    await addGcRoot(drv.out, gcRoot);
    if (!fs.existsSync(file)) await convertImage(imageFileOf(drv.out), file, v.format, v.compression === "none" ? undefined : v.compression);
    const info = await imageInfo(file);
    const sha256 = await fileSha256(file);
    log("image", `${file}: ${v.format}, ${(info.sizeBytes / 1048576).toFixed(1)} MiB for a ${(info.virtualSizeBytes / 1048576).toFixed(0)} MiB disk, in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    return defined({ ...props, path: file, gcRoot, format: info.format, sizeBytes: info.sizeBytes, virtualSizeBytes: info.virtualSizeBytes, sha256 });
}
