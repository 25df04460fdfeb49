// One machine, all in one: NixosMachine installs NixOS (kexec, disko, nixos-install, verified
// reboot), then keeps the machine at the flake's configuration. Changing the configuration shows
// the package changes in `pulumi preview --diff`; a configuration that locks us out or fails a
// health check is rolled back automatically.
//
//   pulumi config set host 203.0.113.10
//   pulumi config set hostKey "ssh-ed25519 AAAA…"            # the machine's current key
//   pulumi config set privateKeyFile ~/.ssh/id_ed25519
//   pulumi config set flake "./infra#web"
//   pulumi config set --path 'healthChecks[0]' "systemctl is-active nginx"   # optional
//   pulumi preview --diff && pulumi up
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
    flake: config.require("flake"),
    install: {
        // Default: nixos-images' installer for the machine's architecture, downloaded by the machine.
        kexecTarball: config.get("kexecTarball"),
    },
    rebuild: {
        // Seconds the new system has to accept a fresh SSH connection and pass the checks.
        confirmTimeout: config.getNumber("confirmTimeout") ?? 30,
        // Commands that must succeed on the new system, e.g. ["systemctl is-active nginx"].
        healthChecks: (config.getObject<string[]>("healthChecks") ?? []).map((command) => ({ command })),
        keepGenerations: 5,
    },
});

export const hostKey = web.hostKey;
export const toplevel = web.toplevel;
export const generation = web.rebuild.generation;
export const changes = web.rebuild.changes;
