// Converges an already-installed NixOS machine (installed by hand, nixos-anywhere or NixosInstall)
// to a flake configuration, like `nixos-rebuild switch --target-host`, but previewable and with
// rollback when the new system fails its health checks or locks us out.
//
//   pulumi config set host 203.0.113.10
//   pulumi config set hostKey "ssh-ed25519 AAAA…"
//   pulumi config set privateKeyFile ~/.ssh/id_ed25519
//   pulumi config set flake "./infra#web"
//   pulumi preview --diff      # shows the package versions that change
//   pulumi up
import * as fs from "node:fs";
import * as pulumi from "@pulumi/pulumi";
import { NixosRebuild } from "pulumi-nixos";

const config = new pulumi.Config();

const web = new NixosRebuild("web", {
    connection: {
        host: config.require("host"),
        hostKey: config.require("hostKey"),
        privateKey: pulumi.secret(fs.readFileSync(config.require("privateKeyFile"), "utf8")),
    },
    flake: config.require("flake"),
    action: (config.get("action") as "switch" | "boot" | "test" | "dry-activate" | undefined) ?? "switch",
    // Checked over a fresh SSH connection; if one fails, the machine goes back to what ran before.
    healthChecks: [{ command: "test -x /run/current-system/sw/bin/hello" }],
    confirmTimeout: 30,
    // `pulumi destroy` puts back the system that ran before this stack first deployed.
    onDelete: "rollback",
});

export const toplevel = web.toplevel;
export const currentSystem = web.currentSystem;
export const packageChanges = web.packageChanges;
