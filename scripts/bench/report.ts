/** The benchmark's rows and BENCH.md: each figure with its baseline from the same run, and their ratio. */
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";

export interface Row {
    id: string;
    what: string;
    /** Our value and the baseline's, with units. */
    value: string;
    baseline: string;
    /** value / baseline, where both are numbers of one unit. */
    ratio?: number;
    goal: string;
    met: boolean;
    /** What was measured besides, for the reader. */
    notes?: string;
}

export const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
export const seconds = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
export const mib = (bytes: number) => `${(bytes / 1048576).toFixed(1)} MiB`;
export const ratio = (a: number, b: number) => +(a / b).toFixed(2);

/** Milliseconds `fn` takes, and its result. */
export async function timed<T>(fn: () => Promise<T>): Promise<{ ms: number; result: T }> {
    const t0 = process.hrtime.bigint();
    const result = await fn();
    return { ms: Number(process.hrtime.bigint() - t0) / 1e6, result };
}

// Progress lines of the provider are silenced while measuring; a depth count keeps concurrent runs from restoring early.
const log = console.log;
let silenced = 0;
export async function silent<T>(fn: () => Promise<T>): Promise<T> {
    if (silenced++ === 0) console.log = () => undefined;
    try {
        return await fn();
    } finally {
        if (--silenced === 0) console.log = log;
    }
}

function machine(): string {
    const cpu = (fs.readFileSync("/proc/cpuinfo", "utf8").match(/model name\s*:\s*(.*)/) ?? [])[1] ?? "unknown CPU";
    const nix = execFileSync("nix", ["--version"], { encoding: "utf8" }).trim();
    return `${os.cpus().length} × ${cpu}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Linux ${os.release()}, Node ${process.version}, ${nix}`;
}

export function writeBench(file: string, rows: Row[], wallMs: number): void {
    const cell = (s: string) => s.replace(/\|/g, "\\|");
    const lines = [
        "# Benchmarks",
        "",
        `Written by \`npm run bench\` on ${new Date().toISOString().slice(0, 10)}, in one run of ${Math.round(wallMs / 60000)} min on ${machine()}.`,
        "The machine is shared and noisy: compare each figure with its baseline from the same run (the ratio), not with other runs.",
        "",
        "| id | what | ours | baseline | ratio | goal | met |",
        "|---|---|---|---|---|---|---|",
        ...rows.map((r) => `| ${r.id} | ${cell(r.what)} | ${cell(r.value)} | ${cell(r.baseline)} | ${r.ratio ?? "—"} | ${cell(r.goal)} | ${r.met ? "yes" : "**no**"} |`),
        "",
        "## Notes",
        "",
        ...rows.filter((r) => r.notes).map((r) => `- **${r.id}**: ${r.notes}`),
        "",
    ];
    fs.writeFileSync(file, lines.join("\n"));
}
