/**
 * The algorithms `adaptiveConcurrency` was chosen against, written from the update rules that
 * Netflix's concurrency-limits library documents for its `AIMDLimit`, `VegasLimit` and
 * `Gradient2Limit` (with their default settings, but `min` 1, `max` 1,000 and a start at 1
 * like ours). Each takes one sample per attempt (its latency, the attempts in flight, and
 * whether it was dropped: a 429), as they are written to: the batch driver times every
 * attempt for them (simulator-batch.ts), a cost `adaptiveConcurrency` avoids. For the
 * comparison in docs/adaptive-concurrency.md only.
 */
import { CountingGauge, type SampledGauge } from "./simulator-batch.js";

const MIN = 1;
const MAX = 1_000;

function clamp(value: number): number {
  return Math.min(MAX, Math.max(MIN, value));
}

/** What every candidate shares: a real-valued estimate whose whole part is the limit. */
abstract class Candidate extends CountingGauge implements SampledGauge {
  limit = 20;
  protected estimate = 20;
  abstract sample(latency: number, inFlight: number, dropped: boolean): void;
  protected set(estimate: number): void {
    this.estimate = clamp(estimate);
    this.limit = Math.floor(this.estimate);
  }
}

/**
 * AIMD: one more per sample while at least half the limit is in flight, 10% less (at least
 * one less) on a drop.
 */
export class Aimd extends Candidate {
  sample(_latency: number, inFlight: number, dropped: boolean): void {
    if (dropped) this.set(Math.min(this.estimate - 1, Math.floor(this.estimate * 0.9)));
    else if (inFlight * 2 >= this.limit) this.set(this.estimate + 1);
  }
}

/** ⌊log10(limit)⌋, at least 1: the step of Vegas' defaults. */
function log10Step(limit: number): number {
  return Math.max(1, Math.floor(Math.log10(limit)));
}

/**
 * TCP Vegas: the queue the limit builds, `limit × (1 − no-load latency / latency)`, kept
 * between α = 3 and β = 6 steps (a step is ⌊log10 limit⌋ ≥ 1): up by β when it is at most
 * one step, up by a step below α, down by a step above β or on a drop. The no-load latency
 * is the lowest sample, measured again every 30 × limit samples or so.
 */
export class Vegas extends Candidate {
  #noLoad = 0;
  #probeIn = 0;
  #probeJitter = 0.75;

  sample(latency: number, inFlight: number, dropped: boolean): void {
    if (++this.#probeIn >= this.#probeJitter * 30 * this.limit) {
      this.#probeIn = 0;
      // A fixed sequence of jitters in [0.5, 1): deterministic, like everything here.
      this.#probeJitter = this.#probeJitter >= 0.95 ? 0.5 : this.#probeJitter + 0.05;
      this.#noLoad = latency;
      return;
    }
    if (this.#noLoad === 0 || latency < this.#noLoad) {
      this.#noLoad = latency;
      return;
    }
    const queue = Math.ceil(this.estimate * (1 - this.#noLoad / latency));
    const step = log10Step(this.limit);
    if (dropped) {
      this.set(this.estimate - step);
    } else if (inFlight * 2 < this.estimate) {
      return;
    } else if (queue <= step) {
      this.set(this.estimate + 6 * step);
    } else if (queue < 3 * step) {
      this.set(this.estimate + step);
    } else if (queue > 6 * step) {
      this.set(this.estimate - step);
    }
  }
}

/**
 * Gradient2: the ratio of a long-term average latency (600 samples) to the latest sample,
 * within [0.5, 1], times the limit, plus a queue of 4, smoothed by 0.2. A drop is only a
 * sample (its latency counts; the drop itself does not).
 */
export class Gradient2 extends Candidate {
  #long = 0;
  #count = 0;

  sample(latency: number, inFlight: number): void {
    // The long average: plain over the first 10 samples, exponential over 600 after.
    this.#count++;
    this.#long =
      this.#count <= 10
        ? this.#long + (latency - this.#long) / this.#count
        : this.#long * (1 - 2 / 601) + latency * (2 / 601);
    if (this.#long / latency > 2) this.#long *= 0.9;
    if (inFlight < this.estimate / 2) return;
    const gradient = Math.max(0.5, Math.min(1, this.#long / latency));
    const next = this.estimate * gradient + 4;
    this.set(this.estimate * 0.8 + next * 0.2);
  }
}

/**
 * Netflix's `WindowedLimit` around another candidate: samples are pooled for twice the
 * lowest latency in the window (within [100 ms, 1 s]: its defaults are [1 s, 1 s], for
 * services a hundred times faster than the simulated one) and at least 10 samples, then
 * handed on as one: their mean latency, the most attempts in flight, and whether any was
 * dropped.
 */
export class Windowed extends CountingGauge implements SampledGauge {
  readonly #inner: SampledGauge;
  #nextUpdate = 0;
  #count = 0;
  #sum = 0;
  #maxInFlight = 0;
  #dropped = false;
  #lowest = Infinity;

  constructor(inner: SampledGauge) {
    super();
    this.#inner = inner;
  }

  get limit(): number {
    return this.#inner.limit;
  }

  sample(latency: number, inFlight: number, dropped: boolean): void {
    this.#count++;
    this.#sum += latency;
    this.#maxInFlight = Math.max(this.#maxInFlight, inFlight);
    this.#dropped ||= dropped;
    this.#lowest = Math.min(this.#lowest, latency);
    const end = performance.now();
    if (end <= this.#nextUpdate) return;
    this.#nextUpdate = end + Math.min(Math.max(this.#lowest * 2, 100), 1_000);
    this.#lowest = Infinity;
    if (this.#count >= 10)
      this.#inner.sample(this.#sum / this.#count, this.#maxInFlight, this.#dropped);
    this.#count = 0;
    this.#sum = 0;
    this.#maxInFlight = 0;
    this.#dropped = false;
  }
}
