import * as pulumi from "@pulumi/pulumi";
import type { CacheArgs, ConnectionArgs, SourceArgs } from "./connection";

/**
 * The dynamic provider: a shim whose hooks load the implementation from the installed
 * pulumi-nixos package at run time, so upgrading the package upgrades existing resources and
 * nothing heavy is serialized into the state.
 */
const provider: pulumi.dynamic.ResourceProvider = {
    check: (olds, news) => require("pulumi-nixos/dist/provider/resources/install").check(olds, news),
    diff: (id, olds, news) => require("pulumi-nixos/dist/provider/resources/install").diff(id, olds, news),
    create: (inputs) => require("pulumi-nixos/dist/provider/resources/install").create(inputs),
    update: (id, olds, news) => require("pulumi-nixos/dist/provider/resources/install").update(id, olds, news),
    read: (id, props) => require("pulumi-nixos/dist/provider/resources/install").read(id, props),
    delete: (id, props) => require("pulumi-nixos/dist/provider/resources/install").del(id, props),
};

export interface NixosInstallArgs extends SourceArgs {
    /** How to reach the machine before the install. A change of `host` replaces the resource; anything else is only stored. Secret. */
    connection: pulumi.Input<ConnectionArgs>;
    /**
     * How NixOS gets onto the disk. "nixos-install": kexec into an installer (1.5 GiB of RAM),
     * disko, closure copy and nixos-install. "image": for a machine booted into its provider's
     * rescue system (any Linux with dd; no Nix, no RAM floor, e.g. a 512 MiB VPS), the
     * configuration's disk image (imageAttribute) is written to the disk over SSH (zero runs are
     * zeroed on the target, not sent; compressed when the link is slow), its sha256 checked, the
     * last partition and its file system (ext2/3/4, btrfs, xfs) grown to the disk, extraFiles and
     * the host key written into its root file system, and the machine rebooted and checked as for
     * the other method. Default: "nixos-install".
     */
    method?: pulumi.Input<"nixos-install" | "image">;
    /**
     * With method "image": the attribute of config.system.build that builds the disk image (one
     * raw or qcow2 file, or a folder holding one). Default: "diskoImages", disko's image output.
     */
    imageAttribute?: pulumi.Input<string>;
    /**
     * With method "image": the disk to write, e.g. "/dev/sda", or a link to it such as
     * "/dev/disk/by-id/nvme-…" (stable where NVMe names change between boots), resolved on the
     * machine. Default: the machine's only disk (refused when it has several).
     */
    imageDisk?: pulumi.Input<string>;
    /**
     * Which phases run. Default: ["kexec", "disko", "install", "reboot"]; with method "image":
     * ["write", "install", "reboot"]. kexec is skipped on a machine already running a NixOS installer.
     */
    phases?: pulumi.Input<pulumi.Input<"kexec" | "disko" | "write" | "install" | "reboot">[]>;
    /** The kexec tarball: a local file or an URL the target downloads. Default: nixos-images' noninteractive installer for the target's architecture. Secret: a private or presigned URL carries its credentials; logs and errors show it without user, password or query, and it reaches curl or wget on stdin, never on a command line. */
    kexecTarball?: pulumi.Input<string>;
    /**
     * SSH port of the installer after kexec. nixos-images' installer listens on 22 whatever port the
     * old system's sshd used; set this only for a custom image that listens elsewhere. The installer
     * is reached as root, with connection.privateKey (or, for a password login, a key made for this
     * install) which is put into root's authorized_keys before the kexec so that the image carries it.
     * Default: 22.
     */
    postKexecSshPort?: pulumi.Input<number>;
    /**
     * Which of the configuration's disko scripts run. "disko": diskoScript, which destroys, formats
     * and mounts (refused on disks that hold an installed NixOS unless allowReinstall). "format":
     * formatScript, which creates what is missing and does not mount, then mountScript. "mount":
     * mountScript only, to install over existing file systems. Default: "disko".
     */
    diskoMode?: pulumi.Input<"disko" | "format" | "mount">;
    /**
     * Where the system is built. "auto" and "local": on the machine running Pulumi, then only the
     * missing paths are copied. "remote": the derivations are copied and the target's own Nix builds
     * them (for a deployer of another architecture, or a slow link); preview then lists package
     * changes from derivations. Prebuilt storePaths are always copied. Default: "auto".
     */
    buildOn?: pulumi.Input<"auto" | "local" | "remote">;
    /** Let the target fetch paths from its own substituters before copying the rest. Default: true. */
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
     * Files written into the new system before nixos-install, keyed by absolute path. Secret.
     * `owner` is numeric ("uid" or "uid:gid") or "root": the files are written from the installer,
     * which has none of the target's users, so a name like "app" is refused at check. Give the
     * user a fixed uid in the configuration (users.users.app.uid) and use that number.
     * @example { "/var/lib/app/token": { content: token, mode: "0600", owner: "1001:1001" } }
     */
    extraFiles?: pulumi.Input<Record<string, pulumi.Input<{ content?: pulumi.Input<string>; source?: pulumi.Input<string>; mode?: pulumi.Input<string>; owner?: pulumi.Input<string> }>>>;
    /** Disk-encryption keys written to the installer's RAM before disko, keyed by path (e.g. "/tmp/disk.key"). Secret. */
    diskEncryptionKeys?: pulumi.Input<Record<string, pulumi.Input<string>>>;
    /**
     * Keep the machine's current SSH host keys in the new system, so known_hosts entries stay
     * valid. They are read before the kexec and held in the installer's RAM, so this works even
     * when the kexec image does not carry them. Cannot be combined with hostKeyPair.privateKey.
     * Default: false. A change does not replace.
     */
    copyHostKeys?: pulumi.Input<boolean>;
    /**
     * The new system's SSH host key. "generate" makes an ed25519 pair on the deployer, so the key
     * is known (output `hostKey`) before the reboot and checked after it. It is derived from
     * connection.privateKey and the host address, so an install repeated after its state was lost
     * (a killed `pulumi up`) writes the same key and recognises the system it installed. From
     * connection.password it is derived with scrypt and a random salt kept in the state (the public
     * key must not test password guesses), so a run that lost the state makes another; with an
     * agent login it is random. "keep" keeps the machine's keys; or give a
     * private key. Default: "generate". The private key is never stored.
     * The key is written where the configuration's sshd reads it (services.openssh.hostKeys, from
     * the built system's sshd_config). With a tmpfs root (impermanence, by its etc/fstab) that path
     * and every extraFiles path must be on a disk-backed mount such as /nix: otherwise the install
     * is refused before anything changes.
     */
    hostKeyPair?: pulumi.Input<"generate" | "keep" | { privateKey: pulumi.Input<string> }>;
    /** Capture the hardware configuration into the `hardwareConfig` output. Default: "none". */
    hardwareConfig?: pulumi.Input<"none" | "nixos-generate-config" | "nixos-facter">;
    /** Changing it means "a different machine": the resource is replaced and NixOS installed again. */
    instanceId?: pulumi.Input<string>;
    /** Allow formatting (or, with method "image", overwriting) disks that hold an installed NixOS. Default: false. */
    allowReinstall?: pulumi.Input<boolean>;
    /** Bounds in seconds. Defaults: connect 60, kexec 600, install 3600, reboot 600. */
    timeouts?: pulumi.Input<{ connect?: pulumi.Input<number>; kexec?: pulumi.Input<number>; install?: pulumi.Input<number>; reboot?: pulumi.Input<number> }>;
}

/**
 * Installs NixOS onto a Linux machine reachable over SSH: host facts, kexec into an installer,
 * disko, closure copy, nixos-install, reboot and a check that the installed system runs.
 * Later configuration changes belong to NixosRebuild; this resource does not redeploy them.
 */
export class NixosInstall extends pulumi.dynamic.Resource {
    /** The installed system's store path, evaluated at preview. */
    public readonly toplevel!: pulumi.Output<string>;
    /** The disko script's store path, evaluated at preview. */
    public readonly diskoScript!: pulumi.Output<string | undefined>;
    /** With method "image": the disk image's store path, evaluated at preview. */
    public readonly image!: pulumi.Output<string | undefined>;
    /**
     * With method "image", when the image holds another system than `toplevel`: its store path,
     * evaluated at preview. disko's image builder installs the configuration as changed for its
     * build VM (disks renamed to /dev/vda…, GRUB devices forced to /dev/vda or "nodev"); the machine
     * boots that system until the first NixosRebuild switches to `toplevel`.
     */
    public readonly imageToplevel!: pulumi.Output<string | undefined>;
    /** The system the install put on the disk and verified after the reboot (with method "image": the image's, read from its system profile). */
    public readonly installedToplevel!: pulumi.Output<string | undefined>;
    /** The installed system's SSH host key, "ssh-ed25519 AAAA…". */
    public readonly hostKey!: pulumi.Output<string>;
    /** Its SHA256 fingerprint, as ssh-keygen -l prints it. */
    public readonly hostKeyFingerprint!: pulumi.Output<string>;
    /** The captured hardware configuration, or "". */
    public readonly hardwareConfig!: pulumi.Output<string>;
    /** Boot id of the first boot of the installed system. */
    public readonly bootId!: pulumi.Output<string>;
    /** When the install was confirmed, ISO 8601. */
    public readonly installedAt!: pulumi.Output<string>;
    /** Phases that completed; a failed install resumes after these on the next `pulumi up`. */
    public readonly phasesCompleted!: pulumi.Output<string[]>;
    /** Secret connection, as given. */
    public readonly connection!: pulumi.Output<ConnectionArgs>;

    constructor(name: string, args: NixosInstallArgs, opts?: pulumi.CustomResourceOptions) {
        const secret = <T>(v: T | undefined) => (v === undefined ? undefined : pulumi.secret(v));
        const props = {
            ...args,
            connection: pulumi.secret(args.connection),
            extraFiles: secret(args.extraFiles),
            diskEncryptionKeys: secret(args.diskEncryptionKeys),
            hostKeyPair: secret(args.hostKeyPair),
            kexecTarball: secret(args.kexecTarball),
            __nixosName: name,
            toplevel: undefined,
            diskoScript: undefined,
            image: undefined,
            imageToplevel: undefined,
            installedToplevel: undefined,
            hostKey: undefined,
            hostKeyFingerprint: undefined,
            hardwareConfig: undefined,
            bootId: undefined,
            installedAt: undefined,
            phasesCompleted: undefined,
        };
        super(provider, name, props, { ...opts, additionalSecretOutputs: ["connection", "extraFiles", "diskEncryptionKeys", "hostKeyPair", "installerAccessKey", ...(opts?.additionalSecretOutputs ?? [])] }, "nixos", "NixosInstall");
    }
}
