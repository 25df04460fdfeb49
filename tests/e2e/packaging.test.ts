/**
 * pulumi-nixos as users install it: the packed tarball in a fresh project. The language host reports
 * the resource plugins a program's packages declare, as the upstream host does, so a dependency
 * that declares one (as @pulumi/command does) would make every user's stack ask for that plugin.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { engineEnv } from "./engine";
import { packedTarball } from "./stack";

const ROOT = path.resolve(__dirname, "..", "..");

/** A fresh Pulumi project with `packages` installed; returns `pulumi plugin install`'s result there. */
function pluginsWanted(packages: string[]): { code: number | null; output: string; installed: string[] } {
    const work = fs.mkdtempSync(path.join(os.tmpdir(), "pnx-e2e-packaging-"));
    const dir = path.join(work, "program");
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, "Pulumi.yaml"), "name: packaging\nruntime: nodejs\n");
    fs.writeFileSync(path.join(dir, "package.json"), JSON.stringify({ name: "packaging", main: "index.js", dependencies: { "@pulumi/pulumi": "3.259.0" } }));
    fs.writeFileSync(path.join(dir, "index.js"), 'require("pulumi-nixos");\n');
    const npm = spawnSync("npm", ["install", "--no-audit", "--no-fund", "--silent", "--prefer-offline", ...packages], { cwd: dir, encoding: "utf8" });
    expect(npm.status, npm.stderr).toBe(0);
    const env = engineEnv(work);
    // As on a user's machine: the engine may fetch what the program's packages ask for (offline
    // here, so a request shows as a failed download naming the plugin).
    delete env.PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION;
    const r = spawnSync("pulumi", ["plugin", "install", "--non-interactive"], { cwd: dir, env, encoding: "utf8", timeout: 120_000 });
    const installed = fs.readdirSync(path.join(dir, "node_modules", "@pulumi"));
    return { code: r.status, output: r.stdout + r.stderr, installed };
}

describe("pulumi-nixos as users install it", () => {
    it("brings no resource plugin into a fresh project: @pulumi/command is not installed and nothing is asked for", () => {
        const r = pluginsWanted([packedTarball()]);
        expect(r.installed).not.toContain("command");
        expect(r.output).not.toMatch(/resource plugin|download/i);
        expect(r.code).toBe(0);
    });

    it("would show a plugin a dependency declares: the language host reports @pulumi/command's", () => {
        const r = pluginsWanted([packedTarball(), path.join(ROOT, "node_modules", "@pulumi", "command")]);
        expect(r.output).toMatch(/command-1\.2\.1/);
        expect(r.code).not.toBe(0);
    });
});
