import { describe, expect, it } from "vitest";
import * as install from "../../../provider/resources/install";

const disko = (n: number) => `/nix/store/${String(n).repeat(32)}-disko-web`;
const base = { connection: { host: "203.0.113.10" }, flake: "./infra#web", toplevel: "/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-nixos-system-web", diskoScript: disko(1) };

describe("NixosInstall diff", () => {
    it("resumes an unfinished install with the default phases", async () => {
        const olds = { ...base, phasesCompleted: ["kexec", "disko"] };
        expect(await install.diff("id", olds, { ...base })).toMatchObject({ changes: true, replaces: [] });
    });

    it("has nothing to do for a finished install whose configuration changed: that is NixosRebuild's job", async () => {
        const olds = { ...base, phasesCompleted: ["kexec", "disko", "install", "reboot"] };
        expect(await install.diff("id", olds, { ...base, toplevel: base.toplevel.replace("web", "web2") })).toMatchObject({ changes: false });
    });

    it("replaces the install for another host, deleting first", async () => {
        const olds = { ...base, phasesCompleted: ["kexec", "disko", "install", "reboot"] };
        expect(await install.diff("id", olds, { ...base, connection: { host: "203.0.113.11" } })).toEqual({ changes: true, replaces: ["connection"], deleteBeforeReplace: true });
    });

    it("refuses a new disk layout on an installed machine unless reinstalling is allowed, naming the disks", async () => {
        const olds = { ...base, phasesCompleted: ["kexec", "disko", "install", "reboot"], disks: ["vda"] };
        await expect(install.diff("id", olds, { ...base, diskoScript: disko(2) })).rejects.toThrow(/disk layout changed.*reinstalling wipes \/dev\/vda/s);
        expect(await install.diff("id", olds, { ...base, diskoScript: disko(2), allowReinstall: true })).toMatchObject({ replaces: ["diskoScript"] });
    });
});
