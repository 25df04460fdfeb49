import * as pulumi from "@pulumi/pulumi";

/**
 * How to reach a machine over SSH; the same shape as @pulumi/command's `remote.ConnectionArgs`.
 * Changing any of it never reinstalls or redeploys: the new details are stored and used next time.
 * The whole connection is stored as a secret.
 */
export interface ConnectionArgs {
    /** Address or name of the machine. For NixosInstall, a change replaces the resource (a different machine). @example "203.0.113.10" */
    host: pulumi.Input<string>;
    /** SSH port. Default: 22. */
    port?: pulumi.Input<number>;
    /**
     * Login user. Other users than root run every command through sudo: passwordless, or with
     * `password` as the sudo password (sent on stdin, never on a command line). After a kexec the
     * installer is reached as root. Default: "root".
     */
    user?: pulumi.Input<string>;
    /** Private key, OpenSSH or PEM text (never a path). Secret. */
    privateKey?: pulumi.Input<string>;
    /** Passphrase of privateKey. Secret. */
    privateKeyPassword?: pulumi.Input<string>;
    /** Password login, and the sudo password for a user other than root. Secret. */
    password?: pulumi.Input<string>;
    /** Path of an ssh-agent socket, e.g. process.env.SSH_AUTH_SOCK. */
    agentSocketPath?: pulumi.Input<string>;
    /**
     * The host key to expect, "ssh-ed25519 AAAA…". Checked on every connection before anything is
     * sent. Unset: the first key seen is trusted and recorded in the outputs. Default: unset.
     * @example "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI…"
     */
    hostKey?: pulumi.Input<string>;
    /** A bastion to tunnel through, with the same fields (no nested proxy). */
    proxy?: pulumi.Input<Omit<ConnectionArgs, "proxy">>;
    /** Dial attempts before giving up (at most 1000); -1 retries for up to 10 minutes. Default: 10. */
    dialErrorLimit?: pulumi.Input<number>;
    /** Seconds each dial attempt may take. Default: 15. */
    perDialTimeout?: pulumi.Input<number>;
}

/** A Nix binary cache shared by a fleet. */
export interface CacheArgs {
    /** Where targets substitute from: http(s)://, file:// or s3://. */
    url: pulumi.Input<string>;
    /** The cache's signing key, public half: "<name>:<base64>", as `nix key convert-secret-to-public` prints. */
    publicKey: pulumi.Input<string>;
    /**
     * A Nix store URL the deployer writes the closure to, signing it (`?secret-key=<file>`). Default: `url`.
     * Without `?secret-key=` (and no signature by `publicKey` on the deployer's paths) nothing is pushed, since
     * targets would refuse unsigned paths; a push that fails (a read-only https cache refuses Nix's PUT) is
     * logged, and the deployer then sends the missing paths itself.
     */
    pushTo?: pulumi.Input<string>;
}

/** Where the NixOS system comes from; exactly one of these is set. */
export interface SourceArgs {
    /**
     * A flake and configuration: "./infra#web" means nixosConfigurations.web of ./infra
     * (relative to the Pulumi program). "#host.example.com" names nixosConfigurations."host.example.com"; a fragment starting with nixosConfigurations., packages. or legacyPackages. is a full attribute path.
     * A flake evaluates purely: while its locked source (`nix flake metadata`) and the attribute stay the same, `pulumi preview` reuses the store paths of the last evaluation and runs no `nix eval`. A flake with an unlocked input is evaluated every time.
     * @example "./infra#web"
     */
    flake?: pulumi.Input<string>;
    /** A non-flake configuration.nix, evaluated through `<nixpkgs/nixos>` with these NIX_PATH entries. It is impure (files and NIX_PATH are read as they are), so it is evaluated at every preview and update. @example { file: "./configuration.nix", nixPath: { nixpkgs: "./npins/nixpkgs" } } */
    nixosConfiguration?: pulumi.Input<{ file: pulumi.Input<string>; nixPath?: pulumi.Input<Record<string, pulumi.Input<string>>> }>;
    /** Prebuilt store paths, like nixos-anywhere's --store-paths; they must be in the local store. `image` (a built disk image, a file or a folder holding one) is for installs by image and NixosImage. */
    storePaths?: pulumi.Input<{ toplevel: pulumi.Input<string>; diskoScript?: pulumi.Input<string>; image?: pulumi.Input<string> }>;
}
