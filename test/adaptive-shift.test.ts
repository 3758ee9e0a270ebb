/**
 * The second goal of issue 23: when the capacity halves or doubles in the middle of a batch,
 * the limit follows it, so that over the batch's last third the throughput is at least 85%
 * of the best fixed concurrency's for the new capacity. In virtual time, through the real
 * `Pipeline` (see adaptive-convergence.test.ts).
 */
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { adaptiveOnShift, SHIFTS } from "./support/simulator-figures.js";

beforeEach(() => {
  vi.useFakeTimers();
});

afterEach(() => {
  vi.useRealTimers();
});

const advance = (ms: number): Promise<unknown> => vi.advanceTimersByTimeAsync(ms);

/** Generous for a busy 2-core machine: each case takes a few seconds on an idle one. */
const TIMEOUT = 60_000;

describe.each(SHIFTS)("when the capacity goes from %i to %i mid-batch", (from, to) => {
  it(
    "reaches ≥ 85% of the best fixed concurrency's throughput for the new capacity over the last third",
    async () => {
      const { best, result, controller } = await adaptiveOnShift(from, to, advance);
      const report = `${from} → ${to}: best fixed ${best.concurrency}, last third ${(100 * result.lastThirdRatio).toFixed(1)}% of it, limit at the end ${controller.limit}`;
      expect(result.lastThirdRatio, report).toBeGreaterThanOrEqual(0.85);
      expect(result.figures.failed).toBe(0);
    },
    TIMEOUT,
  );
});

describe.each([
  [20, 10],
  [50, 100],
] as const)("as perKey.concurrency, when the capacity goes from %i to %i mid-batch", (from, to) => {
  it(
    "follows it as well (the service's one key)",
    async () => {
      const { best, result, controller } = await adaptiveOnShift(from, to, advance, true);
      const report = `${from} → ${to}, per key: best fixed ${best.concurrency}, last third ${(100 * result.lastThirdRatio).toFixed(1)}% of it, limit at the end ${controller.limitFor("service")}`;
      expect(result.lastThirdRatio, report).toBeGreaterThanOrEqual(0.85);
      expect(result.figures.failed).toBe(0);
    },
    TIMEOUT,
  );
});
