/** The offline Pulumi engine: the CLI built by scripts/build-engine.sh and an environment that never reaches out. */
import * as fs from "node:fs";
import * as path from "node:path";

const ROOT = path.resolve(__dirname, "..", "..");

export function pulumiVersion(): string {
    // The exact version the repository builds and tests with; users bring their own within the peer range.
    return JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8")).devDependencies["@pulumi/pulumi"];
}

/** Folder holding bin/pulumi, bin/pulumi-language-nodejs and bin/pulumi-resource-pulumi-nodejs. */
export function engineRoot(): string {
    const dir = path.join(ROOT, ".tools", `pulumi-v${pulumiVersion()}`);
    if (!fs.existsSync(path.join(dir, "bin", "pulumi"))) {
        throw new Error(`the Pulumi CLI is not built in ${dir}; run scripts/build-engine.sh (npm test and npm run demo do)`);
    }
    return dir;
}

/**
 * Environment for the CLI: a local file backend and PULUMI_HOME under `work`, a passphrase, no
 * update checks and no plugin downloads; the engine and Node 22 first on PATH.
 */
export function engineEnv(work: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
    const backend = path.join(work, "backend");
    const home = path.join(work, "pulumi-home");
    fs.mkdirSync(backend, { recursive: true });
    fs.mkdirSync(home, { recursive: true });
    return {
        ...process.env,
        PATH: [path.join(engineRoot(), "bin"), path.dirname(process.execPath), process.env.PATH].join(":"),
        PULUMI_BACKEND_URL: `file://${backend}`,
        PULUMI_HOME: home,
        PULUMI_CONFIG_PASSPHRASE: "pulumi-nixos-tests",
        PULUMI_SKIP_UPDATE_CHECK: "true",
        PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true",
        PULUMI_AUTOMATION_API_SKIP_VERSION_CHECK: "true",
        PULUMI_SKIP_CONFIRMATIONS: "true",
        ...extra,
    };
}
