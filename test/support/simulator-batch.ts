/**
 * Batches against the simulated service (simulator.ts), measured the same way whoever drives
 * them:
 *
 * - {@link pipelineBatch}: the real `Pipeline` and `Stage` (with those retries), at a fixed
 *   concurrency (the best fixed concurrency's figures) or an `adaptiveConcurrency(...)`.
 * - {@link driveBatch}: a minimal batch driver that behaves like the pool given a
 *   {@link LimitGauge}, as src/internal/limits.ts says the pool must: it starts items while
 *   `gauge.inFlight` (every batch's) is below `gauge.limit`, waits with `gauge.wait` when
 *   blocked, tells the gauge when each item starts and finishes, retries a failed attempt as
 *   a stage with `retries` and an exponential backoff would (the item keeps its place while it
 *   waits), and reports each failed attempt with `gauge.attemptFailed`. It runs the algorithms
 *   `adaptiveConcurrency` is compared with (simulator-candidates.ts), which are gauges and
 *   nothing more; a test checks that it gives the real pool's figures.
 *
 * No vitest import: the bench drives these on its own virtual clock.
 */
import { Pipeline, Stage, type AdaptiveConcurrency } from "../../src/index.js";
import type { LimitGauge } from "../../src/internal/limits.js";
import {
  countWithin,
  SimulatedService,
  throughput,
  type ServiceOptions,
  type ServiceStats,
} from "./simulator.js";

/** How a failed attempt is retried: the `Stage` options of the same names. */
export interface RetrySettings {
  readonly retries: number;
  readonly retryDelay: number;
  readonly backoff: "fixed" | "exponential";
  readonly maxRetryDelay: number;
}

/** What the simulations use: a 429 is retried after 100, 200, 400, 800, 1,600, 1,600… ms. */
export const RETRY: RetrySettings = Object.freeze({
  retries: 20,
  retryDelay: 100,
  backoff: "exponential",
  maxRetryDelay: 1_600,
});

function retryDelay(retry: RetrySettings, failure: number): number {
  const wait =
    retry.backoff === "exponential" ? retry.retryDelay * 2 ** (failure - 1) : retry.retryDelay;
  return Math.min(wait, retry.maxRetryDelay);
}

/**
 * A limit algorithm that wants each attempt's latency, as the Netflix limits are written:
 * the driver times every attempt for it and calls `sample` when the attempt ends (`dropped`
 * for a 429), with the attempts in flight then.
 */
export interface SampledGauge extends LimitGauge {
  sample(latency: number, inFlight: number, dropped: boolean): void;
}

function isSampled(gauge: LimitGauge): gauge is SampledGauge {
  return typeof (gauge as Partial<SampledGauge>).sample === "function";
}

/**
 * What every gauge of the test support shares: the count of items in flight and the batches
 * waiting for a place, as `adaptiveConcurrency`'s gauges keep them; `limit` is the subclass's.
 */
export abstract class CountingGauge implements LimitGauge {
  abstract readonly limit: number;
  inFlight = 0;
  readonly #waiters: (() => void)[] = [];

  started(): void {
    this.inFlight++;
  }

  finished(): void {
    this.inFlight--;
    for (let count = this.#waiters.length; count > 0 && this.inFlight < this.limit; count--) {
      (this.#waiters.shift() as () => void)();
    }
  }

  /** `finished()` then `started()` when there is room and nobody waits: a count unchanged. */
  keep(): boolean {
    if (this.#waiters.length === 0 && this.inFlight <= this.limit) return true;
    this.finished();
    return false;
  }

  giveBack(): void {
    this.finished();
  }

  attemptFailed(): void {}
  release(): void {}

  wait(wake: () => void): void {
    this.#waiters.push(wake);
  }

  cancelWait(wake: () => void): void {
    const index = this.#waiters.indexOf(wake);
    if (index >= 0) this.#waiters.splice(index, 1);
  }
}

class FixedGauge extends CountingGauge {
  constructor(readonly limit: number) {
    super();
  }
}

/** A gauge of a fixed limit: the driver as a plain pool. */
export function fixedGauge(limit: number): LimitGauge {
  return new FixedGauge(limit);
}

/** How a batch ended: the items that failed every attempt. */
export interface BatchOutcome {
  readonly failed: number;
}

/**
 * Runs `items` items, each one request to `service` (retried per `retry`), under `gauge`, as
 * the pool would: see the module comment. Resolves when every item has settled.
 */
export function driveBatch(
  service: SimulatedService,
  gauge: LimitGauge,
  items: number,
  retry: RetrySettings = RETRY,
): Promise<BatchOutcome> {
  const sampled = isSampled(gauge) ? gauge : undefined;
  let attemptsInFlight = 0;
  let next = 0;
  let settled = 0;
  let failed = 0;
  const attempt = (): Promise<void> => {
    if (sampled === undefined) return service.call();
    const start = performance.now();
    attemptsInFlight++;
    return service.call().then(
      () => {
        sampled.sample(performance.now() - start, attemptsInFlight--, false);
      },
      (error: unknown) => {
        sampled.sample(performance.now() - start, attemptsInFlight--, true);
        throw error;
      },
    );
  };
  const runItem = async (): Promise<void> => {
    for (let number = 1; ; number++) {
      try {
        await attempt();
        return;
      } catch (error) {
        gauge.attemptFailed(error, undefined);
        if (number > retry.retries) {
          failed++;
          return;
        }
        const wait = retryDelay(retry, number);
        await new Promise<void>((resolve) => {
          service.queue.after(wait, resolve);
        });
      }
    }
  };
  return new Promise<BatchOutcome>((resolve) => {
    let waiting = false;
    const wake = (): void => {
      waiting = false;
      fill();
    };
    const fill = (): void => {
      while (next < items && gauge.inFlight < gauge.limit) {
        next++;
        gauge.started();
        void runItem().then(finish);
      }
      // Blocked by other batches' items (or by its own): woken when a place frees.
      if (next < items && !waiting) {
        waiting = true;
        gauge.wait(wake);
      }
    };
    const finish = (): void => {
      gauge.finished();
      if (++settled === items) {
        if (waiting) gauge.cancelWait(wake);
        gauge.release();
        resolve({ failed });
        return;
      }
      fill();
    };
    fill();
  });
}

/**
 * Runs `items` items through the real `Pipeline` (`mapSettled`) at `concurrency`: a fixed one,
 * or an `adaptiveConcurrency(...)`. `keyed`: the limit is given as `perKey.concurrency`
 * instead (every item of one key, the service's; the batch's own `concurrency` unbounded).
 */
export async function pipelineBatch(
  service: SimulatedService,
  concurrency: number | AdaptiveConcurrency,
  items: number,
  retry: RetrySettings = RETRY,
  keyed = false,
): Promise<BatchOutcome> {
  const stage = new Stage("call", () => service.call(), { ...retry });
  const inputs = Array.from({ length: items }, (_, index) => index);
  const settled = await new Pipeline([stage]).mapSettled(
    inputs,
    keyed
      ? { concurrency: Infinity, perKey: { key: () => "service", concurrency } }
      : { concurrency },
  );
  return { failed: settled.filter((entry) => entry.status === "rejected").length };
}

/** Advances virtual time: `vi.advanceTimersByTimeAsync`, or the bench's virtual clock. */
export type Advance = (ms: number) => Promise<unknown>;

/** Advances virtual time until `promise` settles; its outcome. */
export async function runToEnd<T>(promise: Promise<T>, advance: Advance): Promise<T> {
  let done = false;
  const settled = promise.finally(() => {
    done = true;
  });
  while (!done) await advance(60_000);
  return settled;
}

/** The figures of one simulated batch. */
export interface BatchFigures {
  /** Items per second from a third of the successes to the last 2% (the steady state). */
  readonly steady: number;
  /** Items per second over the last third of the successes (but the last 2%). */
  readonly lastThird: number;
  /** Attempts answered 429, over all attempts. */
  readonly rejectedShare: number;
  /** Attempts answered 429 over all attempts, among those made in the steady state. */
  readonly steadyRejectedShare: number;
  /** Items that failed every attempt. */
  readonly failed: number;
  readonly stats: ServiceStats;
  /** The virtual time the batch started at. */
  readonly start: number;
  /** Virtual ms the batch took. */
  readonly duration: number;
}

/** One simulated batch: the service, and how many items. */
export interface Scenario {
  readonly service: ServiceOptions;
  readonly items: number;
  readonly retry?: RetrySettings;
}

/** Runs `drive` against a fresh service for `scenario` and measures the batch. */
export async function measure(
  scenario: Scenario,
  drive: (service: SimulatedService, items: number, retry: RetrySettings) => Promise<BatchOutcome>,
  advance: Advance,
): Promise<BatchFigures> {
  const service = new SimulatedService(scenario.service);
  const start = performance.now();
  const outcome = await runToEnd(drive(service, scenario.items, scenario.retry ?? RETRY), advance);
  const duration = performance.now() - start;
  const { stats } = service;
  const successes = stats.completions.length;
  const first = Math.ceil(successes / 3);
  const end = Math.floor(successes * 0.98);
  const from = stats.completions[first - 1] as number;
  const to = stats.completions[end - 1] as number;
  return {
    steady: 1000 * throughput(stats.completions, first, end),
    lastThird: 1000 * throughput(stats.completions, Math.ceil((successes * 2) / 3), end),
    rejectedShare: stats.rejected / stats.attempts,
    steadyRejectedShare:
      countWithin(stats.rejectionTimes, from, to) / countWithin(stats.attemptTimes, from, to),
    failed: outcome.failed,
    stats,
    start,
    duration,
  };
}

/**
 * The virtual ms from the start until the throughput over a sliding window of `window`
 * completions first reaches `goal` items per second (NaN if it never does): how long the
 * batch took to converge.
 */
export function convergence(
  completions: readonly number[],
  start: number,
  goal: number,
  window: number,
): number {
  for (let index = window; index < completions.length; index++) {
    const rate =
      (1000 * window) / ((completions[index] as number) - (completions[index - window] as number));
    if (rate >= goal) return (completions[index] as number) - start;
  }
  return Number.NaN;
}
