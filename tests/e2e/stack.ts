/**
 * Running an example through the real Pulumi engine with the Automation API: the example is copied
 * to a temporary folder and the packed pulumi-nixos tarball installed into it, as a user would.
 */
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { EngineEvent, LocalWorkspace, PulumiCommand, Stack } from "@pulumi/pulumi/automation";
import { nixConfig } from "../testbed/nix";
import { engineEnv, engineRoot } from "./engine";

const ROOT = path.resolve(__dirname, "..", "..");

/** `npm pack` of this repository, made once per test run by the global setup. */
export function packedTarball(): string {
    const tgz = process.env.PULUMI_NIXOS_PACKED;
    if (!tgz || !fs.existsSync(tgz)) throw new Error("the global setup did not pack pulumi-nixos (PULUMI_NIXOS_PACKED)");
    return tgz;
}

export interface ExampleStack {
    stack: Stack;
    workDir: string;
    env: NodeJS.ProcessEnv;
    /** Everything the CLI printed, for the secret scan. */
    output: string[];
    events: EngineEvent[];
    backendDir: string;
}

/** `pathFirst`: a directory put in front of the engine's PATH (the provider's commands see it first). */
export function exampleStack(example: string, stackName: string, o: { pathFirst?: string } = {}): Promise<ExampleStack> {
    return programStack(path.join(ROOT, "examples", example), stackName, o);
}

/** A stack of the Pulumi program in `programDir` (copied first), with pulumi-nixos installed from the packed tarball. */
export async function programStack(programDir: string, stackName: string, o: { pathFirst?: string } = {}): Promise<ExampleStack> {
    const work = fs.mkdtempSync(path.join(os.tmpdir(), `pnx-e2e-${path.basename(programDir)}-`));
    const workDir = path.join(work, "program");
    fs.cpSync(programDir, workDir, { recursive: true });
    // The package as users get it, plus the example's own dependencies, from npm's cache.
    execFileSync("npm", ["install", "--no-audit", "--no-fund", "--silent", "--prefer-offline", packedTarball()], { cwd: workDir, stdio: "pipe" });
    const env = engineEnv(work, { NIX_CONFIG: nixConfig() });
    if (o.pathFirst) env.PATH = `${o.pathFirst}:${env.PATH}`;
    const pulumiCommand = await PulumiCommand.get({ root: engineRoot(), skipVersionCheck: true });
    const stack = await LocalWorkspace.createOrSelectStack({ stackName, workDir }, { pulumiCommand, envVars: env as Record<string, string>, pulumiHome: env.PULUMI_HOME });
    return { stack, workDir, env, output: [], events: [], backendDir: path.join(work, "backend") };
}

/** Options that collect output and engine events of one operation. */
export function collect(s: ExampleStack): { onOutput: (o: string) => void; onEvent: (e: EngineEvent) => void } {
    return { onOutput: (o) => s.output.push(o), onEvent: (e) => s.events.push(e) };
}

/** The stack's state file, as the local backend stores it. */
export function stateFiles(s: ExampleStack): string[] {
    const out: string[] = [];
    const walk = (d: string) => {
        for (const f of fs.readdirSync(d)) {
            const p = path.join(d, f);
            if (fs.statSync(p).isDirectory()) walk(p);
            else out.push(p);
        }
    };
    walk(s.backendDir);
    return out;
}
