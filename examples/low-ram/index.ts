// NixOS on a VPS too small to kexec an installer (512 MiB–1 GiB of RAM). Boot the VPS into its
// provider's rescue system (Hetzner's rescue, Linode's Finnix, any Linux with dd and sfdisk), then:
// the configuration's disk image (disko's `diskoImages`) is written to the disk over SSH, checked,
// grown to the disk, and the machine reboots into it; later changes are rebuilds.
// The host key is written where the configuration's sshd reads it. With the guide's impermanence
// layout (a tmpfs "/", /nix on a partition) keep it on /nix, e.g.
//   services.openssh.hostKeys = [{ path = "/nix/persistent/etc/ssh/ssh_host_ed25519_key"; type = "ed25519"; }];
// (a path on the tmpfs is refused before anything is written).
//
//   pulumi config set host 203.0.113.10
//   pulumi config set privateKeyFile ~/.ssh/id_ed25519
//   pulumi config set flake "./infra#bootstrap"     # a configuration with disko's image settings
//   pulumi up
import * as fs from "node:fs";
import * as pulumi from "@pulumi/pulumi";
import { NixosMachine } from "pulumi-nixos";

const config = new pulumi.Config();

const vps = new NixosMachine("vps", {
    connection: {
        host: config.require("host"),
        // The rescue system's key; it changes with each rescue boot at most providers.
        hostKey: config.get("hostKey"),
        privateKey: pulumi.secret(fs.readFileSync(config.require("privateKeyFile"), "utf8")),
    },
    flake: config.require("flake"),
    install: {
        method: "image",
        // Default: the machine's only disk.
        imageDisk: config.get("imageDisk"),
    },
    rebuild: {
        confirmTimeout: config.getNumber("confirmTimeout") ?? 30,
        healthChecks: [{ command: "test -x /run/current-system/sw/bin/hello" }],
    },
});

export const hostKey = vps.hostKey;
export const toplevel = vps.toplevel;
export const image = vps.install.image;
export const generation = vps.rebuild.generation;
