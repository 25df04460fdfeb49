import { describe, expect, it } from "vitest";
import { Command, quote, sh } from "../../../provider/ssh/shell";
import { Target } from "../../../provider/ssh/target";

describe("sh", () => {
    it("quotes every interpolated string, so shell syntax in a value stays a value", () => {
        const path = "/nix/store/x-a b;rm -rf /`id`$(id)'q";
        expect(sh`test -x ${path}/bin/switch-to-configuration`.text).toBe(`test -x '/nix/store/x-a b;rm -rf /\`id\`$(id)'\\''q'/bin/switch-to-configuration`);
    });

    it("puts numbers in as they are and refuses numbers a shell cannot take", () => {
        expect(sh`--delete-generations +${3}`.text).toBe("--delete-generations +3");
        expect(() => sh`sleep ${Number.NaN}`).toThrow(TypeError);
    });

    it("puts a Command in as the command it is, and a list of Commands joined by spaces", () => {
        const store = sh`--store ${"/mnt"} `;
        expect(sh`nix-store ${store}--import`.text).toBe("nix-store --store '/mnt' --import");
        expect(sh`x ${[sh`-a`, sh`-b ${"c d"}`]}`.text).toBe("x -a -b 'c d'");
    });

    it("round-trips any string through quote and a real shell", async () => {
        const { execFileSync } = await import("node:child_process");
        for (const s of ["plain", "with space", "it's", "$HOME", "`x`", "a\nb", ""]) {
            expect(execFileSync("sh", ["-c", `printf %s ${quote(s)}`], { encoding: "utf8" })).toBe(s);
        }
    });

    it("is the only way to give Target.run a command", () => {
        const t = new Target({ host: "127.0.0.1" });
        // @ts-expect-error a plain string is not a Command: it could carry an unquoted value
        const refused = () => t.run("rm -rf /tmp/x", { phase: "test" });
        expect(refused).toBeInstanceOf(Function);
        expect(sh`true`).toBeInstanceOf(Command);
    });
});
