import { defineConfig } from "vitest/config";

export default defineConfig({
    test: {
        include: ["tests/**/*.test.ts"],
        globalSetup: ["tests/global-setup.ts"],
        setupFiles: ["tests/setup-env.ts"],
        // Test hosts boot real sshd and real Nix runs in them: give them room on a 2-core machine.
        testTimeout: 120_000,
        hookTimeout: 120_000,
        pool: "forks",
        poolOptions: { forks: { maxForks: 2, minForks: 1 } },
        reporters: ["default"],
    },
});
