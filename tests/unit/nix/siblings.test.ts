import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { MAX_SIBLINGS, remember, rememberedSiblings } from "../../../provider/nix/siblings";

function cacheHome(): NodeJS.ProcessEnv {
    return { ...process.env, XDG_CACHE_HOME: fs.mkdtempSync(path.join(os.tmpdir(), "pnx-xdg-")) };
}
const memoryFile = (env: NodeJS.ProcessEnv) => path.join(env.XDG_CACHE_HOME!, "pulumi-nixos", "configurations.json");

describe("the configurations a deployer remembers", () => {
    it("gives the others of the same flake, newest first, and never the flake URL itself", async () => {
        const env = cacheHome();
        const flake = "git+https://oauth2:ghp_secret-token@git.example.org/infra";
        for (const n of ["web1", "web2", "db1"]) {
            remember("/srv/stack", flake, n, env);
            await new Promise((r) => setTimeout(r, 5));
        }
        remember("/srv/stack", "path:/other", "other", env);
        expect(rememberedSiblings("/srv/stack", flake, "web2", env)).toEqual(["db1", "web1"]);
        expect(rememberedSiblings("/srv/elsewhere", flake, "web2", env)).toEqual([]);
        expect(fs.readFileSync(memoryFile(env), "utf8")).not.toContain("secret-token");
    });

    it("forgets what was not asked for in 14 days, and gives at most MAX_SIBLINGS - 1", () => {
        const env = cacheHome();
        for (let i = 0; i < MAX_SIBLINGS + 5; i++) remember("/srv", "path:/f", `m${i}`, env);
        expect(rememberedSiblings("/srv", "path:/f", "m0", env)).toHaveLength(MAX_SIBLINGS - 1);
        const memory = JSON.parse(fs.readFileSync(memoryFile(env), "utf8")) as Record<string, Record<string, number>>;
        for (const names of Object.values(memory)) for (const n of Object.keys(names)) names[n] = Date.now() - 15 * 86400_000;
        fs.writeFileSync(memoryFile(env), JSON.stringify(memory));
        expect(rememberedSiblings("/srv", "path:/f", "m0", env)).toEqual([]);
    });

    it.each(["/proc/no-such-place", "/etc/hostname/cache"])("costs only speed, and returns at once, when the cache folder %s cannot be made", (dir) => {
        const env = { ...process.env, XDG_CACHE_HOME: dir };
        expect(() => remember("/srv", "path:/f", "web", env)).not.toThrow();
        expect(rememberedSiblings("/srv", "path:/f", "x", env)).toEqual([]);
    }, 5000);
});
