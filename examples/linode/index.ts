// NixOS on a Linode. Create the Linode with any distribution (Debian 12 works), your SSH key, a
// "GRUB 2" kernel in its configuration profile, /dev/sda as the system disk and /dev/sdb as swap.
// Then, in this folder:
//
//   cp ~/.ssh/id_ed25519.pub infra/authorized_keys && git add infra   # flakes only see tracked files
//   pulumi config set host 203.0.113.10
//   pulumi config set hostKey "$(ssh-keyscan -t ed25519 203.0.113.10 2>/dev/null | cut -d' ' -f2-)"
//   pulumi config set privateKeyFile ~/.ssh/id_ed25519
//   pulumi up
//
// The kexec installer needs 1.5 GiB of RAM: install on a Linode 2 GB or larger and resize it
// down afterwards if you like. LISH shows the boot (infra/linode.nix sets up the serial console).
import * as fs from "node:fs";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { NixosMachine } from "pulumi-nixos";

const config = new pulumi.Config();

const linode = new NixosMachine("linode", {
    connection: {
        host: config.require("host"),
        // Pinned: the Linode's current key, then the key NixosInstall generated for the new system.
        hostKey: config.require("hostKey"),
        privateKey: pulumi.secret(fs.readFileSync(config.require("privateKeyFile"), "utf8")),
    },
    flake: `${path.resolve("infra")}#linode`,
    install: {
        // Record what the Linode's hardware looks like, to compare with infra/linode.nix.
        hardwareConfig: "nixos-generate-config",
        // The Linode's ID: a new Linode (same address or not) means a fresh install.
        instanceId: config.get("linodeId"),
    },
    rebuild: {
        healthChecks: [{ command: "systemctl is-active nginx" }, { command: "curl -fsS -o /dev/null http://localhost/" }],
        keepGenerations: 10,
    },
});

export const hostKey = linode.hostKey;
export const hostKeyFingerprint = linode.install.hostKeyFingerprint;
export const hardwareConfig = linode.install.hardwareConfig;
export const toplevel = linode.toplevel;
