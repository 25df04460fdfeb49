import * as pulumi from "@pulumi/pulumi";
import type { CacheArgs, ConnectionArgs, SourceArgs } from "./connection";

/** The dynamic provider shim: hooks load the implementation from the installed package at run time. */
const provider: pulumi.dynamic.ResourceProvider = {
    check: (olds, news) => require("pulumi-nixos/dist/provider/resources/rebuild").check(olds, news),
    diff: (id, olds, news) => require("pulumi-nixos/dist/provider/resources/rebuild").diff(id, olds, news),
    create: (inputs) => require("pulumi-nixos/dist/provider/resources/rebuild").create(inputs),
    update: (id, olds, news) => require("pulumi-nixos/dist/provider/resources/rebuild").update(id, olds, news),
    read: (id, props) => require("pulumi-nixos/dist/provider/resources/rebuild").read(id, props),
    delete: (id, props) => require("pulumi-nixos/dist/provider/resources/rebuild").del(id, props),
};

export interface NixosRebuildArgs extends SourceArgs {
    /** How to reach the installed machine. A change of `host` replaces the resource; the rest is only stored. Secret. */
    connection: pulumi.Input<ConnectionArgs>;
    /** switch: activate and make it the boot default; boot: boot default only; test: activate only; dry-activate: report what would change. Default: "switch". */
    action?: pulumi.Input<"switch" | "boot" | "test" | "dry-activate">;
    /**
     * For switch and test: roll back unless a new SSH connection confirms the new system within
     * confirmTimeout. If the deployer itself goes away, the machine rolls back on its own
     * confirmTimeout + 10 s after the activation. Default: true.
     */
    magicRollback?: pulumi.Input<boolean>;
    /** Seconds the target waits for the confirmation before rolling back. Default: 30. */
    confirmTimeout?: pulumi.Input<number>;
    /**
     * Commands run on the target over the confirming (new) connection; a non-zero exit rolls back.
     * `timeout` defaults to confirmTimeout. Default: []. @example [{ command: "systemctl is-active nginx" }]
     */
    healthChecks?: pulumi.Input<pulumi.Input<{ command: pulumi.Input<string>; timeout?: pulumi.Input<number> }>[]>;
    /** Accept exit code 4 (some units failed) instead of failing and rolling back. Default: false. */
    ignoreFailedUnits?: pulumi.Input<boolean>;
    /** Reboot after switch or boot when the new system has another kernel, and wait for it. Default: false. */
    rebootOnKernelChange?: pulumi.Input<boolean>;
    /** After a successful switch, remove all but this many newest system generations. Default: keep all. */
    keepGenerations?: pulumi.Input<number>;
    /** Any change of these values re-deploys, even with the same toplevel. */
    triggers?: pulumi.Input<unknown[]>;
    /** On delete, "rollback" re-activates the system that ran before the first deploy; "retain" leaves the machine. Default: "retain". */
    onDelete?: pulumi.Input<"retain" | "rollback">;
    /** Let the target fetch paths from its own substituters first. Default: true. */
    substituteOnDestination?: pulumi.Input<boolean>;
    /**
     * A binary cache for a fleet: the deployer pushes the closure to it once (`nix copy --to pushTo`,
     * default `url`), then the target substitutes from `url`, checking signatures against
     * `publicKey`, before the deployer sends what is still missing. With buildOn "remote" the cache is
     * not used. Default: none.
     * @example { url: "https://cache.example.org", publicKey: "cache.example.org-1:…", pushTo: "s3://nix-cache?secret-key=/etc/nix/cache.sec" }
     */
    cache?: pulumi.Input<CacheArgs>;
    /**
     * Where the system is built. "auto" and "local": on the machine running Pulumi, then only the
     * missing paths are copied. "remote": the derivations are copied and the target's own Nix builds
     * them (for a deployer of another architecture, or a slow link); preview then lists package
     * changes from derivations. Prebuilt storePaths are always copied. Default: "auto".
     */
    buildOn?: pulumi.Input<"auto" | "local" | "remote">;
    /** Bounds in seconds. Defaults: connect 60, activate 600. */
    timeouts?: pulumi.Input<{ connect?: pulumi.Input<number>; activate?: pulumi.Input<number> }>;
}

/**
 * Converges an installed NixOS machine to a configuration, like `nixos-rebuild --target-host`,
 * with the package changes visible in `pulumi preview --diff` and automatic rollback.
 */
export class NixosRebuild extends pulumi.dynamic.Resource {
    /** The configuration's store path, evaluated at preview; after a refresh, what runs. */
    public readonly toplevel!: pulumi.Output<string>;
    /** Package changes against the deployed system ("hello: 2.12.1 → 2.12.2"), computed at preview. */
    public readonly packageChanges!: pulumi.Output<string[]>;
    /** /run/current-system after the last deploy or refresh. */
    public readonly currentSystem!: pulumi.Output<string>;
    /** The system that ran before the first deploy. */
    public readonly initialSystem!: pulumi.Output<string>;
    /** The machine's SSH host key, pinned for later connections. */
    public readonly hostKey!: pulumi.Output<string>;
    public readonly hostKeyFingerprint!: pulumi.Output<string>;
    /** The system that ran before the last deploy. */
    public readonly previousToplevel!: pulumi.Output<string>;
    /** The system profile's generation number after the last deploy. */
    public readonly generation!: pulumi.Output<number>;
    /** When the last deploy was confirmed, ISO 8601. */
    public readonly activatedAt!: pulumi.Output<string>;
    /** The machine's boot id after the last deploy. */
    public readonly bootId!: pulumi.Output<string>;
    /** Package changes of the last deploy. */
    public readonly changes!: pulumi.Output<string[]>;
    /** dry-activate's report. */
    public readonly activationOutput!: pulumi.Output<string | undefined>;

    constructor(name: string, args: NixosRebuildArgs, opts?: pulumi.CustomResourceOptions) {
        const props = {
            ...args,
            connection: pulumi.secret(args.connection),
            __nixosName: name,
            toplevel: undefined,
            packageChanges: undefined,
            currentSystem: undefined,
            initialSystem: undefined,
            hostKey: undefined,
            hostKeyFingerprint: undefined,
            activationOutput: undefined,
            previousToplevel: undefined,
            generation: undefined,
            activatedAt: undefined,
            bootId: undefined,
            changes: undefined,
        };
        super(provider, name, props, { ...opts, additionalSecretOutputs: ["connection", ...(opts?.additionalSecretOutputs ?? [])] }, "nixos", "NixosRebuild");
    }
}
