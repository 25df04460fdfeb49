// Deploys systems a CI job has already built: no evaluation on the machine that runs Pulumi, only
// the closures (which must be in its Nix store, or reachable through its substituters).
//
//   # in CI
//   toplevel=$(nix build --print-out-paths ./infra#nixosConfigurations.web.config.system.build.toplevel)
//   disko=$(nix build --print-out-paths ./infra#nixosConfigurations.web.config.system.build.diskoScript)
//   pulumi config set toplevel "$toplevel"
//   pulumi config set diskoScript "$disko"
//   pulumi config set host 203.0.113.10
//   pulumi config set hostKey "ssh-ed25519 AAAA…"
//   pulumi config set privateKeyFile ~/.ssh/id_ed25519
//   pulumi up
//
// A new toplevel from CI is an update through NixosRebuild; the preview lists the package changes
// when both systems are in the local store.
import * as fs from "node:fs";
import * as pulumi from "@pulumi/pulumi";
import { NixosMachine } from "pulumi-nixos";

const config = new pulumi.Config();

const web = new NixosMachine("web", {
    connection: {
        host: config.require("host"),
        hostKey: config.get("hostKey"),
        privateKey: pulumi.secret(fs.readFileSync(config.require("privateKeyFile"), "utf8")),
    },
    storePaths: { toplevel: config.require("toplevel"), diskoScript: config.get("diskoScript") },
    install: { kexecTarball: config.get("kexecTarball") },
    rebuild: { healthChecks: [{ command: "systemctl is-active sshd" }] },
});

export const hostKey = web.hostKey;
export const toplevel = web.toplevel;
export const changes = web.rebuild.changes;
