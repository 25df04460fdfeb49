/**
 * `connection` has @pulumi/command's shape, so a user's existing remote.ConnectionArgs works as it is
 * and ours works there too. Checked by the compiler (npm test type-checks tests first); @pulumi/command
 * is only a dev dependency, so users' stacks never ask for its resource plugin.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import type { types } from "@pulumi/command";
import { describe, expect, it } from "vitest";
import type { ConnectionArgs } from "../../sdk/connection";

const pkg = JSON.parse(fs.readFileSync(path.join(__dirname, "..", "..", "package.json"), "utf8"));

type CommandConnection = types.input.remote.ConnectionArgs;

describe("connection and @pulumi/command", () => {
    it("is assignable to and from @pulumi/command's remote.ConnectionArgs", () => {
        const theirs: CommandConnection = { host: "203.0.113.10", user: "admin", privateKey: "k", proxy: { host: "bastion" }, dialErrorLimit: 3 };
        const ours: ConnectionArgs = theirs;
        const back: CommandConnection = ours;
        expect(back).toBe(theirs);
    });

    it("is not a runtime dependency, and @pulumi/pulumi is a peer the user's project provides", () => {
        expect(Object.keys(pkg.dependencies)).not.toContain("@pulumi/command");
        expect(Object.keys(pkg.dependencies)).not.toContain("@pulumi/pulumi");
        expect(pkg.peerDependencies["@pulumi/pulumi"]).toMatch(/^\^3\./);
    });
});
