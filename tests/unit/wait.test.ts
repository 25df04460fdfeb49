import { describe, expect, it } from "vitest";
import { Deadline, poll } from "../../provider/wait";

describe("poll", () => {
    it("returns the first value an attempt yields, with the attempt number", async () => {
        const seen: number[] = [];
        const v = await poll(new Deadline(5), { intervalMs: 1 }, async (n) => (seen.push(n), n === 3 ? "third" : undefined));
        expect(v).toBe("third");
        expect(seen).toEqual([1, 2, 3]);
    });

    it("gives up at the deadline, even with long pauses between attempts", async () => {
        const d = new Deadline(0.2);
        let attempts = 0;
        const v = await poll(d, { intervalMs: 50, factor: 10 }, async () => void attempts++);
        expect(v).toBeUndefined();
        expect(d.passed).toBe(true);
        expect(attempts).toBeGreaterThanOrEqual(2);
    });

    it("gives up after its attempts, before the deadline", async () => {
        let attempts = 0;
        const v = await poll(new Deadline(60), { intervalMs: 1, attempts: 3 }, async () => void attempts++);
        expect(v).toBeUndefined();
        expect(attempts).toBe(3);
    });

    it("ends the wait when an attempt throws", async () => {
        await expect(poll(new Deadline(60), { intervalMs: 1 }, async () => Promise.reject(new Error("final")))).rejects.toThrow("final");
    });
});

describe("Deadline", () => {
    it("gives a nested wait at least one whole second", () => {
        const d = new Deadline(0);
        expect(d.passed).toBe(true);
        expect(d.leftMs).toBe(0);
        expect(d.leftS).toBe(1);
        expect(new Deadline(90).leftS).toBe(90);
    });
});

describe("poll and its deadline", () => {
    it("starts no attempt once the deadline has passed during a pause", async () => {
        let attempts = 0;
        // The pause (1 s) is cut short at the deadline (50 ms); no attempt follows it.
        const v = await poll(new Deadline(0.05), { intervalMs: 1000 }, async () => void attempts++);
        expect(v).toBeUndefined();
        expect(attempts).toBe(1);
    });
});
