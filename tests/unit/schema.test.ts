import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { packageSchema } from "../../provider/schema/package-schema";
import { sdkDocs } from "../../scripts/sdk-docs";
import { engineRoot } from "../e2e/engine";

const ROOT = path.resolve(__dirname, "..", "..");
const version = JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8")).version;

const docs = sdkDocs();

describe("schema.json", () => {
    it("describes every input with the SDK's TSDoc", () => {
        const s = packageSchema(version, docs) as { types: Record<string, { properties: Record<string, { description?: string }> }>; resources: Record<string, { inputProperties: Record<string, { description?: string }> }> };
        const props = [
            ...["NixosInstall", "NixosRebuild"].flatMap((r) => Object.entries(s.resources[`pulumi-nodejs:dynamic/nixos:${r}`].inputProperties).map(([k, p]) => [`${r}.${k}`, p] as const)),
            ...Object.entries(s.types["pulumi-nodejs:dynamic/nixos:Connection"].properties).map(([k, p]) => [`Connection.${k}`, p] as const),
        ];
        expect(props.length).toBeGreaterThan(40);
        expect(props.filter(([, p]) => !p.description).map(([k]) => k)).toEqual([]);
        const install = s.resources["pulumi-nodejs:dynamic/nixos:NixosInstall"].inputProperties;
        expect(install.postKexecSshPort.description).toBe(docs.NixosInstallArgs.postKexecSshPort);
        expect(install.diskoMode.description).toMatch(/^.+ One of "disko", "format", "mount"\.$/);
    });

    it("is what the zod schemas generate (run scripts/gen-schema.ts after changing an input)", () => {
        const committed = JSON.parse(fs.readFileSync(path.join(ROOT, "schema.json"), "utf8"));
        expect(committed).toEqual(JSON.parse(JSON.stringify(packageSchema(version, docs))));
    });

    it("describes the four resources, NixosMachine as a component", () => {
        const s = packageSchema(version, docs) as any;
        expect(Object.keys(s.resources).sort()).toEqual(["NixosImage", "NixosInstall", "NixosMachine", "NixosRebuild"].map((r) => `pulumi-nodejs:dynamic/nixos:${r}`));
        expect(s.resources["pulumi-nodejs:dynamic/nixos:NixosMachine"].isComponent).toBe(true);
        expect(Object.keys(s.types["pulumi-nodejs:dynamic/nixos:MachineRebuild"].properties)).toEqual(expect.arrayContaining(["action", "healthChecks", "magicRollback", "onDelete"]));
    });

    it("marks the connection, extra files, disk keys, host key pair and kexec tarball as secret", () => {
        const s = packageSchema(version, docs) as any;
        const install = s.resources["pulumi-nodejs:dynamic/nixos:NixosInstall"].inputProperties;
        for (const k of ["connection", "extraFiles", "diskEncryptionKeys", "hostKeyPair", "kexecTarball"]) expect(install[k].secret, k).toBe(true);
        expect(s.resources["pulumi-nodejs:dynamic/nixos:NixosRebuild"].inputProperties.connection.secret).toBe(true);
        expect(s.resources["pulumi-nodejs:dynamic/nixos:NixosMachine"].inputProperties.connection.secret).toBe(true);
        expect(s.types["pulumi-nodejs:dynamic/nixos:MachineInstall"].properties.hostKeyPair.secret).toBe(true);
    });

    it("passes the Pulumi CLI's schema check against the package metaschema", () => {
        const home = fs.mkdtempSync(path.join(os.tmpdir(), "pnx-schema-"));
        const out = execFileSync(path.join(engineRoot(), "bin", "pulumi"), ["schema", "check", path.join(ROOT, "schema.json")], {
            env: { ...process.env, PULUMI_HOME: home, PULUMI_SKIP_UPDATE_CHECK: "true" },
        }).toString();
        expect(out.trim()).toBe("");
    });
});
