/** How the deployer's own Nix steps fail: evaluation, a missing store path, a build, no Nix at all. */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { mustBeLocal, realise } from "../../../provider/nix/build";
import { evaluate } from "../../../provider/nix/eval";
import { mustLocal, runLocal } from "../../../provider/nix/local";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "pnx-local-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const ABSENT = "/nix/store/00000000000000000000000000000000-absent";

describe("local Nix failures", () => {
    it("cannot evaluate a flake that does not parse", async () => {
        fs.writeFileSync(path.join(tmp, "flake.nix"), "{ outputs = { self }: { nixosConfigurations = ; }; }\n");
        const err = await evaluate({ kind: "flake", flake: `path:${tmp}#web` }, tmp).catch((e) => e);
        expect(err.message).toMatch(/^evaluate on localhost failed: cannot evaluate path:/);
        expect(err.message).toMatch(/syntax error/);
    });

    it("cannot evaluate a non-flake configuration file that is not there", async () => {
        const err = await evaluate({ kind: "nixosConfiguration", file: "absent.nix", nixPath: {} }, tmp).catch((e) => e);
        expect(err.message).toMatch(/^evaluate on localhost failed: cannot evaluate the NixOS configuration \S+absent\.nix/);
    });

    it("ends a local command at its bound, and says so", async () => {
        const t0 = Date.now();
        const err = await mustLocal("copy", "pushing the closure to the binary cache http://cache failed", "sleep", ["30"], { timeoutMs: 300 }).catch((e) => e);
        expect(err.message).toMatch(/^copy on localhost failed: pushing the closure to the binary cache http:\/\/cache failed: timed out after 0\.3 s/);
        expect(Date.now() - t0).toBeLessThan(10_000);
    });

    it("refuses prebuilt store paths this machine does not have", async () => {
        const err = await mustBeLocal([ABSENT]).catch((e) => e);
        expect(err.message).toMatch(/^build on localhost failed: \/nix\/store\/0+-absent is not in the local Nix store/);
    });

    it("cannot build a derivation that is not there", async () => {
        const err = await realise([{ drv: `${ABSENT}.drv`, out: ABSENT }]).catch((e) => e);
        expect(err.message).toMatch(/^build on localhost failed: cannot build the system/);
    });

    it("says when Nix is not installed where Pulumi runs", async () => {
        const err = await mustLocal("build", "cannot build the system", "nix-store", ["--version"], { env: { PATH: path.join(tmp, "empty") } }).catch((e) => e);
        expect(err.message).toMatch(/^build on localhost failed: cannot build the system: cannot run nix-store/);
        expect(err.message).toMatch(/hint: install Nix/);
    });

    it.each([
        ["blkid", /^image on localhost failed: cannot run blkid: spawn blkid ENOENT\nhint: install util-linux on the machine that runs Pulumi/],
        ["partx", /^image on localhost failed: cannot run partx: spawn partx ENOENT\nhint: install util-linux .*blkid and partx/],
        ["qemu-img", /^image on localhost failed: cannot run qemu-img: spawn qemu-img ENOENT\nhint: install qemu-img on the machine that runs Pulumi \(Debian: apt-get install qemu-utils\)/],
    ])("names the package to install when the image tool %s is not on the deployer", async (tool, message) => {
        const err = await runLocal(tool, ["--version"], { env: { PATH: path.join(tmp, "empty") } }).catch((e) => e);
        expect(err.message).toMatch(message);
    });

    it("says which tool is missing for a local step, with what was being done", async () => {
        const err = await mustLocal("image", "converting a.qcow2 to raw", "qemu-img", ["convert"], { env: { PATH: path.join(tmp, "empty") } }).catch((e) => e);
        expect(err.message).toMatch(/^image on localhost failed: converting a\.qcow2 to raw: cannot run qemu-img: spawn qemu-img ENOENT\nhint: install qemu-img/);
    });
});
