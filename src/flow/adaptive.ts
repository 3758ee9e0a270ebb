import { BrokenCircuitError } from "../errors/BrokenCircuitError.js";
import { TimeoutError } from "../errors/TimeoutError.js";
import { now } from "../internal/clock.js";
import type { OptionKeys } from "../internal/known-keys.js";
import { gaugeOf, type LimitGauge } from "../internal/limits.js";
import { callIgnoringErrors } from "../internal/thenable.js";
import { Fifo } from "./fifo.js";
import { optionalFunction, optionsObject, positiveInteger, show } from "../internal/validate.js";

/*
 * The algorithm's constants, chosen with the simulator (test/support/simulator*.ts) and
 * explained, with its figures, in docs/adaptive-concurrency.md.
 */

/** The limit holds where the latency is this multiple of the baseline. */
const TARGET = 1.6;
/** No latency-driven change while the latency is within this factor of the target. */
const DEADBAND = 1.05;
/** The largest latency-driven growth in one window, as a factor. */
const MAX_GROWTH = 2;
/** The largest latency-driven cut in one window, as a factor. */
const MAX_CUT = 0.5;
/** The cut on an overload, as a factor. */
const BACKOFF = 0.7;
/** Completions in a window at least; below this limit the start is not measured. */
const MIN_WINDOW = 8;
/** Growth per window in the start, once measured. */
const START_GROWTH = 1.5;
/** The start ends once the latency passes this multiple of the baseline. */
const START_EXIT = 1.25;
/** A window whose mean in flight is below this share of the limit does not grow it. */
const BUSY = 0.9;
/** Completions pooled (over consecutive windows) into one candidate for the baseline. */
const BLOCK = 64;
/**
 * A candidate for the baseline counts as its latency × (1 + NOISE / √completions): about two
 * standard errors of a mean, for a jitter whose standard deviation is a quarter of the mean.
 */
const NOISE = 0.5;
/** Windows at `min` still too slow before the baseline is measured anew. */
const STUCK = 4;
/** Windows to hold just below the last overload's level before probing past it, at first. */
const PLATEAU = 2;
/** At most this many windows held there (after repeated overloads at that level). */
const MAX_PLATEAU = 32;

/**
 * Options of {@link adaptiveConcurrency}.
 *
 * @example
 * ```ts
 * import { adaptiveConcurrency } from "async-pipeline";
 *
 * const limit = adaptiveConcurrency({
 *   min: 2,
 *   max: 128,
 *   onChange: (limit) => console.log(`now ${limit} at once`),
 * });
 * ```
 */
export interface AdaptiveConcurrencyOptions {
  /**
   * The lowest the limit goes: an integer ≥ 1.
   * @default 1
   * @example
   * ```ts
   * adaptiveConcurrency({ min: 4 }); // never fewer than 4 at once
   * ```
   */
  min?: number | undefined;
  /**
   * The highest the limit goes: an integer ≥ `min`.
   * @default 1000
   * @example
   * ```ts
   * adaptiveConcurrency({ max: 64 }); // never more than 64 at once
   * ```
   */
  max?: number | undefined;
  /**
   * The limit to start from: an integer within [`min`, `max`]. A higher start reaches a
   * large limit sooner, at the risk of a burst of overloads first.
   * @default min
   * @example
   * ```ts
   * adaptiveConcurrency({ initial: 16 });
   * ```
   */
  initial?: number | undefined;
  /**
   * Whether a failed attempt's error means the service is overloaded: the limit is then cut
   * at once. Called with the attempt's own error and, when the stage's `retryAfter` returned
   * a number of ms for it, that number. A throw counts as `false`.
   * @default a `TimeoutError`, a `BrokenCircuitError`, an error whose `status` or
   *   `statusCode` is 429 or 503, or one for which `retryAfter` returned a number
   * @example
   * ```ts
   * adaptiveConcurrency({
   *   isOverload: (error) => (error as { code?: string }).code === "RESOURCE_EXHAUSTED",
   * });
   * ```
   */
  isOverload?: ((error: unknown, retryAfter: number | undefined) => boolean) | undefined;
  /**
   * Told each change of the limit: the new whole limit and, under `perKey`, the key
   * (`undefined` for a batch's own limit). Not awaited; its failures are ignored.
   * @default undefined
   * @example
   * ```ts
   * adaptiveConcurrency({ onChange: (limit, key) => metrics.gauge("concurrency", limit, { key }) });
   * ```
   */
  onChange?: ((limit: number, key: unknown) => unknown) | undefined;
}

/** The keys of {@link AdaptiveConcurrencyOptions}; any other key is rejected. */
const adaptiveOptionKeys = {
  min: true,
  max: true,
  initial: true,
  isOverload: true,
  onChange: true,
} as const satisfies OptionKeys<AdaptiveConcurrencyOptions>;

const DEFAULT_MAX = 1_000;

/**
 * Idle per-key limits kept (what was learned for keys no batch uses now): past this many
 * keys, the oldest idle ones are forgotten and start again from `initial`.
 */
const KEPT_KEYS = 10_000;

/** The default of {@link AdaptiveConcurrencyOptions.isOverload}. */
export function isOverloadByDefault(error: unknown, retryAfter: number | undefined): boolean {
  if (retryAfter !== undefined) return true;
  if (error instanceof TimeoutError || error instanceof BrokenCircuitError) return true;
  if (typeof error !== "object" || error === null) return false;
  const { status, statusCode } = error as { status?: unknown; statusCode?: unknown };
  return status === 429 || status === 503 || statusCode === 429 || statusCode === 503;
}

interface Settings {
  readonly min: number;
  readonly max: number;
  readonly initial: number;
  readonly isOverload: (error: unknown, retryAfter: number | undefined) => boolean;
  readonly onChange: ((limit: number, key: unknown) => unknown) | undefined;
}

/**
 * One limit and what it learned. See docs/adaptive-concurrency.md for the algorithm; in short:
 *
 * - The estimate is a real number; the pool runs its whole part (`limit`).
 * - Time is read about once per window of completions, never per item: a window's mean
 *   latency follows from Little's law, as the mean number of items in flight (sampled at each
 *   completion) times the window's duration over its completions. Completions of items
 *   started under an earlier limit are skipped, so that a window sees one limit only.
 * - The baseline is the lowest latency of a block of at least {@link BLOCK} completions.
 * - Per window: the estimate × TARGET × baseline / latency (a gradient, as in Envoy's and
 *   Netflix's gradient limits), within [{@link MAX_CUT}, {@link MAX_GROWTH}], untouched
 *   within {@link DEADBAND}; growth only when the window kept the limit busy.
 * - On an overload: × {@link BACKOFF} at once, once per window. The level it came at is the
 *   ceiling: growth then goes half the way to it per window, holds just below it for a
 *   plateau (longer after each overload there), then probes past it with doubling steps, as
 *   TCP BIC does.
 * - The start doubles per round trip (+1 per completion) below {@link MIN_WINDOW}, then grows
 *   × {@link START_GROWTH} per window until an overload or a latency rise ends it.
 */
class Gauge implements LimitGauge {
  readonly #settings: Settings;
  readonly #key: unknown;
  #limit: number;
  #estimate: number;
  #inFlight = 0;
  #holders = 0;
  /** Batches with items ready to start and no room, waiting for a place. */
  readonly #waiters = new Fifo<() => void>();
  /**
   * What the next completions are for: `ramp`, each grows the limit (the start, below
   * {@link MIN_WINDOW}); `skip`, they are of items started under an earlier limit; `idle`,
   * the next one starts a window; `window`, they are measured.
   */
  #phase: "ramp" | "skip" | "idle" | "window" = "idle";
  /** Completions until the phase's next step: the only test on the hot path. */
  #countdown = 1;
  /** When the current window began. */
  #windowStart = 0;
  /** Completions in the current window. */
  #windowSize = 0;
  /** Items in flight at each completion, summed since the window began. */
  #inFlightSum = 0;
  /** Cut for an overload since the current window began: later overloads are old news. */
  #cut = false;
  /** Still starting: no overload and no latency rise seen yet. */
  #starting = true;
  /** The lowest block latency seen (penalised for its noise), in ms. */
  #baseline = Infinity;
  /** Until the first block: the lowest window latency seen (penalised likewise). */
  #provisional = Infinity;
  /** The block being pooled: its completions, and latency × completions of its windows. */
  #blockCompletions = 0;
  #blockSum = 0;
  /** Consecutive windows at `min` whose latency said to go lower still. */
  #stuck = 0;
  /** The estimate when the last overload came, or Infinity. */
  #ceiling = Infinity;
  /** Windows to hold just below the ceiling before probing past it. */
  #plateau = PLATEAU;
  /** Windows held there so far. */
  #held = 0;
  /** The next step past the ceiling, doubled each window that passes without an overload. */
  #probe = 1;

  constructor(settings: Settings, key: unknown) {
    this.#settings = settings;
    this.#key = key;
    this.#estimate = settings.initial;
    this.#limit = settings.initial;
    if (settings.initial >= settings.max) this.#starting = false;
    this.#rearm();
  }

  get limit(): number {
    return this.#limit;
  }

  get inFlight(): number {
    return this.#inFlight;
  }

  /** Whether nothing runs under this gauge and no batch holds it: it may be forgotten. */
  get idle(): boolean {
    return this.#inFlight === 0 && this.#holders === 0;
  }

  /** A batch took this gauge (see {@link gaugeOf}); it gives it back with `release`. */
  hold(): this {
    this.#holders++;
    return this;
  }

  started(): void {
    this.#inFlight++;
  }

  finished(): void {
    const inFlight = this.#inFlight--;
    this.#inFlightSum += inFlight;
    if (--this.#countdown === 0) this.#step(inFlight);
    // A place is free, and the limit may have risen: only here (and in `keep`) does it rise.
    if (this.#waiters.size !== 0) this.#wake();
  }

  keep(): boolean {
    // finished(), then started() when there is room and nobody waits: the statistics see a
    // completion and a start, as they would from the two calls. The common case (no step of
    // the countdown, room, nobody waiting) leaves `inFlight` as it is.
    const inFlight = this.#inFlight;
    this.#inFlightSum += inFlight;
    if (--this.#countdown !== 0 && inFlight <= this.#limit && this.#waiters.size === 0) {
      return true;
    }
    this.#inFlight = inFlight - 1;
    if (this.#countdown === 0) this.#step(inFlight);
    if (this.#waiters.size === 0) {
      if (this.#inFlight >= this.#limit) return false;
      this.#inFlight++;
      return true;
    }
    this.#wake();
    return false;
  }

  giveBack(): void {
    this.#inFlight--;
    if (this.#waiters.size !== 0) this.#wake();
  }

  /** The completion the countdown was for, when `inFlight` items were running. */
  #step(inFlight: number): void {
    switch (this.#phase) {
      case "ramp":
        // While at least half the limit runs, +1 per completion: doubling per round trip.
        this.#countdown = 1;
        if (inFlight * 2 >= this.#limit) this.#set(this.#estimate + 1);
        return;
      case "window":
        this.#endWindow();
        return;
      default:
        // The items of an earlier limit are done, or the first item after idle time is: the
        // window starts at this completion, which it does not count.
        this.#startWindow(now());
    }
  }

  wait(wake: () => void): void {
    this.#waiters.push(wake);
  }

  cancelWait(wake: () => void): void {
    const waiters = this.#waiters;
    // Rare (a batch stopped while blocked) and short (one entry per blocked batch): a scan.
    for (let count = waiters.size; count > 0; count--) {
      const waiter = waiters.shift() as () => void;
      if (waiter !== wake) waiters.push(waiter);
    }
  }

  /**
   * Wakes waiting batches, oldest first, while there is room: each starts what it can within
   * its `wake`. Those already waiting only: one that waits again waits for the next place.
   */
  #wake(): void {
    const waiters = this.#waiters;
    for (let count = waiters.size; count > 0 && this.#inFlight < this.#limit; count--) {
      const wake = waiters.shift() as () => void;
      try {
        wake();
      } catch {
        // The pool's own callback: it handles its failures; nothing may stop the others.
      }
    }
  }

  attemptFailed(error: unknown, retryAfter: number | undefined): void {
    if (this.#cut) return;
    let overload: unknown;
    try {
      overload = this.#settings.isOverload(error, retryAfter);
    } catch {
      overload = false;
    }
    if (!overload) return;
    this.#cut = true;
    this.#starting = false;
    // Overloaded again at about the same level: wait longer before the next probe.
    if (this.#estimate >= this.#ceiling * 0.9) {
      this.#plateau = Math.min(this.#plateau * 2, MAX_PLATEAU);
    }
    this.#ceiling = this.#estimate;
    this.#held = 0;
    this.#probe = 1;
    this.#set(this.#estimate * BACKOFF);
  }

  release(): void {
    if (this.#holders === 0 || --this.#holders > 0) return;
    // Idle from now on: a window spanning the idle time would read it as latency.
    if (this.#phase !== "ramp") {
      this.#phase = "idle";
      this.#countdown = 1;
    }
  }

  /** The phase after a change of the limit (or at the start). */
  #rearm(): void {
    if (this.#starting && this.#limit < MIN_WINDOW) {
      this.#phase = "ramp";
      this.#countdown = 1;
    } else if (this.#inFlight > 0) {
      // Measure only items started under the new limit.
      this.#phase = "skip";
      this.#countdown = this.#inFlight;
    } else {
      this.#phase = "idle";
      this.#countdown = 1;
    }
  }

  #startWindow(time: number): void {
    this.#phase = "window";
    this.#windowStart = time;
    this.#windowSize = Math.max(this.#limit, MIN_WINDOW);
    this.#countdown = this.#windowSize;
    this.#inFlightSum = 0;
    this.#cut = false;
  }

  #endWindow(): void {
    const time = now();
    const completions = this.#windowSize;
    const meanInFlight = this.#inFlightSum / completions;
    const latency = (meanInFlight * (time - this.#windowStart)) / completions;
    this.#startWindow(time);
    // App-limited (the batch did not keep the limit busy, as while it drains): the latency
    // says nothing of the limit, and a limit not used must not grow.
    if (meanInFlight * 2 < this.#limit || !(latency > 0)) return;
    const busy = meanInFlight >= this.#limit * BUSY;
    const baseline = this.#updateBaseline(latency, completions);
    if (this.#starting) {
      if (!busy) return;
      if (latency <= START_EXIT * baseline) {
        this.#set(this.#estimate * START_GROWTH);
        return;
      }
      this.#starting = false;
    }
    const gradient = (TARGET * baseline) / latency;
    if (gradient < 1 / DEADBAND) {
      // At `min` and still too slow: the service itself got slower; measure anew from here.
      if (this.#limit === this.#settings.min && ++this.#stuck >= STUCK) {
        this.#baseline = latency;
        this.#stuck = 0;
      }
      this.#set(this.#estimate * Math.max(gradient, MAX_CUT));
      return;
    }
    this.#stuck = 0;
    if (busy && gradient > DEADBAND) this.#grow(this.#estimate * Math.min(gradient, MAX_GROWTH));
  }

  /**
   * The baseline after a window of `completions` at `latency`: the lowest latency of a block
   * of at least {@link BLOCK} completions (pooled over consecutive windows), raised by
   * {@link NOISE} / √completions so that a lucky block does not set it low. Before the first
   * block, the lowest window so raised.
   */
  #updateBaseline(latency: number, completions: number): number {
    const candidate = latency * (1 + NOISE / Math.sqrt(completions));
    if (candidate < this.#provisional) this.#provisional = candidate;
    this.#blockSum += latency * completions;
    this.#blockCompletions += completions;
    if (this.#blockCompletions >= BLOCK) {
      const pooled = this.#blockSum / this.#blockCompletions;
      const raised = pooled * (1 + NOISE / Math.sqrt(this.#blockCompletions));
      if (raised < this.#baseline) this.#baseline = raised;
      this.#blockSum = 0;
      this.#blockCompletions = 0;
    }
    return this.#baseline === Infinity ? this.#provisional : this.#baseline;
  }

  /**
   * Grows toward `wanted`, but near the last overload's level as TCP BIC does: half the way
   * to it per window, then a plateau just below it, then probes past it that double; well
   * past it, it is forgotten.
   */
  #grow(wanted: number): void {
    const estimate = this.#estimate;
    const ceiling = this.#ceiling;
    if (wanted <= ceiling - 1) {
      this.#set(wanted);
    } else if (estimate < ceiling - 1) {
      this.#set(Math.min(wanted, Math.max(estimate + 1, (estimate + ceiling) / 2), ceiling - 1));
    } else if (this.#held < this.#plateau) {
      this.#held++;
    } else {
      const next = Math.min(wanted, Math.max(estimate, ceiling - 1) + this.#probe);
      this.#probe *= 2;
      if (next >= ceiling * 1.5) {
        this.#ceiling = Infinity;
        this.#plateau = PLATEAU;
      }
      this.#set(next);
    }
  }

  #set(estimate: number): void {
    const { min, max, onChange } = this.#settings;
    const clamped = estimate < min ? min : estimate > max ? max : estimate;
    this.#estimate = clamped;
    const limit = Math.floor(clamped);
    if (limit === this.#limit) return;
    this.#limit = limit;
    if (limit >= max) this.#starting = false;
    this.#rearm();
    if (onChange !== undefined) callIgnoringErrors(() => onChange(limit, this.#key));
  }
}

/**
 * A concurrency limit that finds itself: what {@link adaptiveConcurrency} returns. Give it
 * wherever a concurrency is given. Batches given the same controller share its limit (and,
 * under `perKey`, one limit per key), and it keeps what it learned from one batch to the
 * next; give each batch its own controller for separate limits.
 *
 * @example
 * ```ts
 * import { adaptiveConcurrency, Pipeline, Stage } from "async-pipeline";
 *
 * const limit = adaptiveConcurrency({ max: 256 });
 * const pipeline = new Pipeline([new Stage("fetch", async (url: string) => url.length)]);
 * await pipeline.map(["https://example.com/a"], { concurrency: limit });
 * limit.limit; // the limit it found
 * ```
 */
export class AdaptiveConcurrency {
  readonly #settings: Settings;
  readonly #shared: Gauge;
  readonly #keys = new Map<unknown, Gauge>();

  /** Use {@link adaptiveConcurrency}. @internal */
  constructor(settings: Settings) {
    this.#settings = settings;
    this.#shared = new Gauge(settings, undefined);
  }

  /**
   * The lowest the limit goes.
   * @default 1
   * @example
   * ```ts
   * adaptiveConcurrency({ min: 2 }).min; // 2
   * ```
   */
  get min(): number {
    return this.#settings.min;
  }

  /**
   * The highest the limit goes.
   * @default 1000
   * @example
   * ```ts
   * adaptiveConcurrency({ max: 50 }).max; // 50
   * ```
   */
  get max(): number {
    return this.#settings.max;
  }

  /**
   * The limit now, for a batch given the controller as its `concurrency`: the whole number of
   * items it runs at once at most.
   * @default initial
   * @example
   * ```ts
   * adaptiveConcurrency({ initial: 8 }).limit; // 8
   * ```
   */
  get limit(): number {
    return this.#shared.limit;
  }

  /**
   * The limit now for `key`, for batches given the controller as `perKey.concurrency`
   * (`initial` for a key it has not seen).
   * @default initial
   * @example
   * ```ts
   * adaptiveConcurrency({ initial: 2 }).limitFor("example.com"); // 2
   * ```
   */
  limitFor(key: unknown): number {
    return this.#keys.get(key)?.limit ?? this.#settings.initial;
  }

  /** See {@link gaugeOf}. @internal */
  [gaugeOf](keyed: boolean, key: unknown): LimitGauge {
    if (!keyed) return this.#shared.hold();
    let gauge = this.#keys.get(key);
    if (gauge === undefined) {
      if (this.#keys.size >= KEPT_KEYS) this.#forgetIdleKeys();
      gauge = new Gauge(this.#settings, key);
      this.#keys.set(key, gauge);
    }
    return gauge.hold();
  }

  /** Forgets the oldest idle keys, down to nine tenths of {@link KEPT_KEYS}. */
  #forgetIdleKeys(): void {
    const keep = Math.floor(KEPT_KEYS * 0.9);
    for (const [key, gauge] of this.#keys) {
      if (this.#keys.size <= keep) return;
      if (gauge.idle) this.#keys.delete(key);
    }
  }
}

/**
 * A concurrency limit that finds itself, for a service whose capacity you do not know: give
 * it as `concurrency` (or as `perKey.concurrency`, for one limit per key) to `map`,
 * `mapSettled` or `stream`.
 *
 * The limit grows while items succeed and their latency stays near the lowest seen, and
 * shrinks multiplicatively on an overload (a failed attempt that `isOverload` says is one)
 * or when the latency rises well past that baseline. It never leaves [`min`, `max`]. It reads
 * the global clock (`performance.now()`) about once per round trip of items and sets no timer,
 * so fake timers drive it. See the guide `docs/adaptive-concurrency.md` for the algorithm and
 * the figures.
 *
 * @param options - `min`, `max`, `initial`, `isOverload`, `onChange`; see
 *   {@link AdaptiveConcurrencyOptions}
 * @returns a controller, shared by every batch given it
 * @throws TypeError when `options` is not an object, or an option has the wrong type
 * @throws RangeError when `min`, `max` or `initial` is not an integer ≥ 1, `max` is below
 *   `min`, or `initial` is outside [`min`, `max`]
 * @example
 * ```ts
 * import { adaptiveConcurrency, Pipeline, Stage } from "async-pipeline";
 *
 * declare function callApi(id: string): Promise<string>;
 *
 * const api = adaptiveConcurrency({ min: 1, max: 256 });
 * const pipeline = new Pipeline([new Stage("call", callApi, { retries: 5, retryDelay: 1_000 })]);
 * await pipeline.map(["a", "b", "c"], { concurrency: api });
 * ```
 */
export function adaptiveConcurrency(options?: AdaptiveConcurrencyOptions): AdaptiveConcurrency {
  const opts =
    optionsObject<AdaptiveConcurrencyOptions>("options", options, adaptiveOptionKeys) ?? {};
  const min = opts.min === undefined ? 1 : positiveInteger("min", opts.min);
  let max = DEFAULT_MAX;
  if (opts.max === undefined) {
    if (min > max) {
      throw new RangeError(`min must be at most max (${String(max)} by default), got ${show(min)}`);
    }
  } else {
    max = positiveInteger("max", opts.max);
    if (max < min)
      throw new RangeError(`max must be at least min (${String(min)}), got ${show(max)}`);
  }
  const initial = opts.initial === undefined ? min : positiveInteger("initial", opts.initial);
  if (initial < min || initial > max) {
    throw new RangeError(
      `initial must be within [min, max] = [${String(min)}, ${String(max)}], got ${show(initial)}`,
    );
  }
  const isOverload = optionalFunction("isOverload", opts.isOverload) ?? isOverloadByDefault;
  const onChange = optionalFunction("onChange", opts.onChange);
  return new AdaptiveConcurrency(Object.freeze({ min, max, initial, isOverload, onChange }));
}
