/**
 * Image files on the deployer: the one file in an image derivation's output, its format and sizes
 * (`qemu-img info`), conversion between raw and qcow2 (`qemu-img convert`, Debian's qemu-utils), and
 * the GC root that keeps the built image's store path alive while a resource uses it.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { NixosDeployError } from "../errors";
import { mustLocal, runLocal } from "../nix/local";

const IMAGE = /\.(raw|img|qcow2|vhd|vhdx|vmdk|vdi)$/;
const BOUND_MS = 3_600_000;

/** The image file of a built output: the output itself, or the one image file in it. */
export function imageFileOf(out: string): string {
    if (fs.statSync(out).isFile()) return out;
    const found: string[] = [];
    const walk = (dir: string) => {
        for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
            const p = path.join(dir, e.name);
            if (e.isDirectory()) walk(p);
            else if (IMAGE.test(e.name)) found.push(p);
        }
    };
    walk(out);
    if (found.length === 1) return found[0];
    throw new NixosDeployError({
        host: "localhost",
        phase: "build",
        what: found.length ? `${out} holds ${found.length} disk images (${found.map((f) => path.relative(out, f)).join(", ")}), not one` : `${out} holds no disk image (*.raw, *.img, *.qcow2, …)`,
        hint: "imageAttribute must name a derivation that builds one disk image",
    });
}

/**
 * Whether a file is a raw disk image, without qemu-img for the usual case: a *.raw or *.img file
 * that does not start with qcow2's magic ("QFI\xfb") is raw; anything else asks `qemu-img info`.
 */
export async function isRaw(file: string): Promise<boolean> {
    if (/\.(raw|img)$/.test(file)) {
        const head = Buffer.alloc(4);
        const fd = await fs.promises.open(file, "r");
        try {
            await fd.read(head, 0, 4, 0);
        } finally {
            await fd.close();
        }
        if (!head.equals(Buffer.from([0x51, 0x46, 0x49, 0xfb]))) return true;
    }
    return (await imageInfo(file)).format === "raw";
}

export interface ImageInfo {
    format: string;
    /** Bytes of the file. */
    sizeBytes: number;
    /** Bytes of the disk it holds. */
    virtualSizeBytes: number;
}

/** `qemu-img info` of a file. */
export async function imageInfo(file: string): Promise<ImageInfo> {
    const out = await mustLocal("image", `cannot read ${file} with qemu-img info`, "qemu-img", ["info", "--output=json", file], { timeoutMs: 60_000 });
    const j = JSON.parse(out) as { format: string; "virtual-size": number };
    return { format: j.format, sizeBytes: fs.statSync(file).size, virtualSizeBytes: j["virtual-size"] };
}

/** Converts `from` to `format` at `to` (raw stays sparse; qcow2 clusters optionally compressed). */
export async function convertImage(from: string, to: string, format: "raw" | "qcow2", compression?: "zlib" | "zstd"): Promise<void> {
    fs.mkdirSync(path.dirname(to), { recursive: true });
    const tmp = `${to}.tmp`;
    fs.rmSync(tmp, { force: true });
    const compress = compression && format === "qcow2" ? ["-c", "-o", `compression_type=${compression}`] : [];
    const args = ["convert", "-O", format, ...compress, from, tmp];
    await mustLocal("image", `converting ${from} to ${format}`, "qemu-img", args, { timeoutMs: BOUND_MS });
    fs.renameSync(tmp, to);
}

/** Keeps `storePath` from Nix's garbage collector with a root at `root` (an indirect root, removable by deleting the link). */
export async function addGcRoot(storePath: string, root: string, env: NodeJS.ProcessEnv = process.env): Promise<void> {
    fs.mkdirSync(path.dirname(root), { recursive: true });
    await mustLocal("image", `cannot make a GC root for ${storePath}`, "nix-store", ["--realise", storePath, "--add-root", root, "--indirect"], { env, timeoutMs: BOUND_MS });
}

/** Whether a GC root at `root` is registered with Nix (its link in gcroots/auto points to it). */
export async function gcRootRegistered(root: string, env: NodeJS.ProcessEnv = process.env): Promise<boolean> {
    const r = await runLocal("nix-store", ["--gc", "--print-roots"], { env, timeoutMs: 60_000 });
    return r.stdout.split("\n").some((l) => l.startsWith(path.resolve(root) + " "));
}
