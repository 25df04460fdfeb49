/**
 * Evaluations shared, batched and skipped (provider/nix/evaluations.ts), through check() with the
 * real Nix, counting the `nix` processes each check starts. Each test has its own copy of the
 * fixture flake, so no test reuses another's evaluation.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { evaluate } from "../../../provider/nix/eval";
import { LOCK_REUSE_MS } from "../../../provider/nix/evaluations";
import * as install from "../../../provider/resources/install";
import * as rebuild from "../../../provider/resources/rebuild";
import { countingNix, fixtureCopy } from "../../testbed/nix";

const conn = { host: "192.0.2.10", password: "pw" };
let nix: ReturnType<typeof countingNix>;
const pathBefore = process.env.PATH;
beforeAll(() => {
    nix = countingNix();
    process.env.PATH = `${nix.dir}:${pathBefore}`;
});
afterAll(() => {
    process.env.PATH = pathBefore;
});

/** The nix evals that `fn` starts. */
async function evals<T>(fn: () => Promise<T>): Promise<{ result: T; evals: number }> {
    const before = nix.calls("nix eval");
    const result = await fn();
    return { result, evals: nix.calls("nix eval") - before };
}

const flakeOf = (dir: string, name: string) => `path:${dir}/flake#${name}`;

/** Changes every configuration of the flake, once its lock may be read again. */
async function changeFlake(dir: string): Promise<void> {
    await new Promise((r) => setTimeout(r, LOCK_REUSE_MS + 100));
    fs.appendFileSync(path.join(dir, "flake", "authorized_keys"), "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOtherKeyOtherKeyOtherKeyOtherKeyOtherKeyOther other\n");
}

describe("evaluations", () => {
    it("a check whose locked flake and attribute are the ones recorded runs no nix eval", async () => {
        const dir = fixtureCopy();
        const first = await rebuild.check({}, { connection: conn, flake: flakeOf(dir, "web") });
        expect(first.inputs?.__evaluation).toMatch(/^[0-9a-f]{32}$/);
        // This process still remembers the evaluation, a new provider process would not: the forged
        // recorded toplevel shows that the recorded paths are what the check used.
        const forged = { ...first.inputs!, __drvs: { toplevel: { out: "/nix/store/00000000000000000000000000000000-recorded", drv: "" } } };
        const again = await evals(() => rebuild.check(forged, { connection: conn, flake: flakeOf(dir, "web") }));
        expect(again.evals).toBe(0);
        expect(again.result.inputs?.toplevel).toBe("/nix/store/00000000000000000000000000000000-recorded");
    });

    it("evaluates again once the flake changed, and once the attribute changed", async () => {
        const dir = fixtureCopy();
        const first = await rebuild.check({}, { connection: conn, flake: flakeOf(dir, "web") });
        await changeFlake(dir);
        const changed = await evals(() => rebuild.check(first.inputs!, { connection: conn, flake: flakeOf(dir, "web") }));
        expect(changed.evals).toBe(1);
        expect(changed.result.inputs?.toplevel).not.toBe(first.inputs?.toplevel);
        expect(changed.result.inputs?.__evaluation).not.toBe(first.inputs?.__evaluation);
        const other = await evals(() => rebuild.check(changed.result.inputs!, { connection: conn, flake: flakeOf(dir, "web-bumped") }));
        expect(other.evals).toBe(1);
        expect(other.result.inputs?.toplevel).toMatch(/-nixos-system-web-/);
        expect(other.result.inputs?.toplevel).not.toBe(changed.result.inputs?.toplevel);
    });

    it("NixosInstall and NixosRebuild of one machine share one evaluation", async () => {
        const dir = fixtureCopy();
        const both = await evals(() => Promise.all([install.check({}, { connection: conn, flake: flakeOf(dir, "web") }), rebuild.check({}, { connection: conn, flake: flakeOf(dir, "web") })]));
        expect(both.evals).toBe(1);
        expect(both.result[0].inputs?.toplevel).toBe(both.result[1].inputs?.toplevel);
        // Later in the same process (the rebuild's check after the install finished): none.
        const later = await evals(() => rebuild.check({}, { connection: conn, flake: flakeOf(dir, "web") }));
        expect(later.evals).toBe(0);
    });

    it("configurations of one flake checked together are evaluated in one nix eval, each to its own paths", async () => {
        const dir = fixtureCopy();
        const names = ["web", "web-bumped", "web-swapped", "web-big", "web-root-only"];
        const all = await evals(() => Promise.all(names.map((n) => install.check({}, { connection: conn, flake: flakeOf(dir, n) }))));
        expect(all.evals).toBe(1);
        for (const [i, n] of names.entries()) {
            const alone = await evaluate({ kind: "flake", flake: flakeOf(dir, n) }, process.cwd());
            expect(all.result[i].inputs).toMatchObject({ toplevel: alone.toplevel, diskoScript: alone.diskoScript });
        }
    });

    it("a configuration that does not evaluate fails its own check only, naming what the flake provides", async () => {
        const dir = fixtureCopy();
        const [good, bad] = await Promise.all([rebuild.check({}, { connection: conn, flake: flakeOf(dir, "web") }), rebuild.check({}, { connection: conn, flake: flakeOf(dir, "web-nope") })]);
        expect(good.inputs?.toplevel).toMatch(/-nixos-system-web-/);
        expect(bad.failures).toEqual([{ property: "flake", reason: expect.stringMatching(/does not provide nixosConfigurations\."web-nope".*it provides nixosConfigurations: web, /) }]);
    });

    it("reads a flake's lock once for checks that come one after another, as the engine sends them", async () => {
        const dir = fixtureCopy();
        const before = nix.calls("nix flake metadata");
        for (const n of ["web", "web-bumped", "web-swapped", "web-big"]) await rebuild.check({}, { connection: conn, flake: flakeOf(dir, n) });
        expect(nix.calls("nix flake metadata") - before).toBe(1);
    });

    it("evaluates the configurations of the flake it evaluated before together with the first one asked, so the checks after it run none", async () => {
        const dir = fixtureCopy();
        const names = ["web", "web-bumped", "web-swapped"];
        for (const n of names) await rebuild.check({}, { connection: conn, flake: flakeOf(dir, n) });
        await changeFlake(dir);
        const first = await evals(() => rebuild.check({}, { connection: conn, flake: flakeOf(dir, "web") }));
        expect(first.evals).toBe(1);
        for (const n of names.slice(1)) {
            const later = await evals(() => rebuild.check({}, { connection: conn, flake: flakeOf(dir, n) }));
            expect(later.evals).toBe(0);
            const alone = await evaluate({ kind: "flake", flake: flakeOf(dir, n) }, process.cwd());
            expect(later.result.inputs?.toplevel).toBe(alone.toplevel);
        }
    });

    it("stops evaluating ahead a configuration that made the joint evaluation fail", async () => {
        const dir = fixtureCopy();
        for (const n of ["web", "web-bumped", "web-eval-error"]) await rebuild.check({}, { connection: conn, flake: flakeOf(dir, n) });
        await changeFlake(dir);
        // The joint evaluation fails, so the one asked is evaluated alone; the ones ahead are dropped.
        expect((await evals(() => rebuild.check({}, { connection: conn, flake: flakeOf(dir, "web") }))).evals).toBe(2);
        expect((await evals(() => rebuild.check({}, { connection: conn, flake: flakeOf(dir, "web-bumped") }))).evals).toBe(1);
        await changeFlake(dir);
        // Only what was asked for since is evaluated ahead: web-eval-error is not, and nothing fails.
        expect((await evals(() => rebuild.check({}, { connection: conn, flake: flakeOf(dir, "web") }))).evals).toBe(1);
        expect((await evals(() => rebuild.check({}, { connection: conn, flake: flakeOf(dir, "web-bumped") }))).evals).toBe(0);
    });

    it("evaluates a non-flake configuration at every check: it is impure", async () => {
        const dir = fixtureCopy();
        const source = { nixosConfiguration: { file: path.join(dir, "non-flake", "configuration.nix"), nixPath: { nixpkgs: path.join(dir, "nixpkgs") } } };
        const first = await rebuild.check({}, { connection: conn, ...source });
        expect(first.inputs?.__evaluation).toBeUndefined();
        const again = await evals(() => rebuild.check(first.inputs!, { connection: conn, ...source }));
        expect(again.evals).toBe(1);
        expect(again.result.inputs?.toplevel).toBe(first.inputs?.toplevel);
    });
});
