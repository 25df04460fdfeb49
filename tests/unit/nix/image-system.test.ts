/** The system a disk image holds, read from its derivation's build inputs with the deployer's Nix. */
import { beforeAll, describe, expect, it } from "vitest";
import { evaluate, evaluateImage } from "../../../provider/nix/eval";
import { imageSystem } from "../../../provider/nix/image-system";
import { fixtureCopy } from "../../testbed/nix";

let dir: string;
beforeAll(() => {
    dir = fixtureCopy();
});

const of = async (name: string) => {
    const source = { kind: "flake" as const, flake: `path:${dir}/flake#${name}` };
    const [paths, image] = await Promise.all([evaluate(source, dir), evaluateImage(source, "diskoImages", dir)]);
    return { paths, system: await imageSystem(image.drv) };
};

describe("imageSystem", () => {
    it("finds the variant of the configuration that disko's image builder installs (its GRUB devices changed)", async () => {
        const { paths, system } = await of("web-gpt-grub-sda");
        expect(system!.drv).toMatch(/^\/nix\/store\/[a-z0-9]{32}-nixos-system-web-.*\.drv$/);
        expect(system!.out).toMatch(/^\/nix\/store\/[a-z0-9]{32}-nixos-system-web-/);
        expect(system!.out).not.toBe(paths.toplevel);
    });

    it("finds the configuration's own toplevel when the image builder changes nothing in it", async () => {
        const { paths, system } = await of("web");
        expect(system).toEqual({ drv: paths.toplevelDrv, out: paths.toplevel });
    });

    it("is undefined for a prebuilt image (no derivation) and fails naming a derivation that is not in the store", async () => {
        expect(await imageSystem("")).toBeUndefined();
        const err = await imageSystem("/nix/store/00000000000000000000000000000000-absent.drv").catch((e) => e);
        expect(err.message).toMatch(/^evaluate on localhost failed: cannot read the build inputs of \/nix\/store\/0{32}-absent\.drv/);
    });
});
