/**
 * Every example runs as a real stack through the Pulumi CLI: preview, up, an empty preview, a
 * change, preview --diff, up, refresh, destroy. Assertions are on engine events, outputs and the
 * target machine itself; at the end, state and CLI output are scanned for the secrets used.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { failOnce } from "../testbed/faults";
import type { Host } from "../testbed/host";
import { installFixture } from "../testbed/install";
import { buildKexecTarball } from "../testbed/kexec";
import { buildFixture, countingNix, fixtureCopy } from "../testbed/nix";
import { hostsForThisFile } from "../testbed/per-file";
import { sshRun } from "../testbed/ssh";
import { clientKey } from "../testbed/state";
import { collect, exampleStack, ExampleStack, stateFiles } from "./stack";

const INSTALL = "pulumi-nodejs:dynamic/nixos:NixosInstall";
const REBUILD = "pulumi-nodejs:dynamic/nixos:NixosRebuild";

let fixtures: string;
const createHost = hostsForThisFile();
beforeAll(() => {
    fixtures = fixtureCopy();
});

/**
 * An example's stack, configured to reach `host` with the run's key, pinned to its current host key;
 * a Debian host also gets the test-bed kexec image.
 */
async function stackFor(example: string, host: Host): Promise<{ s: ExampleStack; cfg: (key: string, value: string) => Promise<void> }> {
    const s = await exampleStack(example, "e2e");
    const cfg = (key: string, value: string) => s.stack.setConfig(key, { value });
    await cfg("host", host.address);
    await cfg("hostKey", host.hostKey);
    await cfg("privateKeyFile", clientKey().privateKeyPath);
    if ((await host.bootKind()) === "debian") await cfg("kexecTarball", buildKexecTarball(path.join(s.workDir, "..")));
    return { s, cfg };
}

/** /run/current-system on the host. */
async function live(host: Host): Promise<string> {
    return (await host.execOk("readlink /run/current-system")).trim();
}

/**
 * Where the run's secret (the client's private key) appears in plaintext: CLI output, engine
 * events and the state files. One place is expected and reported apart: @pulumi/pulumi's own
 * debug line for each RegisterResource/ReadResource response, which prints the resource's outputs
 * (secrets included) when `--debug` is on; the README warns about it.
 */
function plaintextSecrets(s: ExampleStack): { hits: string[]; sdkDebugLines: number } {
    const secrets = [clientKey().privateKey.trim(), ...clientKey().privateKey.trim().split("\n").filter((l) => l.length > 40)];
    const has = (t: string) => secrets.some((secret) => t.includes(secret));
    const sdkDebug = (m: string) => /^(RegisterResource|ReadResource) RPC finished: /.test(m.replace(/^debug: /, ""));
    const events = s.events.filter((e) => has(JSON.stringify(e)));
    const upstream = events.filter((e) => e.diagnosticEvent && sdkDebug(e.diagnosticEvent.message));
    const hits = [
        ...s.output.filter(has).map(() => "CLI output"),
        ...events.filter((e) => !upstream.includes(e)).map((e) => `engine event ${JSON.stringify(e).slice(0, 120)}`),
        ...stateFiles(s).filter((f) => has(fs.readFileSync(f, "utf8"))),
    ];
    return { hits, sdkDebugLines: upstream.length };
}

/** No plaintext secret anywhere but the SDK's debug lines; the state holds the connection encrypted. */
function expectNoPlaintextSecrets(s: ExampleStack): void {
    expect(plaintextSecrets(s).hits).toEqual([]);
    expect(stateFiles(s).some((f) => fs.readFileSync(f, "utf8").includes("ciphertext"))).toBe(true);
}

function stepOps(s: ExampleStack, since: number, type: string): string[] {
    return s.events
        .slice(since)
        .filter((e) => e.resOutputsEvent && e.resOutputsEvent.metadata.type === type)
        .map((e) => e.resOutputsEvent!.metadata.op);
}

describe("examples/quickstart", () => {
    it("installs NixOS on a Debian machine, previews and applies a version bump, refreshes and destroys", async () => {
        const host = await createHost({ name: "quick", disks: [256] });
        const { s, cfg } = await stackFor("quickstart", host);
        await cfg("flake", `path:${fixtures}/flake#web`);
        const web = await buildFixture(fixtures, "web");

        // 1. preview: the toplevel is known before anything runs
        const p1 = await s.stack.preview({ ...collect(s), diff: true });
        expect(p1.changeSummary.create).toBe(3);
        expect(p1.stdout).toContain(web);
        expect(await host.bootKind()).toBe("debian");

        // 2. up
        const up1 = await s.stack.up(collect(s));
        expect(up1.summary.result).toBe("succeeded");
        expect(up1.outputs.toplevel.value).toBe(web);
        await host.waitUp();
        expect(await host.bootKind()).toBe("nixos");
        expect(host.hostKey).toBe(up1.outputs.hostKey.value);
        expect(await live(host)).toBe(web);

        // 3. nothing changed: an empty preview
        const p2 = await s.stack.preview(collect(s));
        expect(p2.changeSummary).toEqual({ same: 3 });

        // 4.-6. a change: its package diff shows in preview --diff, then it lands
        await cfg("flake", `path:${fixtures}/flake#web-bumped`);
        const since = s.events.length;
        const p3 = await s.stack.preview({ ...collect(s), diff: true });
        expect(p3.stdout).toContain("hello: 2.12.1 → 2.12.2");
        expect(stepOps(s, since, REBUILD)).toEqual(["update"]);
        expect(stepOps(s, since, INSTALL)).toEqual(["same"]);
        const up2 = await s.stack.up(collect(s));
        expect(up2.summary.resourceChanges).toMatchObject({ update: 1, same: 2 });
        expect((await sshRun(host, "hello", { pin: up1.outputs.hostKey.value })).stdout).toBe("hello 2.12.2\n");

        // A new disk layout on the installed machine is refused at preview, naming what it would wipe.
        await cfg("installFlake", `path:${fixtures}/flake#web-two-disks`);
        const seen = s.output.length;
        const refused = await s.stack.preview(collect(s)).then(() => undefined, (e) => e);
        expect(refused).toBeDefined();
        expect(s.output.slice(seen).join("")).toMatch(/the disk layout changed .*reinstalling wipes \/dev\/vda; set allowReinstall: true/s);
        await s.stack.removeConfig("installFlake");

        // 7. refresh: the live system matches
        const r = await s.stack.refresh(collect(s));
        expect(r.summary.result).toBe("succeeded");

        // A check that fails on the connection names the property, not the connection's secrets.
        await cfg("port", "70000");
        const badPort = s.output.length;
        expect(await s.stack.preview(collect(s)).then(() => undefined, (e) => e)).toBeDefined();
        expect(s.output.slice(badPort).join("")).toMatch(/connection\.port/);
        await s.stack.removeConfig("port");
        // --debug: every event that shows a secret is the SDK's own RPC debug line (its CLI
        // rendering is that same text, so that run's stdout is checked through its events).
        const debugOutput: string[] = [];
        await s.stack.preview({ onOutput: (o) => debugOutput.push(o), onEvent: (e) => s.events.push(e), debug: true });
        expect(debugOutput.join("")).toMatch(/RegisterResource RPC finished/);
        expect(plaintextSecrets(s).sdkDebugLines).toBeGreaterThan(0);

        // 8. destroy: leaves the machine running its system
        const d = await s.stack.destroy(collect(s));
        expect(d.summary.resourceChanges).toMatchObject({ delete: 3 });
        expect(await live(host)).toBe(up2.outputs.toplevel.value);
        expectNoPlaintextSecrets(s);
    });
});

describe("examples/rebuild", () => {
    it("converges an installed machine, shows drift on refresh, rolls back a failing health check, and destroy restores the first system", async () => {
        const host = await createHost({ name: "rebuild", kind: "installer", disks: [256] });
        const installed = await installFixture(host, fixtures, "web");
        const { s, cfg } = await stackFor("rebuild", host);
        await cfg("flake", `path:${fixtures}/flake#web-bumped`);

        const p1 = await s.stack.preview(collect(s));
        expect(p1.changeSummary.create).toBe(2);
        const up1 = await s.stack.up(collect(s));
        const bumped = await buildFixture(fixtures, "web-bumped");
        expect(up1.outputs.currentSystem.value).toBe(bumped);
        expect((await s.stack.preview(collect(s))).changeSummary).toEqual({ same: 2 });

        // A configuration without hello fails the health check: the engine reports the error and
        // the machine is back on the previous system.
        await cfg("flake", `path:${fixtures}/flake#web-swapped`);
        const p2 = await s.stack.preview({ ...collect(s), diff: true });
        expect(p2.stdout).toContain("hello: 2.12.2 → ∅");
        expect(p2.stdout).toContain("jq: ∅ → 1.7.1");
        const before = s.output.length;
        const failed = await s.stack.up(collect(s)).then(() => undefined, (e) => e);
        expect(failed).toBeDefined();
        expect(s.output.slice(before).join("")).toMatch(/health check `test -x \/run\/current-system\/sw\/bin\/hello` exited 1.*rolled back/s);
        expect(await live(host)).toBe(bumped);

        // Drift: someone activates another system by hand; refresh records it; up corrects it.
        await cfg("flake", `path:${fixtures}/flake#web-bumped`);
        await host.execOk(`${installed}/bin/switch-to-configuration test`);
        const r = await s.stack.refresh(collect(s));
        expect(r.summary.resourceChanges).toMatchObject({ update: 1 });
        // The preview shows the running system against the wanted one, with its package changes.
        const p3 = await s.stack.preview({ ...collect(s), diff: true });
        expect(p3.changeSummary).toMatchObject({ update: 1 });
        expect(p3.stdout).toMatch(/~ toplevel\s*:/);
        expect(p3.stdout).toContain("hello: 2.12.1 → 2.12.2");
        const up2 = await s.stack.up(collect(s));
        expect(up2.summary.resourceChanges).toMatchObject({ update: 1 });
        expect(await live(host)).toBe(bumped);

        // onDelete: "rollback" re-activates what ran before the first deploy.
        await s.stack.destroy(collect(s));
        expect(await live(host)).toBe(installed);
        expectNoPlaintextSecrets(s);
    });
});

describe("examples/low-ram", () => {
    it("installs the guide's impermanence image (tmpfs root, /nix partition) onto a 512 MiB rescue host through the engine, switches it with a rebuild, and goes back by re-activating generation 1", async () => {
        const host = await createHost({ name: "lowram", kind: "rescue", disks: [256] });
        const { s, cfg } = await stackFor("low-ram", host);
        await cfg("flake", `path:${fixtures}/flake#web-impermanent`);
        await cfg("confirmTimeout", "6");
        const [web, bumped] = [await buildFixture(fixtures, "web-impermanent"), await buildFixture(fixtures, "web-impermanent-bumped")];

        const p1 = await s.stack.preview({ ...collect(s), diff: true });
        expect(p1.changeSummary).toEqual({ create: 4 });
        expect(p1.stdout).toMatch(/image\s*: "\/nix\/store\/[a-z0-9]{32}-disko-images-web"/);
        const up1 = await s.stack.up(collect(s));
        expect(up1.outputs.toplevel.value).toBe(web);
        expect(up1.outputs.generation.value).toBe(1);
        expect(await host.bootKind()).toBe("nixos");
        expect((await host.execOk("stat -f -c %T /")).trim()).toBe("tmpfs");
        expect(s.output.join("")).toMatch(/vps-install: write: verified: \/dev\/vda holds the image/);
        expect((await s.stack.preview(collect(s))).changeSummary).toEqual({ same: 4 });

        await cfg("flake", `path:${fixtures}/flake#web-impermanent-bumped`);
        const up2 = await s.stack.up(collect(s));
        expect(up2.summary.resourceChanges).toMatchObject({ update: 1, same: 3 });
        expect(up2.outputs.generation.value).toBe(2);
        expect(await live(host)).toBe(bumped);

        await cfg("flake", `path:${fixtures}/flake#web-impermanent`);
        const up3 = await s.stack.up(collect(s));
        expect(up3.outputs.generation.value).toBe(1);
        expect(await live(host)).toBe(web);
        expectNoPlaintextSecrets(s);
    });
});

describe("examples/machine", () => {
    it("NixosMachine installs, previews and applies an update, rolls back a configuration that stops sshd, refreshes and destroys", async () => {
        const host = await createHost({ name: "machine", disks: [256] });
        const { s, cfg } = await stackFor("machine", host);
        await cfg("flake", `path:${fixtures}/flake#web`);
        await cfg("confirmTimeout", "6");
        await s.stack.setConfig("healthChecks", { value: JSON.stringify(["test -x /run/current-system/sw/bin/hello"]) });
        const [web, bumped] = [await buildFixture(fixtures, "web"), await buildFixture(fixtures, "web-bumped")];

        // install: the stack, the component and its two resources
        const p1 = await s.stack.preview({ ...collect(s), diff: true });
        expect(p1.changeSummary).toEqual({ create: 4 });
        expect(p1.stdout).toContain(web);
        const up1 = await s.stack.up(collect(s));
        expect(up1.outputs.toplevel.value).toBe(web);
        // The rebuild adopts what the install put there: a one-line summary, not a package list.
        expect(up1.outputs.changes.value).toEqual([expect.stringMatching(/^new system: \d+ store paths/)]);
        await host.waitUp();
        expect(host.hostKey).toBe(up1.outputs.hostKey.value);
        expect(await live(host)).toBe(web);
        expect((await s.stack.preview(collect(s))).changeSummary).toEqual({ same: 4 });

        // update: the version bump is in the preview, and only the rebuild changes
        await cfg("flake", `path:${fixtures}/flake#web-bumped`);
        let since = s.events.length;
        const p2 = await s.stack.preview({ ...collect(s), diff: true });
        expect(p2.stdout).toContain("hello: 2.12.1 → 2.12.2");
        expect(p2.stdout).toMatch(new RegExp(`toplevel.*${web}.*=>.*${bumped}`));
        expect(stepOps(s, since, REBUILD)).toEqual(["update"]);
        expect(stepOps(s, since, INSTALL)).toEqual(["same"]);
        const up2 = await s.stack.up(collect(s));
        expect(up2.summary.resourceChanges).toMatchObject({ update: 1, same: 3 });
        expect(up2.outputs.toplevel.value).toBe(bumped);
        expect(up2.outputs.changes.value).toContain("hello: 2.12.1 → 2.12.2");
        expect(up2.outputs.generation.value).toBe(up1.outputs.generation.value + 1);

        // a configuration that stops sshd: no fresh connection confirms it, so the machine rolls back
        await cfg("flake", `path:${fixtures}/flake#web-no-sshd`);
        since = s.output.length;
        const started = Date.now();
        const failed = await s.stack.up(collect(s)).then(() => undefined, (e) => e);
        expect(failed).toBeDefined();
        expect(s.output.slice(since).join("")).toMatch(/rolled back to .*-nixos-system-web-/s);
        expect(Date.now() - started).toBeLessThan(60_000);
        expect(await live(host)).toBe(bumped);
        // The state keeps the system that runs.
        const state = (await s.stack.exportStack()).deployment as { resources: { type: string; outputs?: Record<string, unknown> }[] };
        expect(state.resources.find((r) => r.type === REBUILD)?.outputs?.toplevel).toBe(bumped);

        // refresh: a system activated by hand shows as drift, and up corrects it
        await cfg("flake", `path:${fixtures}/flake#web-bumped`);
        await host.execOk(`${web}/bin/switch-to-configuration test`);
        const r = await s.stack.refresh(collect(s));
        expect(r.summary.resourceChanges).toMatchObject({ update: 1 });
        const up3 = await s.stack.up(collect(s));
        expect(up3.summary.resourceChanges).toMatchObject({ update: 1 });
        expect(await live(host)).toBe(bumped);

        // destroy: the machine keeps running its system
        const d = await s.stack.destroy(collect(s));
        expect(d.summary.resourceChanges).toMatchObject({ delete: 4 });
        expect(await live(host)).toBe(bumped);
        expectNoPlaintextSecrets(s);
    });
});

describe("examples/non-flake", () => {
    it("installs from configuration.nix; a failed first up leaves encrypted partial state, and the next up resumes", async () => {
        const host = await createHost({ name: "nonflake", disks: [256] });
        const { s, cfg } = await stackFor("non-flake", host);
        await cfg("configuration", `${fixtures}/non-flake/configuration.nix`);
        await cfg("nixpkgs", `${fixtures}/nixpkgs`);
        await cfg("disko", fixtures);

        const p1 = await s.stack.preview({ ...collect(s), diff: true });
        expect(p1.changeSummary).toEqual({ create: 3 });
        expect(p1.stdout).toMatch(/-nixos-system-legacy-/);
        expect(p1.stdout).toMatch(/diskoScript\s*: "\/nix\/store\/[0-9a-z]{32}-disko-legacy"/);

        // The machine's kexec fails once: the install stops before changing anything.
        await failOnce(host, "cpio");
        const failed = await s.stack.up(collect(s)).then(() => undefined, (e) => e);
        expect(failed).toBeDefined();
        const state = (await s.stack.exportStack()).deployment as { resources: { type: string; outputs?: Record<string, any>; initErrors?: string[] }[] };
        const partial = state.resources.find((r) => r.type === INSTALL)!;
        expect(partial.initErrors?.[0]).toMatch(/^kexec on \S+ failed: the kexec script did not start the installer/);
        expect(partial.outputs?.phasesCompleted).toEqual([]);
        // The partial state keeps the connection a secret, like a completed one (the export shows
        // secrets in plaintext; the stored checkpoint must not).
        expect(partial.outputs?.connection?.["4dabf18193072939515e22adb298388d"]).toBe("1b47061264138c4ac30d75fd1eb44270");
        const stored = stateFiles(s).map((f) => fs.readFileSync(f, "utf8"));
        expect(stored.some((t) => t.includes("initErrors") && t.includes("ciphertext"))).toBe(true);
        expect(stored.filter((t) => t.includes("PRIVATE KEY"))).toEqual([]);

        // The same program again: the engine updates the resource with init errors, which resumes.
        const up = await s.stack.up(collect(s));
        expect(up.summary.result).toBe("succeeded");
        await host.waitUp();
        expect(await host.bootKind()).toBe("nixos");
        expect(await live(host)).toMatch(/-nixos-system-legacy-/);
        expect((await s.stack.preview(collect(s))).changeSummary).toEqual({ same: 3 });
        const d = await s.stack.destroy(collect(s));
        expect(d.summary.resourceChanges).toMatchObject({ delete: 3 });
        expectNoPlaintextSecrets(s);
    });
});

describe("examples/store-paths", () => {
    it("installs prebuilt store paths with NixosMachine, then deploys a new toplevel from CI", async () => {
        const host = await createHost({ name: "storepaths", kind: "installer", disks: [256] });
        const { s, cfg } = await stackFor("store-paths", host);
        const [web, bumped, disko] = [await buildFixture(fixtures, "web"), await buildFixture(fixtures, "web-bumped"), await buildFixture(fixtures, "web", "diskoScript")];
        await cfg("toplevel", web);
        await cfg("diskoScript", disko);

        const up1 = await s.stack.up(collect(s));
        expect(up1.outputs.toplevel.value).toBe(web);
        await host.waitUp();
        expect(host.hostKey).toBe(up1.outputs.hostKey.value);

        await cfg("toplevel", bumped);
        const p = await s.stack.preview({ ...collect(s), diff: true });
        expect(p.stdout).toContain("hello: 2.12.1 → 2.12.2");
        const up2 = await s.stack.up(collect(s));
        expect(up2.summary.resourceChanges).toMatchObject({ update: 1, same: 3 });
        expect(await live(host)).toBe(bumped);
        await s.stack.destroy(collect(s));
        expectNoPlaintextSecrets(s);
    });
});

describe("examples/fleet", () => {
    it("installs three machines in one stack in parallel, each pinned to its own generated key; one evaluation, none in a no-op preview", async () => {
        const fleet = await Promise.all(["fleet1", "fleet2", "fleet3"].map((name) => createHost({ name, kind: "installer", disks: [128] })));
        const nix = countingNix();
        const s = await exampleStack("fleet", "e2e", { pathFirst: nix.dir });
            await s.stack.setConfig("privateKeyFile", { value: clientKey().privateKeyPath });
        await s.stack.setConfig("flake", { value: `path:${fixtures}/flake#web` });
        await s.stack.setConfig("machines", { value: JSON.stringify(fleet.map((h) => ({ name: h.name, host: h.address, hostKey: h.hostKey }))) });
        const web = await buildFixture(fixtures, "web");

        const since = s.events.length;
        const up = await s.stack.up(collect(s));
        expect(up.summary.resourceChanges).toMatchObject({ create: 10 });
        // Six checks (three installs, three rebuilds) of one configuration: one nix eval.
        expect(nix.calls("nix eval")).toBe(1);
        expect(up.outputs.toplevels.value).toEqual(Object.fromEntries(fleet.map((h) => [h.name, web])));
        // In parallel: every install started before the first one finished.
        const steps = s.events.slice(since);
        const firstDone = steps.findIndex((e) => e.resOutputsEvent?.metadata.type === INSTALL);
        const started = steps.filter((e, i) => i < firstDone && e.resourcePreEvent?.metadata.type === INSTALL);
        expect(started).toHaveLength(3);
        for (const h of fleet) {
            await h.waitUp();
            expect(await live(h)).toBe(web);
        }
        expect(new Set(fleet.map((h) => h.hostKey)).size).toBe(3);
        // A new provider process, an unchanged flake: the recorded evaluations are reused.
        const noop = await s.stack.preview(collect(s));
        expect(noop.changeSummary).toEqual({ same: 10 });
        expect(nix.calls("nix eval")).toBe(1);
        expect(nix.calls("nix flake metadata")).toBeGreaterThan(0);
        await s.stack.destroy(collect(s));
        expectNoPlaintextSecrets(s);
    });
});
