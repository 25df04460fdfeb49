import { describe, expect, it } from "vitest";
import { flakeAttr } from "../../../provider/nix/eval";

describe("flakeAttr", () => {
    it.each([
        ["./infra#web", "./infra", 'nixosConfigurations."web"'],
        // A host name with dots is a name, as nixos-rebuild reads it, not an attribute path.
        ["./infra#host.example.com", "./infra", 'nixosConfigurations."host.example.com"'],
        ["path:/x/flake#nixosConfigurations.web", "path:/x/flake", "nixosConfigurations.web"],
        ["github:o/r?dir=a#packages.x86_64-linux.sys", "github:o/r?dir=a", "packages.x86_64-linux.sys"],
        ["./a#b#web", "./a#b", 'nixosConfigurations."web"'],
    ])("reads %s as flake %s, attribute %s", (ref, flake, attr) => {
        expect(flakeAttr(ref)).toEqual({ flake, attr });
    });
});
