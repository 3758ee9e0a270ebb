import { defineConfig } from "vitest/config";
import { uncoverableFiles } from "./scripts/uncoverable-files.js";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    exclude: ["test/stress/**"],
    // One real redis-server for the BullMQ tests (test/bullmq/), stopped afterwards.
    globalSetup: ["test/bullmq/global-setup.ts"],
    typecheck: {
      enabled: true,
      include: ["test/**/*.test-d.ts"],
      tsconfig: "./tsconfig.json",
    },
    coverage: {
      provider: "v8",
      include: ["src/**/*.ts"],
      // Files of types only (src/types.ts, …) and barrels of re-exports (src/index.ts, …) hold
      // no statement: nothing to cover, and they would be listed at 0%.
      exclude: uncoverableFiles("src"),
      reporter: ["text", "text-summary"],
      thresholds: { lines: 95, branches: 95, functions: 95, statements: 95 },
    },
  },
});
