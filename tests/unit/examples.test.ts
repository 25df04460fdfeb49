/**
 * The examples are real programs: `npm test` type-checks their index.ts against the SDK, and this
 * file checks what the type-checker cannot: their layout, that their Nix files parse with real
 * Nix, that every source kind has one, and that the Linode module carries Linode's settings.
 */
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";

const EXAMPLES = path.resolve(__dirname, "..", "..", "examples");
const examples = fs.readdirSync(EXAMPLES).filter((d) => fs.statSync(path.join(EXAMPLES, d)).isDirectory());

function nixFiles(dir: string): string[] {
    return fs.readdirSync(dir, { recursive: true, encoding: "utf8" }).filter((f) => f.endsWith(".nix")).map((f) => path.join(dir, f));
}

describe("examples", () => {
    it.each(examples)("%s is a Pulumi TypeScript program using the pulumi-nixos package", (name) => {
        const dir = path.join(EXAMPLES, name);
        expect(fs.readFileSync(path.join(dir, "Pulumi.yaml"), "utf8")).toMatch(/^name: nixos-[\w-]+\n[\s\S]*runtime:\n\s+name: nodejs/);
        expect(JSON.parse(fs.readFileSync(path.join(dir, "package.json"), "utf8")).dependencies).toHaveProperty("pulumi-nixos");
        expect(fs.readFileSync(path.join(dir, "index.ts"), "utf8")).toMatch(/from "pulumi-nixos"/);
    });

    it("parse with Nix, every .nix file", () => {
        const files = examples.flatMap((e) => nixFiles(path.join(EXAMPLES, e)));
        expect(files.length).toBeGreaterThanOrEqual(6);
        for (const f of files) {
            expect(() => execFileSync("nix-instantiate", ["--parse", f], { stdio: "pipe" }), f).not.toThrow();
        }
    });

    it("cover each source kind: flake, nixosConfiguration and storePaths", () => {
        const programs = examples.map((e) => fs.readFileSync(path.join(EXAMPLES, e, "index.ts"), "utf8"));
        for (const kind of [/\bflake: /, /\bnixosConfiguration\b/, /\bstorePaths: /]) {
            expect(programs.some((p) => kind.test(p)), String(kind)).toBe(true);
        }
    });

    it("linode: the module sets the serial console, GRUB and tools from Linode's guide", () => {
        const expr = `import ${path.join(EXAMPLES, "linode", "infra", "linode.nix")} { pkgs = { inetutils = "inetutils"; mtr = "mtr"; sysstat = "sysstat"; }; }`;
        const m = JSON.parse(execFileSync("nix-instantiate", ["--eval", "--strict", "--json", "-E", expr], { encoding: "utf8" }));
        expect(m.boot.kernelParams).toEqual(["console=ttyS0,19200n8"]);
        expect(m.boot.loader.grub.extraConfig).toContain("serial --speed=19200 --unit=0 --word=8 --parity=no --stop=1;");
        expect(m.boot.loader.grub.extraConfig).toMatch(/terminal_input serial;\s+terminal_output serial/);
        expect(m.boot.loader.grub).toMatchObject({ device: "/dev/sda", forceInstall: true });
        expect(m.boot.loader.timeout).toBe(10);
        expect(m.networking.usePredictableInterfaceNames).toBe(false);
        expect(m.environment.systemPackages).toEqual(["inetutils", "mtr", "sysstat"]);
    });
});
