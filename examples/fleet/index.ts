// Several machines in one stack. The engine deploys them in parallel; all of them share one
// provider process, which evaluates at most max(1, cores/2) configurations at a time and builds
// one at a time, so a fleet does not exhaust the machine that runs Pulumi.
//
//   pulumi config set privateKeyFile ~/.ssh/id_ed25519
//   pulumi config set flake "./infra#web"                 # the default configuration
//   pulumi config set --path 'machines[0].name' web1
//   pulumi config set --path 'machines[0].host' 203.0.113.10
//   pulumi config set --path 'machines[0].hostKey' "ssh-ed25519 AAAA…"
//   pulumi config set --path 'machines[1].name' db1
//   pulumi config set --path 'machines[1].host' 203.0.113.11
//   pulumi config set --path 'machines[1].flake' "./infra#db"
//   pulumi up
import * as fs from "node:fs";
import * as pulumi from "@pulumi/pulumi";
import { NixosMachine } from "pulumi-nixos";

interface Machine {
    name: string;
    host: string;
    hostKey?: string;
    /** This machine's configuration, when not the stack's `flake`. */
    flake?: string;
}

const config = new pulumi.Config();
const privateKey = pulumi.secret(fs.readFileSync(config.require("privateKeyFile"), "utf8"));
const fleet = config.requireObject<Machine[]>("machines");
const machines = fleet.map(
    (m) =>
        new NixosMachine(m.name, {
            connection: { host: m.host, hostKey: m.hostKey, privateKey },
            flake: m.flake ?? config.require("flake"),
            install: { kexecTarball: config.get("kexecTarball") },
            rebuild: { confirmTimeout: 30 },
        }),
);

/** Each machine's running system, by name. */
export const toplevels = pulumi.all(machines.map((m) => m.toplevel)).apply((paths) => Object.fromEntries(fleet.map((m, i) => [m.name, paths[i]])));
