/**
 * How each phase fails, one documented message (docs/errors.md) per case, against a target whose
 * commands are answered by a script over an in-process SSH peer (tests/unit/phases/scripted.ts).
 * The integration tests show the same phases succeeding on real hosts; here every failure a real
 * machine can produce is made on purpose: a command's exit code, a login refused, a machine that
 * goes down and does not come back.
 */
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { activate } from "../../../provider/phases/activate";
import { disko } from "../../../provider/phases/disko";
import { Facts, gatherFacts, parseFacts } from "../../../provider/phases/facts";
import { hostKeyPair, install } from "../../../provider/phases/install";
import { installerAccess, kexec } from "../../../provider/phases/kexec";
import { rebootInto, releaseDisks } from "../../../provider/phases/reboot";
import { copyClosure } from "../../../provider/nix/copy";
import { deliver } from "../../../provider/nix/deliver";
import { Target } from "../../../provider/ssh/target";
import { sh } from "../../../provider/ssh/shell";
import { closedPort } from "../ssh/peer";
import { closePeers, Rule, Scripted, scriptedTarget } from "./scripted";

let storePath: string;
let tarball: string;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "pnx-failures-"));
beforeAll(() => {
    fs.writeFileSync(path.join(tmp, "blob"), "a store path that every copy here finds already on the target\n");
    storePath = execFileSync("nix-store", ["--add", path.join(tmp, "blob")], { encoding: "utf8" }).trim();
    tarball = path.join(tmp, "kexec.tar.gz");
    fs.writeFileSync(tarball, "not looked at: the target's tar is scripted");
});
afterAll(() => {
    closePeers();
    fs.rmSync(tmp, { recursive: true, force: true });
});

/** Runs `fn` against a scripted target and returns its error (failing when there is none). */
async function failure(rules: Rule[], fn: (s: Scripted) => Promise<unknown>, password = { value: "pw" }): Promise<Error> {
    const s = await scriptedTarget(rules, password);
    try {
        await fn(s);
    } catch (e) {
        return e as Error;
    } finally {
        s.target.close();
    }
    throw new Error("expected a failure, but it succeeded");
}

const FACTS = ["os=Linux", "arch=x86_64", "distro=debian", "container=0", "uid=0", "has_tar=1", "has_cpio=1", "has_setsid=1", "ram_kb=4194304", "boot_id=old-boot"];
const facts = (...extra: string[]): Facts => parseFacts([...FACTS, ...extra].join("\n"));

describe("any phase", () => {
    it("names a connection that drops while a command runs", async () => {
        const err = await failure([[/nixos-version/, { drop: true }]], (s) => s.target.run(sh`cat /run/current-system/nixos-version`, { phase: "facts", what: "reading the version" }));
        expect(err.message).toMatch(/^facts on root@127\.0\.0\.1:\d+ failed: reading the version: the connection failed: the SSH connection closed/);
    });

    it("names a failed command without a description by the command itself", async () => {
        const err = await failure([[/^false$/, { code: 1 }]], (s) => s.target.run(sh`false`, { phase: "facts" }));
        expect(err.message).toMatch(/^facts on \S+ failed: `false` exited 1/);
    });

    it("gives up reconnecting within its bound, with the last attempt as the hint", async () => {
        const t = new Target({ host: "127.0.0.1", port: await closedPort(), password: "pw", dialErrorLimit: 1, perDialTimeout: 1 });
        const err = await t.reconnect("facts", 1).catch((e) => e);
        expect(err.message).toMatch(/^facts on \S+ failed: the machine did not answer SSH again within 1 s\nhint: last attempt: .*ECONNREFUSED/);
    });

    it("bounds the wait for a machine to go down", async () => {
        const err = await failure([], async (s) => {
            await s.target.run(sh`true`, { phase: "reboot" });
            return s.target.waitForDisconnect("reboot", 1);
        });
        expect(err.message).toMatch(/^reboot on \S+ failed: the machine did not go down within 1 s/);
    });

    it("says when sudo refused connection.password", async () => {
        const rules: Rule[] = [
            [/^sudo -n true$/, { code: 1, stderr: "sudo: a password is required\n" }],
            [/^sudo -k -S/, { code: 1, stderr: "Sorry, try again.\nsudo: 1 incorrect password attempt\n" }],
        ];
        const err = await failure(rules, (s) => {
            s.target.options = { ...s.target.options, user: "admin" };
            return s.target.run(sh`true`, { phase: "facts" });
        });
        expect(err.message).toMatch(/hint: sudo refused connection\.password for admin/);
    });

    it("reports a handshake that the other side cut off", async () => {
        // An sshd that announces itself, then goes away (a machine shutting down).
        const srv = net.createServer((sock) => {
            sock.write("SSH-2.0-OpenSSH_9.2\r\n");
            sock.once("data", () => sock.destroy());
        });
        await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
        const t = new Target({ host: "127.0.0.1", port: (srv.address() as net.AddressInfo).port, password: "pw", dialErrorLimit: 1, perDialTimeout: 2 });
        const err = await t.connect("facts").catch((e) => e);
        srv.close();
        expect(err.message).toMatch(/^facts on \S+ failed: cannot open an SSH connection: the connection closed during the handshake/);
    });
});

describe("facts", () => {
    it("fails when the facts script cannot run", async () => {
        const err = await failure([[/has\(\)/, { code: 2, stderr: "sh: 1: awk: not found\n" }]], (s) => gatherFacts(s.ctx));
        expect(err.message).toMatch(/^facts on root@127\.0\.0\.1:\d+ failed: retrieving host facts \(exit 2\)/);
    });
});

describe("kexec", () => {
    const access = () => installerAccess({ host: "127.0.0.1" });
    const options = (o: { tarball?: string; port?: number; keep?: boolean } = {}) => ({ tarball: o.tarball ?? tarball, postKexecSshPort: o.port ?? 22, timeoutS: 3, keepHostKeys: o.keep ?? false, access: access() });

    it("needs curl or wget to download the image", async () => {
        const err = await failure([], (s) => kexec(s.ctx, facts(), options({ tarball: "https://images.invalid/kexec.tar.gz" })));
        expect(err.message).toMatch(/kexec on \S+ failed: neither curl nor wget is on the target to download the kexec image/);
    });

    it("keeps a kexec image URL's credentials off the command line, the log and the error", async () => {
        const url = "https://deploy:s3cret-pw@images.example.org/kexec.tar.gz?X-Amz-Signature=t0ken-value";
        let stdin = "";
        const lines: string[] = [];
        const err = await failure([[/curl/, (_c, input) => ((stdin = input), { code: 22, stderr: "curl: (22) The requested URL returned error: 403\n" })]], (s) => {
            s.ctx.log = (phase, line) => lines.push(line);
            return kexec(s.ctx, facts("has_curl=1"), options({ tarball: url }));
        });
        expect(err.message).toMatch(/downloading and unpacking https:\/\/…@images\.example\.org\/kexec\.tar\.gz\?… \(exit 22\)/);
        expect(stdin).toBe(`url = "${url}"\n`);
        for (const text of [err.message, ...lines]) {
            expect(text).not.toContain("s3cret-pw");
            expect(text).not.toContain("t0ken-value");
        }
        expect(lines).toContain("downloading https://…@images.example.org/kexec.tar.gz?… on the target");
    });

    it("names the unpacking when tar fails", async () => {
        const err = await failure([[/tar -C \/root\/kexec/, { code: 2, stderr: "gzip: stdin: not in gzip format\n" }]], (s) => kexec(s.ctx, facts(), options()));
        expect(err.message).toMatch(/kexec on \S+ failed: unpacking the kexec tarball \(exit 2\)/);
    });

    it("names the write of root's authorized_keys", async () => {
        const err = await failure([[/authorized_keys/, { code: 1, stderr: "Read-only file system\n" }]], (s) => kexec(s.ctx, facts(), options()));
        expect(err.message).toMatch(/authorizing the deployer's key for root, so that kexec\/run carries it into the installer \(exit 1\)/);
    });

    it("names the host keys it could not read, without quoting them", async () => {
        const err = await failure([[/ssh_host_\*_key/, { code: 2, stdout: "SECRET-KEY-BYTES", stderr: "ls: cannot access 'ssh_host_*_key'\n" }]], (s) => kexec(s.ctx, facts(), options({ keep: true })));
        expect(err.message).toMatch(/reading the SSH host keys to keep \(exit 2\)/);
        expect(err.message).not.toContain("SECRET-KEY-BYTES");
    });

    /** kexec/run that "starts" the installer: the old system goes down right after. */
    const started: Rule = [/kexec\/run/, { stdout: "machine will boot into nixos in 6s...\n", dropAfter: true }];

    it("gives up when no installer answers on the post-kexec port within its bound", async () => {
        const port = await closedPort();
        const err = await failure([started], (s) => kexec(s.ctx, facts(), options({ port })));
        expect(err.message).toMatch(new RegExp(`the installer did not answer SSH on port ${port} within 3 s`));
    });

    it("stops at once when the installer refuses root's key", async () => {
        // The peer takes passwords only: as an installer that kexec/run gave no authorized_keys.
        const err = await failure([started], (s) => kexec(s.ctx, facts(), options({ port: s.peer.port })));
        expect(err.message).toMatch(/^kexec on \S+ failed: the installer refused root's login with the key that kexec\/run should have carried/);
    });
});

describe("disko and install", () => {
    it("names the disko script's mode when it fails", async () => {
        const err = await failure([[/flock/, { code: 1, stderr: "Error: /dev/vdb: no such device\n" }]], (s) =>
            disko(s.ctx, { mode: "mount", script: storePath, diskEncryptionKeys: {}, allowReinstall: false, substitute: false }),
        );
        expect(err.message).toMatch(/^disko on \S+ failed: the disko script \(mount mode\) failed \(exit 1\)/);
    });

    it("refuses to install when /mnt is not mounted", async () => {
        const err = await failure([[/mountpoint -q \/mnt/, { code: 1 }]], (s) =>
            install(s.ctx, { toplevel: storePath, substitute: false, extraFiles: {}, copyHostKeys: false, hostKeyPair: "generate", hostKeyPath: "/etc/ssh/ssh_host_ed25519_key", hardwareConfig: "none", timeoutS: 5 }),
        );
        expect(err.message).toMatch(/^install on \S+ failed: \/mnt is not a mount point, so there is nowhere to install to/);
    });

    it("cannot make a host key pair from a private key ssh-keygen does not read", async () => {
        const err = await hostKeyPair("-----BEGIN OPENSSH PRIVATE KEY-----\nnot a key\n-----END OPENSSH PRIVATE KEY-----").catch((e) => e);
        expect(err.message).toMatch(/^install on localhost failed: cannot make the host key pair with ssh-keygen/);
    });

    it("checks that the import registered every path", async () => {
        // The target reports every path missing, before and after an import that "succeeds".
        const err = await failure([[/--check-validity/, (_c, stdin) => ({ stdout: stdin })]], (s) => copyClosure(s.target, [storePath], { phase: "install", timeoutS: 10 }));
        expect(err.message).toMatch(/^install on \S+ failed: 1 paths are still missing after the copy, e\.g\. \/nix\/store\//);
    });
});

describe("the closure copy", () => {
    it("names the deployer's export when it fails, after the import read all it sent", async () => {
        // nix-store on the deployer's PATH, failing only for --export (a store file that cannot be read).
        const bin = path.join(tmp, "bin");
        fs.mkdirSync(bin, { recursive: true });
        const real = execFileSync("sh", ["-c", "command -v nix-store"], { encoding: "utf8" }).trim();
        fs.writeFileSync(path.join(bin, "nix-store"), `#!/bin/sh\ncase "$1" in --export) echo "error: reading a store file: Input/output error" >&2; exit 1;; esac\nexec ${real} "$@"\n`, { mode: 0o755 });
        const env = { ...process.env, PATH: `${bin}:${process.env.PATH}` };
        const err = await failure([[/--check-validity/, (_c, stdin) => ({ stdout: stdin })]], (s) => copyClosure(s.target, [storePath], { phase: "install", timeoutS: 10, env }));
        expect(err.message).toMatch(/^install on localhost failed: nix-store --export failed\n.*Input\/output error/);
    });
});

describe("building on the target (buildOn remote)", () => {
    const remote = (root?: string) => ({ phase: "install", buildOn: "remote" as const, substitute: false, log: () => undefined, root, timeoutS: 10 });
    const item = () => [{ out: "/nix/store/00000000000000000000000000000000-system", drv: storePath }];

    it("names a failed build", async () => {
        const err = await failure([[/xargs -r nix-store --realise/, { code: 1, stderr: "error: builder for '…' failed with exit code 2\n" }]], (s) => deliver(s.target, item(), remote()));
        expect(err.message).toMatch(/building on the target failed \(exit 1\)/);
    });

    it("notices a build that produced another path", async () => {
        const err = await failure([[/xargs -r nix-store --realise/, { stdout: "/nix/store/11111111111111111111111111111111-other\n" }]], (s) => deliver(s.target, item(), remote()));
        expect(err.message).toMatch(/building \/nix\/store\/\S+ on the target did not produce \/nix\/store\/0+-system/);
    });

    it("names the copy into /mnt's store", async () => {
        const rules: Rule[] = [
            [/xargs -r nix-store --realise/, { stdout: "/nix/store/00000000000000000000000000000000-system\n" }],
            [/--store "\$r" --import[^']*' sh '?\/mnt'?/, { code: 1, stderr: "error: writing to file: No space left on device\n" }],
        ];
        const err = await failure(rules, (s) => deliver(s.target, item(), remote("/mnt")));
        expect(err.message).toMatch(/copying the built system into \/mnt \(exit 1\)/);
    });
});

describe("reboot", () => {
    const BOOT = (id: string, os: string, current: string) => ({ stdout: `boot_id=${id}\ncurrent_system=${current}\nos=${os}\n` });

    /** A machine that reboots: the probe answers `before` until the reboot command, `after` then. */
    function rebooting(after: { stdout: string } | undefined, onReboot?: () => void, dropAt: "drop" | "dropAfter" = "dropAfter"): Rule[] {
        let rebooted = false;
        return [
            [/(^|[ ;(])reboot\b/, () => ((rebooted = true), onReboot?.(), { [dropAt]: true })],
            [/boot_id=/, () => (rebooted && after ? after : BOOT("old-boot", "debian ", ""))],
        ];
    }

    it("names the pool that would not export", async () => {
        const err = await failure([[/zpool export -a/, { code: 1, stderr: "cannot export 'tank': pool is busy\n" }]], (s) => releaseDisks(s.ctx));
        expect(err.message).toMatch(/^reboot on \S+ failed: exporting the ZFS pools before the reboot failed \(exit 1\)/);
        expect(err.message).toMatch(/pool is busy/);
    });

    it("gives up when the same boot keeps answering", async () => {
        const err = await failure(rebooting(undefined), (s) => rebootInto(s.ctx, { toplevel: storePath, expectedHostKey: s.peer.hostKey, login: { password: "pw" }, timeoutS: 2 }));
        expect(err.message).toMatch(/^reboot on \S+ failed: the machine did not come back within 2 s/);
    });

    it("takes a session that drops before the reboot command returns as the reboot under way, and asks with no delay", async () => {
        const s = await scriptedTarget(rebooting(BOOT("new-boot", "nixos ", storePath), undefined, "drop"));
        try {
            const booted = await rebootInto(s.ctx, { toplevel: storePath, expectedHostKey: s.peer.hostKey, login: { password: "pw" }, timeoutS: 5 });
            expect(booted).toEqual({ bootId: "new-boot", currentSystem: storePath });
            expect(s.commands.find((c) => /(^|[ ;(])reboot\b/.test(c))).not.toMatch(/sleep/);
        } finally {
            s.target.close();
        }
    });

    it("names a reboot command that failed", async () => {
        const err = await failure([[/(^|[ ;(])reboot\b/, { code: 127, stderr: "sh: 1: nohup: not found\n" }]], (s) =>
            rebootInto(s.ctx, { toplevel: storePath, expectedHostKey: s.peer.hostKey, login: { password: "pw" }, timeoutS: 5 }),
        );
        expect(err.message).toMatch(/^reboot on \S+ failed: the reboot command failed \(exit 127\)/);
        expect(err.message).toMatch(/nohup: not found/);
    });

    it("refuses a reboot into the installer", async () => {
        const err = await failure(rebooting(BOOT("new-boot", "nixos installer", "/nix/store/x-installer")), (s) =>
            rebootInto(s.ctx, { toplevel: storePath, expectedHostKey: s.peer.hostKey, login: { password: "pw" }, timeoutS: 5 }),
        );
        expect(err.message).toMatch(/the machine booted "nixos installer" instead of the installed NixOS/);
    });

    it("refuses a reboot into another system", async () => {
        const err = await failure(rebooting(BOOT("new-boot", "nixos ", "/nix/store/22222222222222222222222222222222-older")), (s) =>
            rebootInto(s.ctx, { toplevel: storePath, expectedHostKey: s.peer.hostKey, login: { password: "pw" }, timeoutS: 5 }),
        );
        expect(err.message).toMatch(/the machine booted \/nix\/store\/2+-older instead of \/nix\/store\//);
    });

    it("says when neither the login user nor root may log in to the new system", async () => {
        const password = { value: "pw" };
        // The new system knows neither the old password nor admin.
        const err = await failure(
            rebooting(undefined, () => (password.value = "set-by-the-new-system")),
            (s) => rebootInto(s.ctx, { toplevel: storePath, expectedHostKey: s.peer.hostKey, login: { user: "admin", password: "pw" }, timeoutS: 20 }),
            password,
        );
        expect(err.message).toMatch(/the installed system came up but lets neither admin nor root log in with the connection's credentials/);
    });
});

describe("activate", () => {
    const STATE: Rule = [/systemd_run=/, { stdout: "current_system=/nix/store/33333333333333333333333333333333-old\nprofile=\nprofile_target=\nsystemd_run=\n" }];
    const options = { toplevel: storePath, action: "test" as const, magicRollback: false, confirmTimeoutS: 2, healthChecks: [], ignoreFailedUnits: false, timeoutS: 1 };

    it("names a tool the unit needs that the target lacks", async () => {
        const err = await failure([STATE, [/for c in sh sleep nix-env/, { stdout: "sh=/bin/sh\nsleep=/bin/sleep\nmissing=nix-env\n" }]], (s) => activate(s.ctx, { ...options, toplevel: storePath }));
        expect(err.message).toMatch(/^activate on \S+ failed: no nix-env on the target's PATH, but the activation needs it/);
    });

    it("rolls back when the unit answers the confirmation with anything but confirmed", async () => {
        const tools: Rule = [/for c in sh sleep nix-env/, { stdout: "sh=/bin/sh\nsleep=/bin/sleep\nnix-env=/bin/nix-env\n" }];
        const rules: Rule[] = [STATE, tools, [/^cat \S+\.rc/, { stdout: "0\n" }], [/^cat \S+\.result/, { stdout: "rolled-back timeout\n" }]];
        const err = await failure(rules, (s) => activate(s.ctx, { ...options, toplevel: storePath, magicRollback: true }));
        expect(err.message).toMatch(/^activate on \S+ failed: the confirmation was not acknowledged \(rolled-back timeout\); rolled back to \/nix\/store\/3+-old/);
    });

    it("bounds the wait for switch-to-configuration", async () => {
        const tools: Rule = [/for c in sh sleep nix-env/, { stdout: "sh=/bin/sh\nsleep=/bin/sleep\nnix-env=/bin/nix-env\n" }];
        const err = await failure([STATE, tools, [/^cat \S+\.rc/, { code: 1 }]], (s) => activate(s.ctx, { ...options, toplevel: storePath }));
        expect(err.message).toMatch(/switch-to-configuration test did not finish within 1 s/);
    });
});
