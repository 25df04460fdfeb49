import { describe, expect, it } from "vitest";
import { INSTALL_CARRIED, INSTALL_STEPS } from "../../../provider/resources/install-phases";
import { IMAGE_PHASES, INSTALL_PHASES } from "../../../provider/schema/install";
import { installRecordedSchema } from "../../../provider/schema/state";

describe("the install's step table", () => {
    it("runs build and facts, then the phases users name, in their order", () => {
        // The step table is method "nixos-install"'s; "write" belongs to installs by image (image-install.ts).
        expect(INSTALL_STEPS.map((s) => s.name)).toEqual(["build", "facts", ...INSTALL_PHASES.filter((p) => p !== "write")]);
        expect(INSTALL_PHASES.filter((p) => IMAGE_PHASES.includes(p as never))).toEqual([...IMAGE_PHASES]);
    });

    it("names, once each, every key the state records besides phasesCompleted, and carries them all", () => {
        const recorded = Object.keys(installRecordedSchema.shape).filter((k) => k !== "phasesCompleted");
        expect([...INSTALL_CARRIED].sort()).toEqual(recorded.sort());
        expect(new Set(INSTALL_CARRIED).size).toBe(INSTALL_CARRIED.length);
    });
});
