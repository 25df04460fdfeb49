/** Writing files on the target from stdin, so contents (keys, secrets) never reach a command line. */
import { sh } from "../ssh/shell";
import { Target } from "../ssh/target";

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
