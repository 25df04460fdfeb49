/**
 * Test hosts: real sshd machines, each in its own network, mount, PID, UTS and time namespaces,
 * with a private /nix, its own loop-device disks and emulated reboot, kexec and nixos-install.
 * See tests/testbed/README.md for what a host is and how it behaves.
 */
import { execFile, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as net from "node:net";
import * as path from "node:path";
import { clientKey, runDir, stateDir } from "./state";

const SH = path.join(__dirname, "sh");
const BRIDGE = "pnxbr0";
const BRIDGE_ADDR = "10.123.0.1";

/**
 * "rescue": a hosting provider's rescue system (Debian without Nix, 512 MiB unless memMiB says
 * otherwise), armed for one boot as rescue modes are: later boots start what the disks carry.
 */
export type HostKind = "debian" | "installer" | "rescue";

export interface HostOptions {
    /** Host name shown by `hostname` on the target. Default: "target". */
    name?: string;
    /** What the host boots when no disk carries an installed system (a rescue host: its first boot). Default: "debian". */
    kind?: HostKind;
    /** Whether Debian's Nix is on the host. Default: true. */
    nix?: boolean;
    /** Commands to remove from the host's /usr/bin and /usr/sbin, e.g. ["tar", "cpio"]. */
    removeCommands?: string[];
    /** Loop-device disks, seen inside the host as /dev/vda, /dev/vdb, ... (size in MiB each). */
    disks?: number[];
    /** Logical sector size of every disk (a 4Kn drive: 4096), as `blockdev --getss` reports it. Default: 512. */
    sectorSize?: 512 | 4096;
    /** RAM the host reports in /proc/meminfo, in MiB. Default: the machine's. */
    memMiB?: number;
    /**
     * An extra login user allowed to sudo: on Debian, and on the installed system only when its
     * configuration declares it; never in the installer. With a password, sudo asks for it and
     * password logins are on; with authorizedKeys false, the user has no key (password-only).
     */
    extraUser?: { name: string; password?: string; authorizedKeys?: boolean };
    /** The old system's sshd port (Debian only; installers listen on 22, installed systems where their sshd_config says). Default: 22. */
    sshPort?: number;
    /** The old system's PermitRootLogin (Debian only). Default: "prohibit-password", or "yes" with rootPassword. */
    permitRootLogin?: "yes" | "prohibit-password" | "no";
    /** Root's password; also turns on password logins. */
    rootPassword?: string;
    /** Public keys allowed to log in as root. Default: the test run's client key. */
    authorizedKeys?: string[];
    /**
     * A rescue host whose rescue mode persists across reboots until `bootFromDisk()`, as OVH's netboot
     * rescue does (the boot mode is a setting applied every time the server boots, OVHcloud KB0074811).
     * Default: armed for one boot.
     */
    rescuePersists?: boolean;
    /** A rescue host whose rescue system keeps its host keys from boot to boot. Default: new keys at every rescue boot, as Hetzner's and OVH's. */
    rescueKeepsHostKeys?: boolean;
    /** How the host's firmware boots: "bios" (the boot code of a partitioned disk's MBR) or "efi" (an ESP's removable path only). Default: "bios". */
    firmware?: "bios" | "efi";
    /** Seconds a reboot keeps the host down. Default: 1. */
    rebootDelay?: number;
    /** Seconds to wait for sshd on boot. Default: 20. */
    bootTimeout?: number;
    /**
     * Old grow tools ahead of the real ones on PATH (except on an installed NixOS): util-linux 2.33's
     * sfdisk and e2fsprogs 1.46's e2fsck and resize2fs (sh/target-bin/old-tools). Default: false.
     */
    oldTools?: boolean;
}

export interface ExecResult {
    stdout: string;
    stderr: string;
    code: number;
}

export interface HostRecord {
    id: string;
    dir: string;
    netns: string;
    veth: string;
    ipSlot: string;
    loops: string[];
}

function sleep(ms: number): Promise<void> {
    return new Promise((r) => setTimeout(r, ms));
}

async function run(cmd: string, args: string[], input?: string): Promise<ExecResult> {
    return new Promise((resolve) => {
        const child = execFile(cmd, args, { maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
            const code = err ? (typeof (err as any).code === "number" ? (err as any).code : 1) : 0;
            resolve({ stdout: String(stdout), stderr: String(stderr), code });
        });
        if (input !== undefined) child.stdin!.end(input);
    });
}

async function must(cmd: string, args: string[]): Promise<string> {
    const r = await run(cmd, args);
    if (r.code !== 0) throw new Error(`test bed: ${cmd} ${args.join(" ")} failed (${r.code}): ${r.stderr.trim()}`);
    return r.stdout;
}

/** Alive and not a zombie: orphans here are reaped late, so kill(pid, 0) alone is not enough. */
export function alive(pid: number): boolean {
    try {
        const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
        return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
    } catch {
        return false;
    }
}

/** Waits until addr:port answers with an SSH banner; returns the banner. */
export async function waitForSsh(address: string, port: number, timeoutMs: number): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
        const banner = await new Promise<string | undefined>((resolve) => {
            const sock = net.connect({ host: address, port });
            let buf = "";
            const done = (v: string | undefined) => {
                sock.destroy();
                resolve(v);
            };
            sock.setTimeout(1000, () => done(undefined));
            sock.on("data", (d) => {
                buf += d.toString();
                if (buf.includes("\n")) done(buf.startsWith("SSH-2.0") ? buf.trim() : undefined);
            });
            sock.on("error", () => done(undefined));
            sock.on("close", () => done(undefined));
        });
        if (banner) return banner;
        if (Date.now() > deadline) throw new Error(`test bed: no SSH banner from ${address}:${port} within ${timeoutMs} ms`);
        await sleep(50);
    }
}

async function ensureBridge(): Promise<void> {
    const script = `ip link show ${BRIDGE} >/dev/null 2>&1 || {
        ip link add ${BRIDGE} type bridge && sysctl -qw net.ipv6.conf.${BRIDGE}.disable_ipv6=1 &&
        ip addr add ${BRIDGE_ADDR}/24 dev ${BRIDGE} && ip link set ${BRIDGE} up; }`;
    await must("flock", [path.join(stateDir(), "bridge.lock"), "sh", "-c", script]);
}

function claimAddress(id: string): { slot: string; address: string } {
    const ips = path.join(stateDir(), "ips");
    fs.mkdirSync(ips, { recursive: true });
    // Start at a random address: a just-freed address may still sit in the bridge's ARP cache.
    const start = Math.floor(Math.random() * 253);
    for (let i = 0; i < 253; i++) {
        const n = 2 + ((start + i) % 253);
        const slot = path.join(ips, String(n));
        try {
            fs.mkdirSync(slot);
        } catch {
            continue;
        }
        fs.writeFileSync(path.join(slot, "owner"), id);
        return { slot, address: `10.123.0.${n}` };
    }
    throw new Error("test bed: all 253 addresses of 10.123.0.0/24 are taken");
}

export class Host {
    readonly id: string;
    readonly name: string;
    readonly address: string;
    /** The port sshd listens on for the current boot (22, or the kexec image's port). */
    port = 22;
    /** The current host key, "ssh-ed25519 AAAA…". Changes when the host boots with new keys. */
    hostKey = "";
    readonly dir: string;
    private readonly record: HostRecord;
    private readonly options: HostOptions;
    private supervisor?: ReturnType<typeof spawn>;

    private constructor(record: HostRecord, address: string, name: string, options: HostOptions) {
        this.id = record.id;
        this.dir = record.dir;
        this.record = record;
        this.address = address;
        this.name = name;
        this.options = options;
    }

    /** The host's network namespace (for a process of this machine's that serves on the bridge as the host). */
    get netns(): string {
        return this.record.netns;
    }

    /** Disk device names inside the host, in boot order: ["vda", "vdb", …]. */
    get disks(): string[] {
        return this.record.loops.map((_, i) => "vd" + String.fromCharCode(97 + i));
    }

    /** The machine's loop devices backing the disks, in the same order. */
    get loopDevices(): string[] {
        return [...this.record.loops];
    }

    /** Creates and boots a host; resolves when its sshd answers. */
    static async create(options: HostOptions = {}): Promise<Host> {
        if (process.getuid && process.getuid() !== 0) {
            throw new Error("test bed: test hosts need root (network namespaces, loop devices, mounts); run the tests as root");
        }
        const id = "h" + randomBytes(3).toString("hex");
        const dir = path.join(stateDir(), "hosts", id);
        const { slot, address } = claimAddress(id);
        const record: HostRecord = { id, dir, netns: `pnx-${id}`, veth: `pnx-${id}`, ipSlot: slot, loops: [] };
        fs.mkdirSync(path.join(runDir(), "hosts"), { recursive: true });
        const recordFile = path.join(runDir(), "hosts", id + ".json");
        const save = () => fs.writeFileSync(recordFile, JSON.stringify(record));
        save();
        const name = options.name ?? "target";
        const host = new Host(record, address, name, options);
        try {
            for (const d of ["ctl", "upper", "work", "nix", "probe", "merged", "disks"]) {
                fs.mkdirSync(path.join(dir, d), { recursive: true });
            }
            for (const [i, mib] of (options.disks ?? []).entries()) {
                const img = path.join(dir, "disks", `vd${String.fromCharCode(97 + i)}.img`);
                fs.writeFileSync(img, "");
                fs.truncateSync(img, mib * 1024 * 1024);
                record.loops.push((await must("losetup", ["--find", "--show", "--sector-size", String(options.sectorSize ?? 512), img])).trim());
                // A loop device keeps a read-only flag (blockdev --setro) from its last user.
                await must("blockdev", ["--setrw", record.loops[record.loops.length - 1]]);
                save();
            }
            await ensureBridge();
            await must("ip", ["netns", "add", record.netns]);
            await must("ip", ["link", "add", record.veth, "type", "veth", "peer", "name", "eth0", "netns", record.netns]);
            await must("sysctl", ["-qw", `net.ipv6.conf.${record.veth}.disable_ipv6=1`]);
            await must("ip", ["link", "set", record.veth, "master", BRIDGE, "up"]);
            await must("ip", ["netns", "exec", record.netns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"]);
            await must("ip", ["-n", record.netns, "addr", "add", `${address}/24`, "dev", "eth0"]);
            await must("ip", ["-n", record.netns, "link", "set", "lo", "up"]);
            await run("ip", ["neigh", "del", address, "dev", BRIDGE]);
            // No default route: the host reaches 10.123.0.0/24 and nothing else.

            const rescue = options.kind === "rescue";
            if (rescue) fs.writeFileSync(path.join(dir, "flag.rescue"), options.rescuePersists ? "persist" : "");
            const keys = options.authorizedKeys ?? [clientKey().publicKey];
            fs.writeFileSync(path.join(dir, "authorized_keys"), keys.join("\n") + "\n", { mode: 0o600 });
            const config: Record<string, string> = {
                NAME: name,
                NETNS: record.netns,
                ADDR: address,
                BASE_KIND: options.kind ?? "debian",
                DISKS: record.loops.map((l, i) => `vd${String.fromCharCode(97 + i)}=${l}`).join(" "),
                MEM_MIB: options.memMiB ? String(options.memMiB) : rescue ? "512" : "",
                RESCUE_KEEPS_KEYS: options.rescueKeepsHostKeys ? "1" : "0",
                FIRMWARE: options.firmware ?? "bios",
                KEYTYPES: "ed25519",
                REBOOT_DELAY: String(options.rebootDelay ?? 1),
                OLD_TOOLS: options.oldTools ? "1" : "0",
                REMOVE_CMDS: [
                    ...(options.removeCommands ?? []),
                    ...(options.nix === false || rescue ? ["nix", "nix-build", "nix-store", "nix-env", "nix-instantiate", "nix-shell", "nix-channel", "nix-collect-garbage", "nix-copy-closure", "nix-daemon", "nix-hash", "nix-prefetch-url"] : []),
                ].join(" "),
                PASSWORD_LOGIN: options.rootPassword || options.extraUser?.password ? "1" : "0",
                EXTRA_USER: options.extraUser?.name ?? "",
                EXTRA_USER_KEYS: options.extraUser?.authorizedKeys === false ? "0" : "1",
                SSH_PORT: String(options.sshPort ?? 22),
                PERMIT_ROOT: options.permitRootLogin ?? "",
                TESTBED_STATE: stateDir(),
            };
            // Passwords reach the host through its private control directory, never argv.
            if (options.extraUser?.password) {
                fs.writeFileSync(path.join(dir, "ctl", "extra-user-password"), options.extraUser.password, { mode: 0o600 });
                config.EXTRA_USER_PASSWORD_FILE = "extra-user-password";
            }
            if (options.rootPassword) {
                fs.writeFileSync(path.join(dir, "ctl", "root-password"), options.rootPassword, { mode: 0o600 });
                config.ROOT_PASSWORD_FILE = "root-password";
            }
            fs.writeFileSync(
                path.join(dir, "config"),
                Object.entries(config)
                    .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
                    .join("\n") + "\n",
            );
            await host.powerOn();
            return host;
        } catch (err) {
            await host.destroy().catch(() => undefined);
            throw err;
        }
    }

    /** Starts the host's power supply (the first boot, or after powerOff) and waits for SSH. */
    async powerOn(): Promise<void> {
        const log = fs.openSync(path.join(this.dir, "console.log"), "a");
        this.supervisor = spawn(path.join(SH, "supervise.sh"), [this.dir], {
            detached: true,
            stdio: ["ignore", log, log],
        });
        fs.closeSync(log);
        this.supervisor.unref();
        await this.waitUp(this.options.bootTimeout ?? 20);
    }

    /** PID (in the machine's PID namespace) of the host's PID 1, or undefined when it is down. */
    initPid(): number | undefined {
        try {
            const u = fs.readFileSync(path.join(this.dir, "unshare.pid"), "utf8").trim();
            const kids = fs.readFileSync(`/proc/${u}/task/${u}/children`, "utf8").trim().split(/\s+/);
            const pid = Number(kids[0]);
            return pid && alive(pid) ? pid : undefined;
        } catch {
            return undefined;
        }
    }

    /** "running", "rebooting", "panicked" or "off". */
    state(): string {
        try {
            return fs.readFileSync(path.join(this.dir, "state"), "utf8").trim();
        } catch {
            return "off";
        }
    }

    bootCount(): number {
        try {
            return Number(fs.readFileSync(path.join(this.dir, "boot-count"), "utf8"));
        } catch {
            return 0;
        }
    }

    /** What the current boot runs: "debian", "installer" or "nixos". */
    async bootKind(): Promise<string> {
        return (await this.execOk("cat /run/testbed/boot-kind")).trim();
    }

    /** Runs a shell command inside the host, without SSH. */
    async exec(command: string, input?: string): Promise<ExecResult> {
        const pid = this.initPid();
        if (!pid) throw new Error(`test bed: host ${this.name} (${this.id}) is not running`);
        return run(
            "nsenter",
            ["-t", String(pid), "--mount", "--uts", "--pid", "--net", "--root", "--wd", "env", "-i",
                "PATH=/run/current-system/sw/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root",
                "/bin/sh", "-c", command],
            input,
        );
    }

    /** Like exec, but throws when the command fails; returns stdout. */
    async execOk(command: string, input?: string): Promise<string> {
        const r = await this.exec(command, input);
        if (r.code !== 0) throw new Error(`test bed: '${command}' on ${this.name} exited ${r.code}: ${r.stderr.trim()}`);
        return r.stdout;
    }

    /** Waits until the host has booted and answers SSH, then records its port and host key. */
    async waitUp(timeoutS = 30, sinceBoot = 0): Promise<void> {
        const deadline = Date.now() + timeoutS * 1000;
        while (!(this.bootCount() > sinceBoot && this.state() === "running" && this.initPid())) {
            if (Date.now() > deadline) throw new Error(`test bed: host ${this.name} did not boot within ${timeoutS} s:\n${this.consoleTail()}`);
            if (fs.existsSync(path.join(this.dir, "state")) && this.state() === "off") {
                throw new Error(`test bed: host ${this.name} is powered off:\n${this.consoleTail()}`);
            }
            await sleep(20);
        }
        await this.bootKindWhenReady(deadline);
        // Where this boot's sshd listens: the old system's port, the kexec image's, the installed system's own.
        this.port = Number((await this.execOk("sed -n 's/^Port //p' /etc/ssh/sshd_config | head -n 1")).trim() || 22);
        await waitForSsh(this.address, this.port, Math.max(1000, deadline - Date.now()));
        // The ed25519 key sshd serves: an installed NixOS may keep it elsewhere (services.openssh.hostKeys).
        this.hostKey = (await this.execOk("k=$(sed -n 's/^HostKey //p' /etc/ssh/sshd_config | grep ed25519 | head -n 1); cut -d' ' -f1-2 \"${k:-/etc/ssh/ssh_host_ed25519_key}.pub\"")).trim();
    }

    private async bootKindWhenReady(deadline: number): Promise<string> {
        for (;;) {
            const r = this.initPid() ? await this.exec("cat /run/testbed/boot-kind 2>/dev/null") : undefined;
            if (r && r.code === 0 && r.stdout.trim()) return r.stdout.trim();
            if (Date.now() > deadline) throw new Error(`test bed: host ${this.name} did not finish booting:\n${this.consoleTail()}`);
            await sleep(20);
        }
    }

    /** The last lines the host printed on its console. */
    consoleTail(lines = 15): string {
        try {
            return fs.readFileSync(path.join(this.dir, "console.log"), "utf8").trimEnd().split("\n").slice(-lines).join("\n");
        } catch {
            return "(no console output)";
        }
    }

    private supervisorPid(): number | undefined {
        try {
            const pid = Number(fs.readFileSync(path.join(this.dir, "supervisor.pid"), "utf8"));
            return alive(pid) ? pid : undefined;
        } catch {
            return undefined;
        }
    }

    /**
     * Reboots the host from outside (the reset button). With newKeys the next boot generates fresh
     * SSH host keys, as a reinstalled machine would. Resolves when SSH answers again unless wait is false.
     */
    async reboot(opts: { newKeys?: boolean; wait?: boolean } = {}): Promise<void> {
        if (opts.newKeys) this.armNewKeys();
        const before = this.bootCount();
        const pid = this.initPid();
        if (!pid) throw new Error(`test bed: host ${this.name} is not running`);
        process.kill(pid, "SIGUSR1");
        if (opts.wait !== false) await this.waitUp(30, before);
    }

    /** The provider's panel set back to boot from disk: a rescue mode that persists ends (rescuePersists). */
    bootFromDisk(): void {
        fs.rmSync(path.join(this.dir, "flag.rescue"), { force: true });
    }

    /** Makes the next boot start the rescue system (a rescue host's first boot does so anyway). */
    armRescue(): void {
        fs.writeFileSync(path.join(this.dir, "flag.rescue"), "");
    }

    /** Makes the next boot, however it is started, generate new SSH host keys. */
    armNewKeys(): void {
        fs.writeFileSync(path.join(this.dir, "flag.newkeys"), "");
    }

    /** Waits for a reboot the host started itself (reboot, kexec -e over SSH). */
    async waitForReboot(sinceBoot: number, timeoutS = 30): Promise<void> {
        await this.waitUp(timeoutS, sinceBoot);
    }

    /** Presses the power button of a panicked or hung host: it boots again from its disks. */
    async powerCycle(): Promise<void> {
        const before = this.bootCount();
        const sup = this.supervisorPid();
        if (!sup) throw new Error(`test bed: host ${this.name} has no power supply running`);
        process.kill(sup, "SIGUSR1");
        const pid = this.initPid();
        if (pid) process.kill(pid, "SIGUSR1");
        await this.waitUp(30, before);
    }

    /**
     * Limits what this machine sends to the host to `mbit` Mbit/s, as a slow uplink would: a token
     * bucket (tbf) on the deployer's end of the veth. This kernel has no netem, so no delay is added.
     */
    async shapeLink(mbit: number): Promise<void> {
        await must("tc", ["qdisc", "replace", "dev", this.record.veth, "root", "tbf", "rate", `${mbit}mbit`, "burst", "32kbit", "latency", "400ms"]);
    }

    /** Bytes that reached the host so far, from this machine or another host (the veth's counter). */
    sentBytes(): number {
        return Number(fs.readFileSync(`/sys/class/net/${this.record.veth}/statistics/tx_bytes`, "utf8"));
    }

    /** TCP connections the host has accepted since it booted (its namespace's PassiveOpens counter). */
    async acceptedConnections(): Promise<number> {
        const snmp = await this.execOk("cat /proc/net/snmp");
        const [names, values] = snmp.split("\n").filter((l) => l.startsWith("Tcp:"));
        return Number(values.split(/\s+/)[names.split(/\s+/).indexOf("PassiveOpens")]);
    }

    /** Bytes the host has sent so far, to this machine or another host. */
    receivedBytes(): number {
        return Number(fs.readFileSync(`/sys/class/net/${this.record.veth}/statistics/rx_bytes`, "utf8"));
    }

    /** Turns the host off; its disks and /nix stay for a later powerOn. */
    async powerOff(): Promise<void> {
        const sup = this.supervisorPid();
        const pid = this.initPid();
        if (sup) process.kill(sup, "SIGTERM");
        for (let i = 0; i < 250 && ((sup && alive(sup)) || (pid && alive(pid))); i++) await sleep(20);
        this.supervisor = undefined;
    }

    /** Powers off and removes everything: namespace, veth, loop devices, files, address. */
    async destroy(): Promise<void> {
        await this.powerOff();
        await destroyRecord(this.record);
    }
}

/** Removes what a host record names. Used by destroy() and by the global teardown. */
export async function destroyRecord(record: HostRecord): Promise<void> {
    try {
        const sup = Number(fs.readFileSync(path.join(record.dir, "supervisor.pid"), "utf8"));
        if (alive(sup)) process.kill(sup, "SIGTERM");
    } catch {
        /* not running */
    }
    try {
        const u = Number(fs.readFileSync(path.join(record.dir, "unshare.pid"), "utf8"));
        if (alive(u)) process.kill(u, "SIGKILL");
    } catch {
        /* not running */
    }
    try {
        const scanner = Number(fs.readFileSync(path.join(record.dir, "partscan.pid"), "utf8"));
        if (alive(scanner)) process.kill(scanner, "SIGTERM");
    } catch {
        /* not running */
    }
    // Partitions (partscan.sh) hold their disk's loop device: they go first.
    for (const loop of partitionLoops(record.dir)) await run("losetup", ["-d", loop]);
    for (const loop of record.loops) await run("losetup", ["-d", loop]);
    // Deleting the veth is synchronous; deleting the namespace alone is not.
    await run("ip", ["link", "del", record.veth]);
    await run("ip", ["netns", "del", record.netns]);
    const n = path.basename(record.ipSlot);
    await run("ip", ["neigh", "del", `10.123.0.${n}`, "dev", BRIDGE]);
    fs.rmSync(record.dir, { recursive: true, force: true });
    fs.rmSync(record.ipSlot, { recursive: true, force: true });
    fs.rmSync(path.join(runDir(), "hosts", record.id + ".json"), { force: true });
}

/** The loop devices partscan.sh made for a host's partitions. */
function partitionLoops(dir: string): string[] {
    const parts = path.join(dir, "parts");
    if (!fs.existsSync(parts)) return [];
    return fs.readdirSync(parts).flatMap((f) => fs.readFileSync(path.join(parts, f), "utf8").split("\n").filter(Boolean));
}

/** Removes the project bridge when no host uses it any more. */
export async function removeBridgeIfUnused(): Promise<void> {
    const script = `ip link show ${BRIDGE} >/dev/null 2>&1 && [ -z "$(ip -o link show master ${BRIDGE})" ] && ip link del ${BRIDGE}; true`;
    await run("flock", [path.join(stateDir(), "bridge.lock"), "sh", "-c", script]);
}

export const createHost = (options?: HostOptions) => Host.create(options);
