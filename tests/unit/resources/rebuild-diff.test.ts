import { describe, expect, it } from "vitest";
import * as rebuild from "../../../provider/resources/rebuild";
import { countingListener } from "./listener";

// Storing a new connection must not dial anything.
const listener = countingListener();

const toplevel = "/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-nixos-system-web";
const deployed = () => ({ connection: { host: "127.0.0.1", port: listener.port, privateKey: "old-key" }, toplevel, action: "switch", magicRollback: true, confirmTimeout: 30, generation: 7, currentSystem: toplevel, hostKey: "ssh-ed25519 AAAA" });

describe("NixosRebuild diff and update", () => {
    it("stores a rotated key without deploying: update connects to nothing and keeps the outputs", async () => {
        const olds = deployed();
        const news = { ...olds, connection: { ...olds.connection, privateKey: "new-key" } };
        expect(await rebuild.diff("id", olds, news)).toEqual({ changes: true, replaces: [] });
        const { outs } = await rebuild.update("id", olds, news);
        expect(listener.connections).toBe(0);
        expect((outs.connection as { privateKey?: string }).privateKey).toBe("new-key");
        expect(outs).toMatchObject({ generation: 7, currentSystem: toplevel, hostKey: "ssh-ed25519 AAAA" });
    });

    it("replaces the resource when the host changes, and deploys when the system changes", async () => {
        const olds = deployed();
        expect(await rebuild.diff("id", olds, { ...olds, connection: { ...olds.connection, host: "10.0.0.9" } })).toEqual({ changes: true, replaces: ["connection"] });
        expect(await rebuild.diff("id", olds, { ...olds, toplevel: toplevel + "-2" })).toEqual({ changes: true, replaces: [] });
        expect(await rebuild.diff("id", olds, { ...olds })).toEqual({ changes: false, replaces: [] });
    });
});

describe("NixosRebuild delete", () => {
    it("refuses onDelete rollback when no system was recorded, without connecting", async () => {
        const props = { ...deployed(), onDelete: "rollback" };
        const err = await rebuild.del("id", props).catch((e) => e);
        expect(err.message).toMatch(/^rollback on 127\.0\.0\.1 failed: no system was recorded before the first deploy, so there is nothing to roll back to/);
        expect(listener.connections).toBe(0);
    });
});
