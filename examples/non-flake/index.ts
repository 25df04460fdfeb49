// Installs NixOS from a plain configuration.nix (no flakes) and keeps the machine at it. The
// channels are pinned paths, for example from npins:
//
//   npins init && npins add github nix-community disko
//   pulumi config set nixpkgs "$(nix-instantiate --eval --raw -E '(import ./npins).nixpkgs.outPath')"
//   pulumi config set disko "$(nix-instantiate --eval --raw -E '(import ./npins).disko.outPath')"
//   cp ~/.ssh/id_ed25519.pub authorized_keys
//   pulumi config set host 203.0.113.10
//   pulumi config set hostKey "ssh-ed25519 AAAA…"
//   pulumi config set privateKeyFile ~/.ssh/id_ed25519
//   pulumi up
//
// Updating nixpkgs (`npins update nixpkgs`, then the new path in config) shows the package
// changes in `pulumi preview --diff`, like `nixos-rebuild switch --no-flake --target-host` would
// apply them, but before they happen.
import * as fs from "node:fs";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { NixosInstall, NixosRebuild } from "pulumi-nixos";

const config = new pulumi.Config();
const connection = {
    host: config.require("host"),
    hostKey: config.get("hostKey"),
    privateKey: pulumi.secret(fs.readFileSync(config.require("privateKeyFile"), "utf8")),
};
const nixosConfiguration = {
    file: path.resolve(config.get("configuration") ?? "configuration.nix"),
    nixPath: { nixpkgs: config.require("nixpkgs"), disko: config.require("disko") },
};

const install = new NixosInstall("server-install", { connection, nixosConfiguration, kexecTarball: config.get("kexecTarball") });

const rebuild = new NixosRebuild(
    "server",
    { connection: { ...connection, hostKey: install.hostKey }, nixosConfiguration },
    { dependsOn: install },
);

export const hostKey = install.hostKey;
export const toplevel = rebuild.toplevel;
export const packageChanges = rebuild.packageChanges;
