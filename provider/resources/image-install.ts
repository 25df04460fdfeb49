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
import { bootProblem, imageBoot } from "../image/boot";
import { convertImage, imageFileOf, isRaw } from "../image/file";
import { IMAGE_LAYOUT_HINT, imageLayoutProblems } from "../image/holders";
import { growTools, ImageLayout, imageLayout } from "../image/layout";
import { fileSha256 } from "../image/stream";
import { mustBeLocal, realise } from "../nix/build";
import { limitBuild } from "../nix/limit";
import { phase, PhaseContext } from "../phases/context";
import { Facts, gatherFacts } from "../phases/facts";
import { missingBootDevices } from "../phases/boot-devices";
import { DiskFacts, diskFacts, refuseSectorSize, resolveDevice, SHORT_MS, wipeEnd } from "../phases/image-disk";
import { growImage, writeIntoImage } from "../phases/image-grow";
import { rescueToolProblems, RESCUE_TOOLS_HINT } from "../phases/image-tools";
import { diskChecksum, writeImage } from "../phases/image-write";
import { planHostKey } from "../phases/install";
import { newKeySalt } from "../ssh/derived-key";
import { imagePlacementProblems, readSystemLayout, refuseHiddenByEtcOverlay, SystemLayout } from "../phases/placement";
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

    /**
     * The system the image holds, which the machine boots: disko's image builder installs the
     * configuration as changed for its build VM (nix/image-system.ts), else the configuration's.
     * Once written, the disk's system profile says (recorded at install).
     */
    private get toplevel(): string {
        const t = this.recorded.installedToplevel ?? this.evaluated.imageToplevel ?? this.evaluated.toplevel;
        if (!t) throw new Error("no evaluated toplevel: check() did not evaluate the source");
        return t;
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
        // The image's own system is built with it; realised here too so that its etc/ is readable.
        const system = this.evaluated.__drvs.imageToplevel;
        await limitBuild(() => phase(this.ctx, "build", () => realise(system ? [drv, system] : [drv], process.env)));
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
        this.disk = await this.chooseDisk(f);
        const d = await diskFacts(this.ctx, this.disk, ["dd", "head", "sha256sum", "sync", "mount", "umount", ...growTools(this.image.layout)]);
        this.refuseDisk(d);
        if (this.want("install")) await this.refuseWhatInstallCannotDo();
        this.refuseMissingDevices(f);
        await this.refuseFirmware(f);
        const ours = d.installed === this.toplevel;
        if (d.installed && !ours && this.want("write") && !this.v.allowReinstall) {
            this.fail(`${this.disk} already holds an installed NixOS (${d.installed}); writing the image would replace it`, "use NixosRebuild to change an installed machine; set allowReinstall: true to write the image over it");
        }
        if (ours && this.want("write")) await this.adoptEarlierWrite();
        this.ctx.log("facts", `${f.distro} with ${f.ramMiB} MiB RAM; writing to ${this.disk}`);
    }

    private fail(what: string, hint: string): never {
        throw new NixosDeployError({ host: this.ctx.target.name, phase: "facts", what, hint });
    }

    /** The disk itself: nothing uses it, the rescue system has the tools, its sectors are the image's. */
    private refuseDisk(d: DiskFacts): void {
        if (d.inUse.length) this.fail(`${this.disk} is in use (${d.inUse.join("; ")}): the image cannot be written under a running system`, "boot the machine into its rescue system first, with nothing mounted from the disk; where the rescue system assembled RAID, LVM or LUKS from it, stop them (mdadm --stop, vgchange -an, cryptsetup close)");
        if (d.missing.length || !d.ddFullblock) this.fail(`the rescue system lacks ${[...d.missing, ...(d.ddFullblock ? [] : ["dd iflag=fullblock"])].join(", ")}`, "boot a rescue system that has them (util-linux's sfdisk and blockdev, e2fsprogs, btrfs-progs as the image needs)");
        refuseSectorSize(this.ctx.target.name, this.disk, d.sectorSize);
    }

    /** The install step: where the files go, whether the rescue can open and grow what holds them. */
    private async refuseWhatInstallCannotDo(): Promise<void> {
        const files = { extraFiles: Object.keys(this.v.extraFiles), hostKey: true };
        refusePlacement(this.ctx, imagePlacementProblems(this.system, files));
        const unopenable = imageLayoutProblems(this.image.layout, this.system, files.extraFiles);
        if (unopenable.length) this.fail(unopenable.join("; "), IMAGE_LAYOUT_HINT);
        const tooOld = await rescueToolProblems(this.ctx, this.image.layout, this.system);
        if (tooOld.length) this.fail(tooOld.join("; "), RESCUE_TOOLS_HINT);
        refuseHiddenByEtcOverlay(this.ctx.target.name, this.system, files);
    }

    /** The image's system mounts a disk the machine does not have: it would stop in stage 1 at every boot. */
    private refuseMissingDevices(f: Facts): void {
        const missing = missingBootDevices(this.system.mounts, f.disks.map((d) => d.name));
        if (!missing.length) return;
        this.fail(
            `the image's system mounts ${missing.map((m) => `${m.device} on ${m.point}`).join(", ")}, but the machine's disks are ${f.disks.map((d) => `/dev/${d.name}`).join(", ") || "none"}: it would wait for that device at boot and never come up`,
            "name file systems by label, UUID or partition label (disko's GPT partitions use /dev/disk/by-partlabel/…); disko's image builder renames whole-disk and MBR devices to /dev/vda…, so such an image boots only where the disk is /dev/vda",
        );
    }

    /** A partitioned image that the machine's firmware (as its rescue booted: BIOS or UEFI) cannot start. */
    private async refuseFirmware(f: Facts): Promise<void> {
        if (!this.image.layout.table) return;
        const boot = await imageBoot(this.image.file, this.image.layout);
        if (f.efi && boot.removable === undefined) this.ctx.log("facts", "the image's EFI system partition cannot be read here (mtools' mdir is missing): its removable boot path is not checked");
        const problem = bootProblem(boot, f.efi);
        if (problem) this.fail(problem.what, problem.hint);
    }

    /** The machine runs this very system with the planned host key: an earlier run installed it. */
    private runsAlready(f: Facts): boolean {
        this.done = adoptInstalled(this.ctx, f, { toplevel: this.toplevel, planned: this.hostKeys.expected, phases: this.phases }, this.recorded);
        return this.done;
    }

    /**
     * The disk named by imageDisk (a link such as /dev/disk/by-id/… is resolved on the machine, and
     * the disk it names is written), or the machine's only disk; it must hold the whole image.
     */
    private async chooseDisk(f: Facts): Promise<string> {
        const named = this.v.imageDisk;
        const isDisk = (p: string) => f.disks.find((d) => `/dev/${d.name}` === p);
        const resolved = named && !isDisk(named) ? await resolveDevice(this.ctx, named) : named;
        const disk = resolved ? isDisk(resolved) : f.disks.length === 1 ? f.disks[0] : undefined;
        if (!disk) {
            const list = f.disks.map((d) => `/dev/${d.name}`).join(", ") || "none";
            const shown = resolved && resolved !== named ? `${named} (${resolved})` : named;
            if (named) this.fail(`imageDisk ${shown} is not a disk of this machine (disks: ${list})`, "set imageDisk to one of the machine's disks, or a /dev/disk/by-id/… link to one");
            this.fail(`the machine has ${f.disks.length} disks (${list}); which one gets the image is not clear`, "set imageDisk to the disk to write, e.g. /dev/sda");
        }
        if (named && resolved !== named) this.ctx.log("facts", `imageDisk ${named} is ${resolved}`);
        if (disk!.bytes < this.image.bytes) {
            this.fail(`/dev/${disk!.name} has ${disk!.bytes} bytes, less than the image's ${this.image.bytes}`, "build a smaller image (disko's imageSize) or use a bigger disk");
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
        await phase(this.ctx, "write", async () => {
            await writeImage(this.ctx, { file: this.image.file, disk: this.disk, timeoutS: this.v.timeouts.install });
            await this.ctx.target.run(wipeEnd(this.disk, this.image.bytes), { phase: "write", what: `zeroing the last MiB of ${this.disk}`, timeoutMs: SHORT_MS });
        });
        this.completed("write");
    }

    async install(): Promise<void> {
        if (!this.want("install")) return;
        const hostKey = await phase(this.ctx, "install", async () => {
            await growImage(this.ctx, this.disk, this.image.layout, this.v.timeouts.install, this.system);
            const pair = this.hostKeys.hostKeyPair;
            return writeIntoImage(this.ctx, this.disk, { system: this.system, extraFiles: this.v.extraFiles, hostKeyPair: typeof pair === "object" ? pair.privateKey : undefined });
        });
        this.recorded.hostKey = hostKey;
        this.recorded.hostKeyFingerprint = fingerprint(parseHostKey(hostKey).blob);
        this.recorded.installedToplevel = await this.systemOnDisk();
        this.completed("install");
    }

    /** The system profile the written disk holds: the system its first boot runs. */
    private async systemOnDisk(): Promise<string> {
        const expected = this.toplevel;
        const found = (await diskFacts(this.ctx, this.disk, [])).installed;
        if (!found || found === "unknown" || found === expected) return expected;
        this.ctx.log("install", `the image's system profile is ${found}, not ${expected}: the reboot checks for ${found}`);
        return found;
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
