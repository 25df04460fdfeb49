import * as net from "node:net";
import { describe, expect, it } from "vitest";
import { firstAccept } from "../../../provider/ssh/port";
import { Deadline } from "../../../provider/wait";
import { closedPort } from "./peer";


describe("firstAccept", () => {
    it("returns a connected socket once a listener appears, and leaves no other attempt open", async () => {
        const port = await closedPort();
        const accepted: net.Socket[] = [];
        const server = net.createServer((c) => accepted.push(c));
        setTimeout(() => server.listen(port, "127.0.0.1"), 300);
        try {
            const sock = await firstAccept("127.0.0.1", port, new Deadline(5));
            expect(sock).toBeInstanceOf(net.Socket);
            const s = sock as net.Socket;
            // The socket carries data: it is the connection the server accepted.
            const got = new Promise<string>((r) => accepted[0].once("data", (d) => r(d.toString())));
            s.write("hello");
            expect(await got).toBe("hello");
            await new Promise((r) => setTimeout(r, 100));
            expect(accepted.filter((c) => !c.destroyed && c.readyState === "open")).toHaveLength(1);
            s.destroy();
        } finally {
            accepted.forEach((c) => c.destroy());
            server.close();
        }
    });

    it("returns the last attempt's error when nothing accepts before the deadline", async () => {
        const port = await closedPort();
        const t0 = Date.now();
        const r = await firstAccept("127.0.0.1", port, new Deadline(1));
        expect(r).toBeInstanceOf(Error);
        expect((r as Error).message).toMatch(/ECONNREFUSED/);
        expect(Date.now() - t0).toBeLessThan(3000);
    });
});
