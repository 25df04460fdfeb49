/**
 * Going back to an earlier configuration, as the Brightbox guide's `nixos-rebuild switch
 * --rollback` does: the generation that holds it is re-activated; nothing is built, copied or
 * added to the profile, and `generation` says which generation runs.
 */
import { beforeAll, describe, expect, it } from "vitest";
import * as hooks from "../../../provider/resources/rebuild";
import type { Host } from "../../testbed/host";
import { installFixture } from "../../testbed/install";
import { fixtureCopy } from "../../testbed/nix";
import { hostsForThisFile } from "../../testbed/per-file";
import { clientKey } from "../../testbed/state";

const createHost = hostsForThisFile();
let dir: string;
beforeAll(() => {
    dir = fixtureCopy();
});

async function checked(h: Host, olds: Record<string, unknown>, news: Record<string, unknown>) {
    const r = await hooks.check(olds, { __nixosName: "web", connection: { host: h.address, privateKey: clientKey().privateKey, hostKey: h.hostKey }, confirmTimeout: 5, ...news });
    expect(r.failures ?? []).toEqual([]);
    return r.inputs!;
}
const flake = (name: string) => `path:${dir}/flake#${name}`;
const generations = async (h: Host) => (await h.execOk("ls /nix/var/nix/profiles | grep -c '^system-.*-link$'")).trim();

describe("NixosRebuild back to an earlier configuration", () => {
    it("re-activates the generation that holds it: no bytes of closure sent, no new generation, `generation` names it", async () => {
        const h = await createHost({ kind: "installer", disks: [128] });
        const web = await installFixture(h, dir, "web");
        let state = (await hooks.create(await checked(h, {}, { flake: flake("web") }))).outs;
        expect(state.generation).toBe(1);
        state = (await hooks.update("id", state, await checked(h, state, { flake: flake("web-bumped") }))).outs;
        expect(state.generation).toBe(2);
        const back = await checked(h, state, { flake: flake("web") });
        expect(back.packageChanges).toContain("hello: 2.12.2 → 2.12.1");
        const sent = h.sentBytes();
        state = (await hooks.update("id", state, back)).outs;
        // Commands, the unit script and the confirmation only: the closure is all on the machine.
        expect(h.sentBytes() - sent).toBeLessThan(64 * 1024);
        expect(state.generation).toBe(1);
        expect(state.currentSystem).toBe(web);
        expect(await generations(h)).toBe("2");
        expect((await h.execOk("readlink /nix/var/nix/profiles/system")).trim()).toBe("system-1-link");
        expect((await h.execOk("readlink /run/current-system")).trim()).toBe(web);
    });

    it("a failed return to an earlier generation restores the profile and keeps that generation", async () => {
        const h = await createHost({ kind: "installer", disks: [128] });
        await installFixture(h, dir, "web-bumped");
        let state = (await hooks.create(await checked(h, {}, { flake: flake("web-bumped") }))).outs;
        state = (await hooks.update("id", state, await checked(h, state, { flake: flake("web") }))).outs;
        expect(state.generation).toBe(2);
        // Back to generation 1 (web-bumped), whose health check fails here.
        const back = await checked(h, state, { flake: flake("web-bumped"), healthChecks: [{ command: "false" }] });
        const err = await hooks.update("id", state, back).catch((e) => e);
        expect(err.message).toMatch(/health check `false` exited 1.*rolled back to/s);
        expect((await h.execOk("readlink /nix/var/nix/profiles/system")).trim()).toBe("system-2-link");
        expect(await generations(h)).toBe("2");
    });
});
