/**
 * The experiments behind docs/adaptive-concurrency.md and the adaptive-concurrency tests,
 * one definition for both: the capacities, the batch sizes, the sweep that finds the best
 * fixed concurrency, and a run of `adaptiveConcurrency` through the real `Pipeline` (or of
 * another limit algorithm through the batch driver). The tests assert on these figures;
 * `bench/adaptive-simulation.ts` and the bench's `adaptive` case print them as the guide's
 * tables.
 */
import { adaptiveConcurrency, type AdaptiveConcurrency } from "../../src/index.js";
import type { LimitGauge } from "../../src/internal/limits.js";
import { curves, type LatencyCurve } from "./simulator.js";
import {
  convergence,
  driveBatch,
  measure,
  pipelineBatch,
  type Advance,
  type BatchFigures,
  type Scenario,
} from "./simulator-batch.js";

/** The capacities the goals are checked for: 4 to 400. */
export const CAPACITIES = [4, 10, 25, 50, 100, 200, 400] as const;

/** Capacity changes in the middle of a batch: halved, or doubled. */
export const SHIFTS = [
  [4, 8],
  [8, 4],
  [20, 10],
  [10, 20],
  [100, 50],
  [50, 100],
  [400, 200],
  [200, 400],
] as const;

/** The seed of the service's jitter in the figures. */
export const SEED = 7;

/**
 * A batch of 60 round trips' worth of items at capacity `capacity` (at least 600 items): the
 * steady state, from a third of the batch on, spans about 40 round trips.
 */
export function steadyScenario(
  capacity: number,
  curve: LatencyCurve = curves.quadratic,
  seed = SEED,
): Scenario {
  return { service: { capacity, curve, seed }, items: Math.max(60 * capacity, 600) };
}

/**
 * A batch of 90 round trips' worth of items at the larger capacity, whose capacity changes
 * from `from` to `to` when half the items have succeeded.
 */
export function shiftScenario(from: number, to: number, seed = SEED): Scenario {
  const items = 90 * Math.max(from, to, 10);
  return { service: { capacity: from, seed, shift: { after: items / 2, capacity: to } }, items };
}

/** The fixed concurrencies the sweep tries, as multiples of the capacity. */
const SWEEP = [0.7, 0.8, 0.9, 1, 1.1, 1.25];

/** The best fixed concurrency for a scenario, by steady throughput, and the sweep's figures. */
export interface BestFixed {
  readonly concurrency: number;
  readonly figures: BatchFigures;
  readonly sweep: readonly { readonly concurrency: number; readonly steady: number }[];
}

/**
 * Runs the real `Pipeline` at fixed concurrencies around the capacity (70% of it to a quarter
 * more) on `scenario`'s service (a changing capacity left out: the new one from the start),
 * and keeps the one with the highest steady throughput. A fixed concurrency has no ramp to
 * leave out, so its batches are half as long (30 round trips' worth, at least 600 items).
 */
export async function bestFixed(scenario: Scenario, advance: Advance): Promise<BestFixed> {
  const { shift, ...service } = scenario.service;
  const capacity = shift?.capacity ?? service.capacity;
  const fixed: Scenario = {
    ...scenario,
    items: Math.max(30 * capacity, 600),
    service: { ...service, capacity },
  };
  const tried = new Set<number>();
  const sweep: { concurrency: number; steady: number }[] = [];
  let best: { concurrency: number; figures: BatchFigures } | undefined;
  for (const factor of SWEEP) {
    const concurrency = Math.max(1, Math.round(capacity * factor));
    if (tried.has(concurrency)) continue;
    tried.add(concurrency);
    const figures = await measure(
      fixed,
      (simulated, items, retry) => pipelineBatch(simulated, concurrency, items, retry),
      advance,
    );
    sweep.push({ concurrency, steady: figures.steady });
    if (best === undefined || figures.steady > best.figures.steady) best = { concurrency, figures };
  }
  const found = best as { concurrency: number; figures: BatchFigures };
  return { ...found, sweep };
}

/** A limit algorithm's figures on a scenario, against the best fixed concurrency. */
export interface AlgorithmFigures {
  readonly figures: BatchFigures;
  /** Steady throughput ÷ the best fixed concurrency's. */
  readonly steadyRatio: number;
  /** Throughput over the last third ÷ the best fixed concurrency's steady throughput. */
  readonly lastThirdRatio: number;
  /**
   * Round trips (of the base latency, 100 ms) until the throughput over a sliding window of
   * two round trips' completions first reached 90% of the best fixed concurrency's.
   */
  readonly convergence: number;
}

/** Runs `gauge` through the batch driver on `scenario` and compares with `best`. */
export async function runAlgorithm(
  scenario: Scenario,
  gauge: LimitGauge,
  best: BestFixed,
  advance: Advance,
): Promise<AlgorithmFigures> {
  const figures = await measure(
    scenario,
    (simulated, items, retry) => driveBatch(simulated, gauge, items, retry),
    advance,
  );
  return compare(scenario, figures, best);
}

/**
 * Runs the real `Pipeline` on `scenario` with `controller` as its `concurrency` (`keyed`: as
 * its `perKey.concurrency`, see {@link pipelineBatch}) and compares with `best`.
 */
export async function runAdaptive(
  scenario: Scenario,
  controller: AdaptiveConcurrency,
  best: BestFixed,
  advance: Advance,
  keyed = false,
): Promise<AlgorithmFigures> {
  const figures = await measure(
    scenario,
    (simulated, items, retry) => pipelineBatch(simulated, controller, items, retry, keyed),
    advance,
  );
  return compare(scenario, figures, best);
}

/** A batch's figures against the best fixed concurrency's. */
function compare(scenario: Scenario, figures: BatchFigures, best: BestFixed): AlgorithmFigures {
  const reference = best.figures.steady;
  const window = Math.max(2 * scenario.service.capacity, 20);
  const base = scenario.service.baseLatency ?? 100;
  return {
    figures,
    steadyRatio: figures.steady / reference,
    lastThirdRatio: figures.lastThird / reference,
    convergence:
      convergence(figures.stats.completions, figures.start, 0.9 * reference, window) / base,
  };
}

/**
 * `adaptiveConcurrency()`'s figures on the capacity change `from` → `to`, and its controller
 * (`keyed`: as `perKey.concurrency`).
 */
export async function adaptiveOnShift(
  from: number,
  to: number,
  advance: Advance,
  keyed = false,
): Promise<{ best: BestFixed; result: AlgorithmFigures; controller: AdaptiveConcurrency }> {
  const scenario = shiftScenario(from, to);
  const best = await bestFixed(scenario, advance);
  const controller = adaptiveConcurrency();
  const result = await runAdaptive(scenario, controller, best, advance, keyed);
  return { best, result, controller };
}
