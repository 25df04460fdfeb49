import * as net from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as rebuild from "../../../provider/resources/rebuild";

// A listener that records every connection: storing a new connection must not dial anything.
let server: net.Server;
let connections = 0;
let port = 0;
beforeAll(async () => {
    server = net.createServer((s) => {
        connections++;
        s.destroy();
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    port = (server.address() as net.AddressInfo).port;
});
afterAll(() => server.close());

const toplevel = "/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-nixos-system-web";
const deployed = () => ({ connection: { host: "127.0.0.1", port, privateKey: "old-key" }, toplevel, action: "switch", magicRollback: true, confirmTimeout: 30, generation: 7, currentSystem: toplevel, hostKey: "ssh-ed25519 AAAA" });

describe("NixosRebuild diff and update", () => {
    it("stores a rotated key without deploying: update connects to nothing and keeps the outputs", async () => {
        const olds = deployed();
        const news = { ...olds, connection: { ...olds.connection, privateKey: "new-key" } };
        expect(await rebuild.diff("id", olds, news)).toEqual({ changes: true, replaces: [] });
        const { outs } = await rebuild.update("id", olds, news);
        expect(connections).toBe(0);
        expect(outs.connection.privateKey).toBe("new-key");
        expect(outs).toMatchObject({ generation: 7, currentSystem: toplevel, hostKey: "ssh-ed25519 AAAA" });
    });

    it("replaces the resource when the host changes, and deploys when the system changes", async () => {
        const olds = deployed();
        expect(await rebuild.diff("id", olds, { ...olds, connection: { ...olds.connection, host: "10.0.0.9" } })).toEqual({ changes: true, replaces: ["connection"] });
        expect(await rebuild.diff("id", olds, { ...olds, toplevel: toplevel + "-2" })).toEqual({ changes: true, replaces: [] });
        expect(await rebuild.diff("id", olds, { ...olds })).toEqual({ changes: false, replaces: [] });
    });
});
