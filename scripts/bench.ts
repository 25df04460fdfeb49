/**
 * `npm run bench`: every figure with its baseline, measured in one run on this machine, written to
 * BENCH.md. The machine is shared and noisy, so each figure is compared with a baseline from the
 * same run. Needs root and npm test's setup (run through scripts/run.sh).
 */
import * as path from "node:path";
import { setup, teardown } from "../tests/global-setup";
import { fixtureCopy, nixConfig } from "../tests/testbed/nix";
import { compressedCopy, updateBytes } from "./bench/copy";
import { cacheInstalls, manyRebuilds } from "./bench/fleet";
import { imageWrites } from "./bench/image";
import { installFigures } from "./bench/install";
import { previewFigures } from "./bench/preview";
import { Row, timed, writeBench } from "./bench/report";

process.env.NIX_CONFIG = nixConfig();

async function main(): Promise<void> {
    await setup();
    const rows: Row[] = [];
    const dir = fixtureCopy();
    const figures: [string, () => Promise<Row | Row[]>][] = [
        ["P1a, P1b, P2", () => previewFigures(dir)],
        ["P3", () => updateBytes(dir)],
        ["P4", () => manyRebuilds(dir)],
        ["P5", () => installFigures(dir)],
        ["P6, P6b", () => imageWrites()],
        ["P7", () => compressedCopy(dir)],
        ["P8", () => cacheInstalls(dir)],
    ];
    // `npm run bench -- P6`: only the figures named, printed and not written to BENCH.md.
    const only = process.argv.slice(2);
    const chosen = figures.filter(([ids]) => only.length === 0 || only.some((o) => ids.split(", ").includes(o)));
    const all = await timed(async () => {
        try {
            for (const [ids, run] of chosen) {
                console.log(`bench: ${ids}…`);
                const r = await run();
                rows.push(...(Array.isArray(r) ? r : [r]));
                console.log(JSON.stringify(r));
            }
        } finally {
            await teardown();
        }
    });
    if (only.length) return;
    const file = path.resolve(__dirname, "..", "BENCH.md");
    writeBench(file, rows, all.ms);
    console.log(`bench: wrote ${file}`);
}

main().catch((e) => {
    console.error(e);
    process.exit(1);
});
