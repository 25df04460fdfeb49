/**
 * The codec choice against in-process SSH peers that play the target's `cat` (the link probe):
 * a short probe is within a loaded machine's scheduling noise, so a choice to compress that
 * rests on it is confirmed with a larger probe; a slow link needs no second probe.
 */
import { randomBytes } from "node:crypto";
import { afterAll, describe, expect, it } from "vitest";
import { chooseCodec } from "../../../provider/nix/compression";
import { Target } from "../../../provider/ssh/target";
import { Peer, sshPeer } from "../ssh/peer";

const peers: Peer[] = [];
afterAll(() => peers.forEach((p) => p.close()));

/** Closure-like data that zstd -1 shrinks to well under half: store paths with random hashes. */
const sample = Buffer.from(Array.from({ length: 40000 }, () => `/nix/store/${randomBytes(4).toString("hex")}-glibc-2.37/lib/libc.so.6\n`).join("")).subarray(0, 2 << 20);

/**
 * A target with zstd whose `cat` records how many bytes each probe carried (the first, empty one
 * times the round trip). The first probe that carries data exits `hiccupMs` late; `readPauseMs`
 * slows every read.
 */
async function probePeer(o: { hiccupMs?: number; readPauseMs?: number }): Promise<{ target: Target; probes: number[] }> {
    const probes: number[] = [];
    const p = await sshPeer("pw", (command, ch) => {
        const reply = (out: string) => {
            if (out) ch.write(out);
            ch.exit(0);
            ch.end();
        };
        if (command.includes("for c in zstd gzip")) return reply("zstd\n");
        if (!command.startsWith("cat")) return reply("");
        const i = probes.push(0) - 1;
        ch.on("data", (d: Buffer) => {
            probes[i] += d.length;
            if (!o.readPauseMs) return;
            ch.pause();
            setTimeout(() => ch.resume(), o.readPauseMs);
        });
        ch.on("end", () => setTimeout(() => reply(""), probes[i] > 0 && probes.findIndex((n) => n > 0) === i ? (o.hiccupMs ?? 0) : 0));
    });
    peers.push(p);
    return { target: new Target({ host: "127.0.0.1", port: p.port, password: "pw", hostKey: p.hostKey }), probes };
}

const linkRate = (why: string) => Number(/link ([\d.]+) MiB\/s/.exec(why)?.[1]);

describe("chooseCodec", () => {
    it("confirms a short probe that points to compression with an 8 MiB probe, and takes the faster rate", async () => {
        // A fast link whose first probe ends 50 ms late, as on a machine busy with other work.
        const { target, probes } = await probePeer({ hiccupMs: 50 });
        const choice = await chooseCodec(target, { phase: "copy", bytes: 64 << 20, sample });
        target.close();
        expect(probes).toEqual([0, 1 << 20, 8 << 20]);
        // The first probe alone said at most 1 MiB in 50 ms.
        expect(linkRate(choice.why)).toBeGreaterThan(20);
    });

    it("sends one probe over a slow link and compresses", async () => {
        // About 1 MiB/s: the probe takes about a second, well past scheduling noise.
        const { target, probes } = await probePeer({ readPauseMs: 30 });
        const choice = await chooseCodec(target, { phase: "copy", bytes: 64 << 20, sample });
        target.close();
        expect(probes).toEqual([0, 1 << 20]);
        expect(choice.codec?.name).toBe("zstd");
        expect(linkRate(choice.why)).toBeLessThan(5);
    });
});
