import { describe, expect, it } from "vitest";
import { Semaphore } from "../../../provider/nix/limit";

describe("Semaphore", () => {
    it("hands a freed slot to the waiter first: never more than its limit", async () => {
        const sem = new Semaphore(1);
        let running = 0;
        let peak = 0;
        const task = (hold: Promise<void>) => async () => {
            running++;
            peak = Math.max(peak, running);
            await hold;
            running--;
        };
        let releaseA!: () => void;
        const a = sem.run(task(new Promise<void>((r) => (releaseA = r))));
        const b = sem.run(task(Promise.resolve()));
        await Promise.resolve();
        // A ends; in the same turn, before B wakes, C asks for the slot.
        releaseA();
        await a;
        const c = sem.run(task(Promise.resolve()));
        await Promise.all([b, c]);
        expect(peak).toBe(1);
    });

    it("runs up to its limit at once", async () => {
        const sem = new Semaphore(3);
        let running = 0;
        let peak = 0;
        await Promise.all(
            Array.from({ length: 8 }, () =>
                sem.run(async () => {
                    running++;
                    peak = Math.max(peak, running);
                    await new Promise((r) => setImmediate(r));
                    running--;
                }),
            ),
        );
        expect(peak).toBe(3);
    });
});
