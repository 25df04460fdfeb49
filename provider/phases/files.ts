/** Writing files on the target from stdin, so contents (keys, secrets) never reach a command line. */
import { execFile } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { promisify } from "node:util";
import { NixosDeployError } from "../errors";
import { sh } from "../ssh/shell";
import { Target } from "../ssh/target";
import type { PhaseContext } from "./context";

const execFileP = promisify(execFile);

export interface ExtraFile {
    content?: string;
    source?: string;
    mode?: string;
    owner?: string;
}

export async function writeFile(
    target: Target,
    phase: string,
    file: string,
    content: string | Buffer,
    opts: { mode?: string; owner?: string } = {},
): Promise<void> {
    const mode = opts.mode ?? "0644";
    const tmp = `${file}.tmp`;
    const chown = opts.owner ? sh` && chown ${opts.owner} ${tmp}` : sh``;
    const cmd = sh`umask 077 && mkdir -p "$(dirname ${file})" && cat > ${tmp} && chmod ${mode} ${tmp}${chown} && mv -f ${tmp} ${file}`;
    await target.run(cmd, { phase, stdin: content, what: `writing ${file}` });
}

/** Writes `files` (paths relative to the installed system's /) under `root`. */
export async function writeExtraFiles(ctx: PhaseContext, phase: string, root: string, files: Record<string, ExtraFile>): Promise<void> {
    for (const [file, spec] of Object.entries(files)) {
        const content = spec.content ?? fs.readFileSync(spec.source!);
        await writeFile(ctx.target, phase, path.posix.join(root, file), content, { mode: spec.mode ?? "0644", owner: spec.owner });
    }
    if (Object.keys(files).length) ctx.log(phase, `wrote ${Object.keys(files).length} extra file(s)`);
}

/** Writes an ed25519 host key pair (from `privateKey`, or a new one) at `file` and `file`.pub; returns its public line. */
export async function writeHostKey(target: Target, phase: string, file: string, privateKey?: string): Promise<string> {
    const pair = await hostKeyPair(privateKey);
    await writeFile(target, phase, file, pair.privateKey, { mode: "0600" });
    await writeFile(target, phase, `${file}.pub`, pair.publicKey + "\n", { mode: "0644" });
    return pair.publicKey;
}

/** An ed25519 key pair from ssh-keygen, made in a 0700 folder that is removed before returning. */
export async function hostKeyPair(fromPrivate?: string): Promise<{ privateKey: string; publicKey: string }> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pulumi-nixos-hostkey-"));
    try {
        const file = path.join(dir, "ssh_host_ed25519_key");
        if (fromPrivate) {
            fs.writeFileSync(file, fromPrivate.endsWith("\n") ? fromPrivate : fromPrivate + "\n", { mode: 0o600 });
            const { stdout } = await execFileP("ssh-keygen", ["-y", "-f", file]);
            return { privateKey: fs.readFileSync(file, "utf8"), publicKey: stdout.trim().split(" ").slice(0, 2).join(" ") };
        }
        await execFileP("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "", "-f", file]);
        return { privateKey: fs.readFileSync(file, "utf8"), publicKey: fs.readFileSync(file + ".pub", "utf8").trim().split(" ").slice(0, 2).join(" ") };
    } catch (e) {
        throw new NixosDeployError({ host: "localhost", phase: "install", what: "cannot make the host key pair with ssh-keygen", cause: e, hint: "install OpenSSH's ssh-keygen on the machine that runs Pulumi; a hostKeyPair.privateKey must be an unencrypted OpenSSH private key" });
    } finally {
        fs.rmSync(dir, { recursive: true, force: true });
    }
}

