/** Writing files on the target from stdin, so contents (keys, secrets) never reach a command line. */
import { quote, Target } from "../ssh/target";

export async function writeFile(
    target: Target,
    phase: string,
    file: string,
    content: string | Buffer,
    opts: { mode?: string; owner?: string } = {},
): Promise<void> {
    const mode = opts.mode ?? "0644";
    const cmd =
        `umask 077 && mkdir -p "$(dirname ${quote(file)})" && cat > ${quote(file)}.tmp && chmod ${quote(mode)} ${quote(file)}.tmp` +
        (opts.owner ? ` && chown ${quote(opts.owner)} ${quote(file)}.tmp` : "") +
        ` && mv -f ${quote(file)}.tmp ${quote(file)}`;
    await target.run(cmd, { phase, stdin: content, what: `writing ${file}` });
}
