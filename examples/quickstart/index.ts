// Installs NixOS onto a reachable Linux machine, then converges it to a flake configuration.
//
//   pulumi config set host 203.0.113.10
//   pulumi config set privateKeyFile ~/.ssh/id_ed25519      # read here; stored as a secret
//   pulumi config set hostKey "ssh-ed25519 AAAA…"            # optional: pin the machine's current key
//   pulumi config set flake "./infra#web"
//   pulumi up
import * as fs from "node:fs";
import * as pulumi from "@pulumi/pulumi";
import { NixosInstall, NixosRebuild } from "pulumi-nixos";

const config = new pulumi.Config();
const privateKeyFile = config.get("privateKeyFile");
const connection = {
    host: config.require("host"),
    port: config.getNumber("port"),
    user: config.get("user"),
    privateKey: privateKeyFile ? pulumi.secret(fs.readFileSync(privateKeyFile, "utf8")) : config.getSecret("privateKey"),
    hostKey: config.get("hostKey"),
};
const flake = config.require("flake");

// One install per machine: later configuration changes go through NixosRebuild below.
const machine = new NixosInstall("machine", {
    connection,
    flake: config.get("installFlake") ?? flake,
    kexecTarball: config.get("kexecTarball"),
});

const system = new NixosRebuild(
    "system",
    {
        // The installed system's host key, known before its first boot, pins every later connection.
        connection: { ...connection, hostKey: machine.hostKey },
        flake,
        healthChecks: (config.getObject<string[]>("healthChecks") ?? []).map((command) => ({ command })),
    },
    { dependsOn: machine },
);

export const hostKey = machine.hostKey;
export const hostKeyFingerprint = machine.hostKeyFingerprint;
export const toplevel = system.toplevel;
export const packageChanges = system.packageChanges;
