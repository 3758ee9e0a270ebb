import { defineConfig } from "vitest/config";

/**
 * The stress and soak suite: `npm run test:stress`, not part of `npm test`. Sizes come from
 * the environment (`STRESS_ITEMS`, default 1,000,000).
 *
 * The tests run in a forked child process (`pool: "forks"`), and `execArgv` gives that process,
 * the one that runs the library, `--expose-gc` (to measure the heap after a full collection)
 * and `--unhandled-rejections=strict` (an unhandled rejection fails the run). The suite checks
 * that both flags really are in effect.
 */
export default defineConfig({
  test: {
    include: ["test/stress/**/*.stress.ts"],
    pool: "forks",
    execArgv: ["--expose-gc", "--unhandled-rejections=strict"],
    fileParallelism: false,
    maxWorkers: 1,
    isolate: true,
    testTimeout: 600_000,
    hookTimeout: 60_000,
    reporters: ["verbose"],
  },
});
