import * as pulumi from "@pulumi/pulumi";
import type { SourceArgs } from "./connection";

/** The dynamic provider shim: the implementation loads from the installed pulumi-nixos package at run time. */
const provider: pulumi.dynamic.ResourceProvider = {
    check: (olds, news) => require("pulumi-nixos/dist/provider/resources/image").check(olds, news),
    diff: (id, olds, news) => require("pulumi-nixos/dist/provider/resources/image").diff(id, olds, news),
    create: (inputs) => require("pulumi-nixos/dist/provider/resources/image").create(inputs),
    update: (id, olds, news) => require("pulumi-nixos/dist/provider/resources/image").update(id, olds, news),
    read: (id, props) => require("pulumi-nixos/dist/provider/resources/image").read(id, props),
    delete: (id, props) => require("pulumi-nixos/dist/provider/resources/image").del(id, props),
};

export interface NixosImageArgs extends SourceArgs {
    /**
     * The attribute of config.system.build that builds the disk image (one raw or qcow2 file, or a
     * folder holding one). Default: "diskoImages", disko's image output; nixpkgs' image modules
     * use "image" (or, in older releases, names like "brightboxImage").
     */
    imageAttribute?: pulumi.Input<string>;
    /** The file's format: "raw" (sparse) or "qcow2" (`qemu-img convert`, Debian's qemu-utils). Default: "raw". */
    format?: pulumi.Input<"raw" | "qcow2">;
    /**
     * Compression of a qcow2's clusters: "none", "zlib" or "zstd". A raw image is never compressed.
     * Default: "zlib" for qcow2, "none" for raw. zstd makes smaller files faster, but sets qcow2's
     * incompatible compression-type bit: QEMU before 5.1, or a qemu-img built without zstd (as a
     * cloud's image importer may be), cannot open the file. A change makes a new file.
     * @example compression: "zstd" // only where every reader has QEMU >= 5.1 with zstd
     */
    compression?: pulumi.Input<"none" | "zlib" | "zstd">;
    /** Folder the file is written to, relative to the Pulumi program. Default: "nixos-images". */
    directory?: pulumi.Input<string>;
}

/**
 * A disk image of a NixOS configuration, as a local file for a cloud's image import (Brightbox's
 * image library, an S3 bucket for AWS, …). Preview shows the toplevel and the image's store path
 * without building. The built store path is kept from Nix's garbage collector by a root the
 * resource owns (`gcRoot`); delete removes the file and the root.
 */
export class NixosImage extends pulumi.dynamic.Resource {
    /** The image file, `<directory>/<name>-<hash>.<format>`. */
    public readonly path!: pulumi.Output<string>;
    /** The file's format, as `qemu-img info` reads it. */
    public readonly format!: pulumi.Output<string>;
    /** Bytes of the file. */
    public readonly sizeBytes!: pulumi.Output<number>;
    /** Bytes of the disk the image holds. */
    public readonly virtualSizeBytes!: pulumi.Output<number>;
    /** The file's sha256, hex. */
    public readonly sha256!: pulumi.Output<string>;
    /** The system inside the image, evaluated at preview. */
    public readonly toplevel!: pulumi.Output<string>;
    /** The built image's store path, evaluated at preview. */
    public readonly image!: pulumi.Output<string>;
    /** The GC root that keeps `image` in the Nix store. */
    public readonly gcRoot!: pulumi.Output<string>;

    constructor(name: string, args: NixosImageArgs, opts?: pulumi.CustomResourceOptions) {
        const props = { ...args, __nixosName: name, path: undefined, format: args.format, sizeBytes: undefined, virtualSizeBytes: undefined, sha256: undefined, toplevel: undefined, image: undefined, gcRoot: undefined };
        super(provider, name, props, opts, "nixos", "NixosImage");
    }
}
