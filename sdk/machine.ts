import * as pulumi from "@pulumi/pulumi";
import type { CacheArgs, ConnectionArgs, SourceArgs } from "./connection";
import { NixosInstall, NixosInstallArgs } from "./install";
import { NixosRebuild, NixosRebuildArgs } from "./rebuild";

export interface NixosMachineArgs extends SourceArgs {
    /** How to reach the machine before the install; after it, the installed host key is pinned. Secret. */
    connection: pulumi.Input<ConnectionArgs>;
    /** NixosInstall's other inputs (phases, kexecTarball, diskoMode, extraFiles, …). */
    install?: Omit<NixosInstallArgs, "connection" | "flake" | "nixosConfiguration" | "storePaths" | "cache">;
    /** NixosRebuild's other inputs (action, healthChecks, confirmTimeout, …). */
    rebuild?: Omit<NixosRebuildArgs, "connection" | "flake" | "nixosConfiguration" | "storePaths" | "cache">;
    /** A binary cache for the install's and the rebuilds' copies (see NixosInstallArgs.cache). */
    cache?: pulumi.Input<CacheArgs>;
}

/**
 * One machine, all in one: NixosInstall puts NixOS on it once, then NixosRebuild keeps it at the
 * configuration, connecting with the host key the install generated.
 */
export class NixosMachine extends pulumi.ComponentResource {
    public readonly install: NixosInstall;
    public readonly rebuild: NixosRebuild;
    /** The running system's store path. */
    public readonly toplevel: pulumi.Output<string>;
    /** The installed system's SSH host key. */
    public readonly hostKey: pulumi.Output<string>;

    constructor(name: string, args: NixosMachineArgs, opts?: pulumi.ComponentResourceOptions) {
        super("pulumi-nodejs:dynamic/nixos:NixosMachine", name, {}, opts);
        const source = { flake: args.flake, nixosConfiguration: args.nixosConfiguration, storePaths: args.storePaths, cache: args.cache };
        this.install = new NixosInstall(`${name}-install`, { ...args.install, ...source, connection: args.connection }, { parent: this });
        const pinned = pulumi.all([pulumi.output(args.connection), this.install.hostKey]).apply(([c, hostKey]) => ({ ...c, hostKey }));
        this.rebuild = new NixosRebuild(`${name}-rebuild`, { ...args.rebuild, ...source, connection: pinned as pulumi.Input<ConnectionArgs> }, { parent: this, dependsOn: this.install });
        this.toplevel = this.rebuild.toplevel;
        this.hostKey = this.install.hostKey;
        this.registerOutputs({ toplevel: this.toplevel, hostKey: this.hostKey });
    }
}
