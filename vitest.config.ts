import { defineConfig } from "vitest/config";
import { typeOnlyFiles } from "./scripts/type-only-files.js";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    exclude: ["test/stress/**"],
    typecheck: {
      enabled: true,
      include: ["test/**/*.test-d.ts"],
      tsconfig: "./tsconfig.json",
    },
    coverage: {
      provider: "v8",
      include: ["src/**/*.ts"],
      // Files of types only (src/types.ts, src/chain.ts, …) emit no code: nothing to cover.
      exclude: typeOnlyFiles("src"),
      reporter: ["text", "text-summary"],
      thresholds: { lines: 95, branches: 95, functions: 95, statements: 95 },
    },
  },
});
