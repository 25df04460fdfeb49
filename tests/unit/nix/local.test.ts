import { describe, expect, it } from "vitest";
import { runLocal } from "../../../provider/nix/local";

describe("runLocal", () => {
    it("reports the exit code of a command that exits without reading its stdin (EPIPE is not a crash)", async () => {
        // More than a pipe buffer, so the write is still pending when `true` exits.
        const r = await runLocal("sh", ["-c", "exit 3"], { stdin: "x".repeat(4 << 20) });
        expect(r.code).toBe(3);
    });

    it("gives a command no stdin at all unless asked", async () => {
        const r = await runLocal("sh", ["-c", "cat; echo done"]);
        expect(r).toEqual({ stdout: "done\n", stderr: "", code: 0 });
    });
});
