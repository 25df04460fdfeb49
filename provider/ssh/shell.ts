/**
 * Remote shell commands, quoted by construction. `sh` is the only way to build a Command: every
 * interpolated string is single-quoted, numbers go in as they are, and a Command goes in as the
 * command text it already is. Target.run takes only Commands, so an unquoted value cannot be
 * written by accident.
 */
export class Command {
    private constructor(readonly text: string) {}

    /** Used by `sh` only. */
    static fromTemplate(strings: TemplateStringsArray, values: readonly ShellValue[]): Command {
        let text = strings[0];
        values.forEach((v, i) => {
            text += render(v) + strings[i + 1];
        });
        return new Command(text);
    }

    toString(): string {
        return this.text;
    }
}

export type ShellValue = string | number | Command | readonly Command[];

function render(v: ShellValue): string {
    if (v instanceof Command) return v.text;
    if (typeof v === "number") {
        if (!Number.isFinite(v)) throw new TypeError(`a shell command cannot take the number ${v}`);
        return String(v);
    }
    if (typeof v === "string") return quote(v);
    return v.map((c) => c.text).join(" ");
}

/** Builds a Command: sh`rm -f ${path}` gives rm -f '<path>'. */
export function sh(strings: TemplateStringsArray, ...values: ShellValue[]): Command {
    return Command.fromTemplate(strings, values);
}

/** Single-quotes a value for a POSIX shell. */
export function quote(s: string): string {
    return `'${s.replace(/'/g, `'\\''`)}'`;
}
