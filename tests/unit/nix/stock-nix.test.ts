import { execFileSync } from "node:child_process";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { evaluate } from "../../../provider/nix/eval";
import { FIXTURES } from "../../testbed/nix";

describe("the deployer's Nix in its stock configuration", () => {
    it("has nothing experimental enabled, and is the Nix this tier asks for", () => {
        expect(process.env.NIX_CONFIG ?? "").not.toMatch(/experimental-features/);
        const version = execFileSync("nix", ["--version"], { encoding: "utf8" });
        expect(version).toMatch(process.env.PNX_SECOND_NIX ? new RegExp(`\\b${process.env.PNX_SECOND_NIX.replace(".", "\\.")}\\.`) : /^nix \(Nix\) /);
        // A new-style command without the per-call flag is refused there, as on users' machines.
        expect(() => execFileSync("nix", ["eval", "--expr", "1"], { stdio: "pipe" })).toThrow(/experimental Nix feature 'nix-command' is disabled/);
    });

    it("evaluates a flake configuration all the same: the product enables nix-command and flakes per call", async () => {
        const paths = await evaluate({ kind: "flake", flake: `path:${path.join(FIXTURES, "flake")}#web` }, process.cwd());
        expect(paths.toplevel).toMatch(/^\/nix\/store\/[0-9a-z]{32}-nixos-system-web-/);
        expect(paths.diskoScript).toMatch(/-disko-web$/);
    });
});
