// The benchmark's fleet (scripts/bench/preview.ts): one NixosMachine per entry of `machines`, each
// from its own configuration of one flake; with `source` set to "storePaths", from the toplevel the
// flake evaluated to, so that the same resources evaluate nothing.
import * as fs from "node:fs";
import * as pulumi from "@pulumi/pulumi";
import { NixosMachine } from "pulumi-nixos";

interface Machine {
    name: string;
    host: string;
    hostKey: string;
    flake: string;
    toplevel?: string;
}

const config = new pulumi.Config();
const privateKey = pulumi.secret(fs.readFileSync(config.require("privateKeyFile"), "utf8"));
const fleet = config.requireObject<Machine[]>("machines");
const fromStorePaths = config.get("source") === "storePaths";
const machines = fleet.map(
    (m) =>
        new NixosMachine(m.name, {
            connection: { host: m.host, hostKey: m.hostKey, privateKey },
            ...(fromStorePaths ? { storePaths: { toplevel: m.toplevel! } } : { flake: m.flake }),
            rebuild: { confirmTimeout: 30 },
        }),
);

export const toplevels = pulumi.all(machines.map((m) => m.toplevel)).apply((paths) => Object.fromEntries(fleet.map((m, i) => [m.name, paths[i]])));
