/**
 * The goal of issue 23 against a service whose capacity the batch is not told (the simulator,
 * test/support/simulator.ts): for C from 4 to 400, with no setting changed, the adaptive limit
 * reaches at least 90% of the steady throughput of the best fixed concurrency for that C (found
 * by a sweep of the real `Pipeline` here), with at most 2% of the steady state's attempts
 * answered 429. All in virtual time: deterministic, and a few seconds per capacity.
 *
 * Until the pool takes a dynamic limit (phase B), the adaptive batches run through the batch
 * driver of test/support/simulator-batch.ts, which behaves as the pool must; the first test
 * checks that, at a fixed concurrency, it gives the real `Pipeline`'s figures.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { adaptiveConcurrency } from "../src/index.js";
import { gaugeOf } from "../src/internal/limits.js";
import { driveBatch, fixedGauge, measure, pipelineBatch } from "./support/simulator-batch.js";
import {
  bestFixed,
  CAPACITIES,
  runAlgorithm,
  steadyScenario,
} from "./support/simulator-figures.js";

beforeEach(() => {
  vi.useFakeTimers();
});

afterEach(() => {
  vi.useRealTimers();
});

const advance = (ms: number): Promise<unknown> => vi.advanceTimersByTimeAsync(ms);

/** Generous for a busy 2-core machine: each capacity takes well under 5 s on an idle one. */
const TIMEOUT = 60_000;

describe("the batch driver", () => {
  it.each([
    [10, 8],
    [10, 12],
    [100, 100],
  ])("gives the real Pipeline's figures at capacity %i, concurrency %i", async (C, k) => {
    const scenario = steadyScenario(C);
    const pipeline = await measure(scenario, (s, n, r) => pipelineBatch(s, k, n, r), advance);
    const driver = await measure(
      scenario,
      (s, n, r) => driveBatch(s, fixedGauge(k), n, r),
      advance,
    );
    // Equal but for the order of events due at the same ms (the stage's retry waits are timers
    // of their own, the driver's share the service's queue): within 1%.
    expect(driver.steady / pipeline.steady).toBeCloseTo(1, 2);
    expect(driver.stats.attempts / pipeline.stats.attempts).toBeCloseTo(1, 2);
    expect(driver.stats.rejected).toBeLessThanOrEqual(pipeline.stats.rejected * 1.1 + 1);
    expect(driver.stats.peak).toBe(pipeline.stats.peak);
  });
});

describe.each(CAPACITIES)("against a capacity of %i", (C) => {
  it(
    "reaches ≥ 90% of the best fixed concurrency's throughput, ≤ 2% of attempts answered 429",
    async () => {
      const scenario = steadyScenario(C);
      const best = await bestFixed(scenario, advance);
      const limits: number[] = [];
      const controller = adaptiveConcurrency({
        onChange: (limit) => {
          limits.push(limit);
        },
      });
      const result = await runAlgorithm(
        scenario,
        controller[gaugeOf](false, undefined),
        best,
        advance,
      );
      const report = `C ${C}: best fixed ${best.concurrency}, throughput ${(100 * result.steadyRatio).toFixed(1)}% of it, 429s ${(100 * result.figures.steadyRejectedShare).toFixed(2)}% (whole batch ${(100 * result.figures.rejectedShare).toFixed(2)}%)`;
      expect(result.steadyRatio, report).toBeGreaterThanOrEqual(0.9);
      expect(result.figures.steadyRejectedShare, report).toBeLessThanOrEqual(0.02);
      expect(result.figures.failed).toBe(0);
      expect(Math.min(...limits)).toBeGreaterThanOrEqual(1);
      expect(Math.max(...limits)).toBeLessThanOrEqual(1_000);
      // The controller sets no timer, and the batch leaves none.
      expect(vi.getTimerCount()).toBe(0);
    },
    TIMEOUT,
  );
});
