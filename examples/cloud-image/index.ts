// A configuration's disk image for a cloud's image library, as in the Brightbox guide: NixosImage
// builds it as qcow2, then the image is uploaded to the account's FTP library and registered with
// the brightbox CLI. Servers created from the image are later kept up to date with NixosRebuild;
// going back to an earlier configuration re-activates its generation (`generation` output).
//
// This program needs Brightbox's FTP and API, so the test suite only type-checks it.
//
//   pulumi config set flake "./infra#brightbox"
//   pulumi config set --secret ftpUrl "ftp://acc-xxxxx:PASSWORD@ftp.library.gb1.brightbox.com/incoming/"
//   pulumi up
import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { NixosImage } from "pulumi-nixos";

const config = new pulumi.Config();

const image = new NixosImage("nixos", {
    flake: config.require("flake"),
    // nixpkgs' image modules name it "image"; disko's is "diskoImages" (the default).
    imageAttribute: config.get("imageAttribute") ?? "image",
    // Clusters are zlib-compressed by default: a zstd qcow2 needs QEMU >= 5.1 wherever it is imported.
    format: "qcow2",
});

// The FTP URL carries the account's password: it reaches curl on stdin, never its command line.
const fileName = pulumi.interpolate`nixos-${image.sha256.apply((s) => s.slice(0, 12))}.qcow2`;
const upload = new command.local.Command("upload", {
    create: pulumi.interpolate`curl --fail --silent --show-error --config - -T ${image.path}`,
    stdin: pulumi.interpolate`url = "${config.requireSecret("ftpUrl")}${fileName}"`,
    triggers: [image.sha256],
});

const registered = new command.local.Command(
    "register",
    {
        create: pulumi.interpolate`brightbox images register --arch x86_64 --name NixOS --source ${fileName} --format=json`,
        delete: "true",
        triggers: [image.sha256],
    },
    { dependsOn: upload },
);

export const imagePath = image.path;
export const imageSha256 = image.sha256;
export const toplevel = image.toplevel;
export const brightboxImage = registered.stdout;
