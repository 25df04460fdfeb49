/**
 * NixosInstall with method "image": a disk image of the configuration written from a rescue
 * system (any Linux with dd; no Nix, no kexec, no RAM floor). Steps: build (the image, converted
 * to raw when it is not), facts (the disk, what uses it, the tools, a NixOS already on it), write
 * (stream and checksum, phases/image-write.ts), install (grow, files and host key,
 * phases/image-grow.ts), reboot (verified as for the other method). Each completed phase is
 * recorded, so a resumed run never writes the image twice once its checksum matched.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { NixosDeployError } from "../errors";
import { convertImage, imageFileOf, isRaw } from "../image/file";
import { growTools, ImageLayout, imageLayout } from "../image/layout";
import { fileSha256 } from "../image/stream";
import { mustBeLocal, realise } from "../nix/build";
import { limitBuild } from "../nix/limit";
import { phase, PhaseContext } from "../phases/context";
import { Facts, gatherFacts } from "../phases/facts";
import { diskFacts } from "../phases/image-disk";
import { growImage, writeIntoImage } from "../phases/image-grow";
import { diskChecksum, writeImage } from "../phases/image-write";
import { planHostKey } from "../phases/install";
import { newKeySalt } from "../ssh/derived-key";
import { imagePlacementProblems, readSystemLayout, SystemLayout } from "../phases/placement";
import { rebootInto } from "../phases/reboot";
import { fingerprint, parseHostKey } from "../ssh/hostkey";
import { Target } from "../ssh/target";
import { InstallInputs, installSchema, INSTALL_COMPUTED, phasesFor } from "../schema/install";
import { InstallEvaluated, installEvaluatedSchema, InstallOutputs, InstallPhase, InstallRecorded, installRecordedSchema, Raw, readState } from "../schema/state";
import { defined, logger, mustParse, partialFailure } from "./common";
import { adoptInstalled, refusePlacement } from "./install-phases";

export async function runImageInstall(id: string, props: Raw, carried: Partial<InstallRecorded>): Promise<InstallOutputs> {
    const run = new ImageInstall(props, carried);
    try {
        await run.build();
        await run.facts();
        await run.write();
        await run.install();
        await run.reboot();
        run.dropConversion();
        return run.outs;
    } catch (err) {
        throw partialFailure(err, id, defined(run.outs));
    } finally {
        run.ctx.target.close();
    }
}

interface Image {
    file: string;
    bytes: number;
    layout: ImageLayout;
    /** A raw file converted from another format: kept for a resumed run, removed once installed. */
    converted?: boolean;
}

class ImageInstall {
    readonly v: InstallInputs;
    readonly ctx: PhaseContext;
    private readonly evaluated: InstallEvaluated;
    private readonly recorded: InstallRecorded;
    private readonly phases: readonly InstallPhase[];
    private readonly hostKeys: ReturnType<typeof planHostKey>;
    private image!: Image;
    /** Where the built system mounts what, and where its sshd reads the host key. */
    private system!: SystemLayout;
    private disk = "";
    /** The machine already runs the system (an earlier run got that far): nothing is left to do. */
    private done = false;

    constructor(private readonly props: Raw, private readonly carried: Partial<InstallRecorded>) {
        this.v = mustParse(installSchema, props, INSTALL_COMPUTED);
        this.evaluated = readState(installEvaluatedSchema, props, "NixosInstall");
        this.recorded = readState(installRecordedSchema, { ...carried, phasesCompleted: [...(carried.phasesCompleted ?? [])] }, "NixosInstall");
        this.phases = phasesFor(this.v);
        this.hostKeys = planHostKey(this.v, carried.keySalt ?? newKeySalt());
        if (this.hostKeys.keySalt) this.recorded.keySalt = this.hostKeys.keySalt;
        this.ctx = { target: new Target({ ...this.v.connection }), log: logger(this.evaluated.__nixosName ?? "nixos-install"), env: process.env, cwd: process.cwd() };
    }

    get outs(): InstallOutputs {
        return { ...this.props, ...this.recorded };
    }

    private get toplevel(): string {
        if (!this.evaluated.toplevel) throw new Error("no evaluated toplevel: check() did not evaluate the source");
        return this.evaluated.toplevel;
    }

    private want(p: InstallPhase): boolean {
        return !this.done && this.phases.includes(p) && !this.recorded.phasesCompleted.includes(p);
    }

    private completed(p: InstallPhase): void {
        if (!this.recorded.phasesCompleted.includes(p)) this.recorded.phasesCompleted.push(p);
    }

    /** The image, built, as a raw file (converted when it is not), with its length and layout. */
    async build(): Promise<void> {
        const drv = this.evaluated.__drvs.image;
        if (!drv) throw new Error("no evaluated image: check() did not evaluate the image attribute");
        await limitBuild(() => phase(this.ctx, "build", () => realise([drv], process.env)));
        await mustBeLocal([drv.out]);
        if (!this.phases.some((p) => this.want(p))) return;
        let file = imageFileOf(drv.out);
        const converted = !(await isRaw(file));
        if (converted) {
            const raw = path.join(os.tmpdir(), "pulumi-nixos-images", `${path.basename(drv.out)}.raw`);
            if (!fs.existsSync(raw)) await convertImage(file, raw, "raw");
            file = raw;
        }
        const bytes = fs.statSync(file).size;
        if (bytes % 512 !== 0) throw new NixosDeployError({ host: "localhost", phase: "build", what: `the image ${file} is ${bytes} bytes, not a whole number of 512-byte sectors` });
        this.image = { file, bytes, layout: await imageLayout(file), converted };
        this.system = readSystemLayout(this.toplevel);
    }

    dropConversion(): void {
        if (this.image?.converted) fs.rmSync(this.image.file, { force: true });
    }

    async facts(): Promise<void> {
        const t = this.ctx.target;
        const f = await phase(this.ctx, "facts", async () => {
            // A resumed run may find the installed system answering with the planned host key.
            const alsoAccept = [this.carried.hostKey, this.hostKeys.expected].filter((k): k is string => !!k);
            await t.reconnect("facts", this.v.timeouts.connect, { alsoAccept });
            t.options = { ...t.options, hostKey: t.hostKey, alsoAccept: [] };
            return gatherFacts(this.ctx);
        });
        this.recorded.disks = f.disks.map((d) => d.name);
        if (this.runsAlready(f) || !this.image) return;
        this.disk = this.chooseDisk(f);
        const d = await diskFacts(this.ctx, this.disk, ["dd", "head", "sha256sum", "sync", "mount", "umount", ...growTools(this.image.layout)]);
        const fail = (what: string, hint: string) => {
            throw new NixosDeployError({ host: t.name, phase: "facts", what, hint });
        };
        if (d.inUse.length) fail(`${this.disk} is in use (${d.inUse.join("; ")}): the image cannot be written under a running system`, "boot the machine into its rescue system first, with nothing mounted from the disk");
        if (d.missing.length || !d.ddFullblock) fail(`the rescue system lacks ${[...d.missing, ...(d.ddFullblock ? [] : ["dd iflag=fullblock"])].join(", ")}`, "boot a rescue system that has them (util-linux's sfdisk and blockdev, e2fsprogs, btrfs-progs as the image needs)");
        if (this.want("install")) refusePlacement(this.ctx, imagePlacementProblems(this.system, { extraFiles: Object.keys(this.v.extraFiles), hostKey: true }));
        const ours = d.installed === this.toplevel;
        if (d.installed && !ours && this.want("write") && !this.v.allowReinstall) {
            fail(`${this.disk} already holds an installed NixOS (${d.installed}); writing the image would replace it`, "use NixosRebuild to change an installed machine; set allowReinstall: true to write the image over it");
        }
        if (ours && this.want("write")) await this.adoptEarlierWrite();
        this.ctx.log("facts", `${f.distro} with ${f.ramMiB} MiB RAM; writing to ${this.disk}`);
    }

    /** The machine runs this very system with the planned host key: an earlier run installed it. */
    private runsAlready(f: Facts): boolean {
        this.done = adoptInstalled(this.ctx, f, { toplevel: this.toplevel, planned: this.hostKeys.expected, phases: this.phases }, this.recorded);
        return this.done;
    }

    /** The disk named by imageDisk, or the machine's only disk; it must hold the whole image. */
    private chooseDisk(f: Facts): string {
        const fail = (what: string, hint: string) => {
            throw new NixosDeployError({ host: this.ctx.target.name, phase: "facts", what, hint });
        };
        const named = this.v.imageDisk;
        const disk = named ? f.disks.find((d) => `/dev/${d.name}` === named) : f.disks.length === 1 ? f.disks[0] : undefined;
        if (!disk) {
            const list = f.disks.map((d) => `/dev/${d.name}`).join(", ") || "none";
            if (named) fail(`imageDisk ${named} is not a disk of this machine (disks: ${list})`, "set imageDisk to one of the machine's disks");
            fail(`the machine has ${f.disks.length} disks (${list}); which one gets the image is not clear`, "set imageDisk to the disk to write, e.g. /dev/sda");
        }
        if (disk!.bytes < this.image.bytes) {
            fail(`/dev/${disk!.name} has ${disk!.bytes} bytes, less than the image's ${this.image.bytes}`, "build a smaller image (disko's imageSize) or use a bigger disk");
        }
        return `/dev/${disk!.name}`;
    }

    /** The disk holds this system already: an earlier run wrote it and its state was lost. Unchanged since, it is not written again. */
    private async adoptEarlierWrite(): Promise<void> {
        const [sum, image] = await Promise.all([diskChecksum(this.ctx, this.disk, this.image.bytes, this.v.timeouts.install), fileSha256(this.image.file)]);
        if (sum !== image) return;
        this.ctx.log("facts", `${this.disk} already holds this image (sha256 matches): not written again`);
        this.completed("write");
    }

    async write(): Promise<void> {
        if (!this.want("write")) return;
        await phase(this.ctx, "write", () => writeImage(this.ctx, { file: this.image.file, disk: this.disk, timeoutS: this.v.timeouts.install }));
        this.completed("write");
    }

    async install(): Promise<void> {
        if (!this.want("install")) return;
        const hostKey = await phase(this.ctx, "install", async () => {
            await growImage(this.ctx, this.disk, this.image.layout, this.v.timeouts.install);
            const pair = this.hostKeys.hostKeyPair;
            return writeIntoImage(this.ctx, this.disk, { system: this.system, extraFiles: this.v.extraFiles, hostKeyPair: typeof pair === "object" ? pair.privateKey : undefined });
        });
        this.recorded.hostKey = hostKey;
        this.recorded.hostKeyFingerprint = fingerprint(parseHostKey(hostKey).blob);
        this.completed("install");
    }

    async reboot(): Promise<void> {
        if (!this.want("reboot")) return;
        const { host: _host, proxy: _proxy, ...login } = this.v.connection;
        const boot = await phase(this.ctx, "reboot", () => rebootInto(this.ctx, { toplevel: this.toplevel, expectedHostKey: this.recorded.hostKey ?? "", login, timeoutS: this.v.timeouts.reboot }));
        this.recorded.bootId = boot.bootId;
        this.recorded.installedAt = new Date().toISOString();
        this.completed("reboot");
    }
}
