/**
 * The goal of issue 23 against a service whose capacity the batch is not told (the simulator,
 * test/support/simulator.ts): for C from 4 to 400, with no setting changed, the adaptive limit
 * reaches at least 90% of the steady throughput of the best fixed concurrency for that C (found
 * by a sweep of the real `Pipeline` here), with at most 2% of the steady state's attempts
 * answered 429. All in virtual time: deterministic, and a few seconds per capacity.
 *
 * The adaptive batches are real ones: `new Pipeline([stage]).mapSettled(items, { concurrency:
 * controller })`. The batch driver of test/support/simulator-batch.ts runs the algorithms the
 * guide compares `adaptiveConcurrency` with; the first tests check that it gives the real
 * pool's figures, at a fixed concurrency and with `adaptiveConcurrency`.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { adaptiveConcurrency } from "../src/index.js";
import { gaugeOf } from "../src/internal/limits.js";
import { driveBatch, fixedGauge, measure, pipelineBatch } from "./support/simulator-batch.js";
import {
  bestFixed,
  CAPACITIES,
  runAdaptive,
  steadyScenario,
  type BestFixed,
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

  it.each([4, 25, 100])(
    "gives the real pool's figures with adaptiveConcurrency at capacity %i",
    async (C) => {
      const scenario = steadyScenario(C);
      const limits = { pool: [] as number[], driver: [] as number[] };
      const pool = await measure(
        scenario,
        (s, n, r) =>
          pipelineBatch(s, adaptiveConcurrency({ onChange: (l) => limits.pool.push(l) }), n, r),
        advance,
      );
      const gauge = adaptiveConcurrency({ onChange: (l) => limits.driver.push(l) })[gaugeOf](
        false,
        undefined,
      );
      const driver = await measure(scenario, (s, n, r) => driveBatch(s, gauge, n, r), advance);
      // The same decisions, and within 1% on every figure (the order of events due at the same
      // ms aside).
      expect(limits.pool.length).toBeGreaterThan(3);
      expect(limits.pool.slice(0, 20)).toEqual(limits.driver.slice(0, 20));
      expect(pool.steady / driver.steady).toBeCloseTo(1, 2);
      expect(pool.stats.attempts / driver.stats.attempts).toBeCloseTo(1, 2);
      expect(pool.stats.rejected).toBeLessThanOrEqual(driver.stats.rejected * 1.1 + 1);
      expect(pool.stats.peak).toBe(driver.stats.peak);
    },
    TIMEOUT,
  );
});

/** The sweep's result per capacity, found once for the tests of both forms. */
const bests = new Map<number, BestFixed>();

async function bestFor(C: number): Promise<BestFixed> {
  let best = bests.get(C);
  if (best === undefined) {
    best = await bestFixed(steadyScenario(C), advance);
    bests.set(C, best);
  }
  return best;
}

describe.each(CAPACITIES)("against a capacity of %i", (C) => {
  it(
    "reaches ≥ 90% of the best fixed concurrency's throughput, ≤ 2% of attempts answered 429",
    async () => {
      const scenario = steadyScenario(C);
      const best = await bestFor(C);
      const limits: number[] = [];
      const controller = adaptiveConcurrency({
        onChange: (limit) => {
          limits.push(limit);
        },
      });
      const result = await runAdaptive(scenario, controller, best, advance);
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

  it(
    "does as well as perKey.concurrency, the service's one key",
    async () => {
      const best = await bestFor(C);
      const keys = new Set<unknown>();
      const controller = adaptiveConcurrency({
        onChange: (_limit, key) => {
          keys.add(key);
        },
      });
      const result = await runAdaptive(steadyScenario(C), controller, best, advance, true);
      const report = `C ${C}, per key: best fixed ${best.concurrency}, throughput ${(100 * result.steadyRatio).toFixed(1)}% of it, 429s ${(100 * result.figures.steadyRejectedShare).toFixed(2)}%`;
      expect(result.steadyRatio, report).toBeGreaterThanOrEqual(0.9);
      expect(result.figures.steadyRejectedShare, report).toBeLessThanOrEqual(0.02);
      expect(result.figures.failed).toBe(0);
      expect([...keys]).toEqual(["service"]);
      expect(controller.limitFor("service")).toBeGreaterThan(1);
      expect(vi.getTimerCount()).toBe(0);
    },
    TIMEOUT,
  );
});
