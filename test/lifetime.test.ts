/**
 * Process lifetime, in child processes (test/fixtures/lifetime.ts): a finished pipeline lets
 * the process exit at once although 60 s timeouts and retry waits were configured, and a hung
 * handler under a timeout keeps the process alive until the timeout fires and is reported.
 * Children run with `--unhandled-rejections=strict`. Margins are wide: startup through tsx
 * takes about a second, more on a busy machine.
 */
import { describe, expect, it } from "vitest";
import { reports, runFixture, type ChildResult } from "./fixtures/child.js";

const CHILD_TIMEOUT = 30_000;

/** The `{ done }` and `{ exit }` reports of a child, after checking it ran and exited 0. */
function parse(result: ChildResult): {
  done: Record<string, unknown>;
  exit: Record<string, unknown>;
} {
  const lines = reports(result.stdout);
  const done = lines.find((line) => line.done === true);
  const exit = lines.find((line) => "exit" in line);
  expect(result.killed, `killed after ${String(CHILD_TIMEOUT)} ms: ${result.stdout}`).toBe(false);
  expect(result.stderr).toBe("");
  expect(done, result.stdout).toBeDefined();
  expect(exit, result.stdout).toBeDefined();
  return { done: done!, exit: exit! };
}

describe("lifetime: a finished pipeline lets the process exit at once", () => {
  it.concurrent.each([
    [
      "finished-run",
      "run with hooks, a caller signal, a 60 s timeout and 60 s retry waits",
      { output: 2 },
    ],
    [
      "finished-batches",
      "map, mapSettled and stream of 200 items with 60 s timeouts",
      { settled: 200, mapped: 180, streamed: 180 },
    ],
    [
      "finished-fail-fast",
      "map that fails fast while other items hang under 60 s timeouts",
      { name: "StageExecutionError", original: "Error" },
    ],
    [
      "finished-abort",
      "a run aborted while its handler hangs under a 60 s timeout",
      { message: "cancelled" },
    ],
    [
      "finished-abort-retry-wait",
      "a run aborted during a 60 s retry wait",
      { message: "cancelled" },
    ],
    [
      "finished-stream-break",
      "a stream left early while items hang under 60 s timeouts",
      { seen: 2 },
    ],
    ["finished-middleware", "map through timeoutMiddleware of 60 s", { outputs: [2, 3, 4] }],
  ] as const)(
    "%s: %s",
    async (scenario, _description, expected) => {
      const result = await runFixture("lifetime.ts", [scenario], CHILD_TIMEOUT);
      const { done, exit } = parse(result);
      expect(result.code).toBe(0);
      expect(exit.exit).toBe(0);
      expect(done).toMatchObject(expected);
      // Nothing keeps the process alive once the work is done: no timer, no handle.
      expect(exit.afterDone as number).toBeLessThan(1_000);
      expect(done.elapsed as number).toBeLessThan(5_000);
      expect(result.elapsed).toBeLessThan(20_000);
    },
    CHILD_TIMEOUT + 5_000,
  );
});

describe("lifetime: a hung handler under a timeout keeps the process alive and is reported", () => {
  it.concurrent.each([
    ["hung-run", { name: "StageExecutionError", original: "TimeoutError", attempts: 1 }, 300],
    ["hung-retries", { name: "StageExecutionError", original: "TimeoutError", attempts: 3 }, 900],
    [
      "hung-map-settled",
      { entries: 3, name: "StageExecutionError", original: "TimeoutError", attempts: 1 },
      300,
    ],
    ["hung-middleware", { name: "TimeoutError", original: "TimeoutError", attempts: null }, 300],
  ] as const)(
    "%s",
    async (scenario, expected, minimum) => {
      const result = await runFixture("lifetime.ts", [scenario], CHILD_TIMEOUT);
      const { done, exit } = parse(result);
      expect(result.code).toBe(0);
      expect(done).toMatchObject({ ...expected, timeout: 300 });
      // Not early: the pending timeout held the process until it fired...
      expect(done.elapsed as number).toBeGreaterThanOrEqual(minimum - 5);
      // ...and nothing held it after.
      expect(exit.afterDone as number).toBeLessThan(1_000);
    },
    CHILD_TIMEOUT + 5_000,
  );

  it(
    "exits with code 1 and the TimeoutError on stderr when the script does not catch",
    async () => {
      const result = await runFixture("lifetime.ts", ["hung-uncaught"], CHILD_TIMEOUT);
      expect(result.killed).toBe(false);
      // Not 13 (an unsettled top-level await: the process gave up early with nothing).
      expect(result.code).toBe(1);
      expect(result.stderr).toContain('StageExecutionError: Stage "hang" failed');
      expect(result.stderr).toContain("timed out after 300 ms");
      const exit = reports(result.stdout).find((line) => "exit" in line);
      expect(exit?.lifetime as number).toBeGreaterThanOrEqual(295);
    },
    CHILD_TIMEOUT + 5_000,
  );
});
