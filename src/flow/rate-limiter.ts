import { admitAttempt, type AttemptGrant } from "../internal/gates.js";
import type { OptionKeys } from "../internal/known-keys.js";
import { rateLimitOptionHints } from "../internal/option-hints.js";
import {
  optionalFunction,
  optionsObject,
  positiveDuration,
  positiveInteger,
  show,
} from "../internal/validate.js";
import type { Context } from "../types.js";
import { KeyedStates } from "./keyed.js";
import { SingleGrant, SlidingWindow, type WaitCount } from "./sliding-window.js";
import { Turn } from "./turn.js";

/**
 * `limiter[windowOf](value, context)`: the sliding window an attempt on `value` uses (the
 * limiter's one, or its key's, made when missing); throws what `key` throws. For a `rateLimit`
 * array, whose limiters may come from other builds of the package. Not exported.
 */
export const windowOf: unique symbol = Symbol.for("async-pipeline.RateLimiter.windowOf") as never;

/**
 * `limiter[costOf](value, context)`: what an attempt on `value` takes from the window, checked
 * (see {@link RateLimitOptions.cost}); throws what `cost` throws, or the problem with what it
 * returned. For a `rateLimit` array. Not exported.
 */
export const costOf: unique symbol = Symbol.for("async-pipeline.RateLimiter.costOf") as never;

/** `limiter[keyCount]`: how many keys' windows a keyed limiter holds now (for tests). */
export const keyCount: unique symbol = Symbol("RateLimiter.keyCount") as never;

/**
 * Options of a {@link RateLimiter}; also accepted as the `rateLimit` stage option, which then
 * makes a limiter of the stage's own.
 *
 * @typeParam T - the input of the stages the limiter is given to (what `cost` and `key` read)
 * @typeParam C - their context type
 * @example
 * ```ts
 * import { RateLimiter } from "async-pipeline";
 *
 * const limiter = new RateLimiter({ limit: 10, interval: 1_000 }); // at most 10 starts in any 1 s
 * const tokens = new RateLimiter({ limit: 90_000, interval: 60_000, cost: (prompt: string) => prompt.length / 4 });
 * const perHost = new RateLimiter({ limit: 2, interval: 1_000, key: (url: URL) => url.host });
 * ```
 */
export interface RateLimitOptions<T = unknown, C extends object = Context> {
  /**
   * How much may start within any window of `interval` ms: an integer ≥ 1. Without `cost`,
   * a number of attempts; with `cost`, a sum of their costs (tokens, credits, bytes).
   * @default no default: required
   * @example
   * ```ts
   * new RateLimiter({ limit: 100, interval: 60_000 }); // 100 per minute
   * ```
   */
  limit: number;
  /**
   * The window, in ms: a finite number > 0.
   * @default no default: required
   * @example
   * ```ts
   * new RateLimiter({ limit: 5, interval: 1_000 }); // 5 per second
   * ```
   */
  interval: number;
  /**
   * What one attempt takes from the window: `cost(value, context)` with the stage's input and
   * the run's context, a finite number ≥ 0 (fractions allowed), asked before each attempt.
   * A cost above `limit` fails that execution with a `RangeError` (it could never start); a
   * throw, or a value that is not a finite number ≥ 0, fails it with that problem. When the
   * real cost is known only after the call, the handler replaces the estimate with
   * `call.charge(limiter, actual)`.
   * @default () => 1 (every attempt counts 1)
   * @example
   * ```ts
   * // 90,000 tokens per minute, a prompt estimated at 4 characters a token.
   * new RateLimiter({ limit: 90_000, interval: 60_000, cost: (prompt: string) => prompt.length / 4 });
   * ```
   */
  cost?: ((value: T, context: C) => number) | undefined;
  /**
   * Gives each key its own window: `key(value, context)` with the stage's input and the run's
   * context, keys compared as a `Map` compares them (`SameValueZero`). One limiter then holds
   * `limit` per `interval` for each host (tenant, account) on its own. A key's window is
   * dropped once it is idle (no start in the last `interval`, nobody waiting), so a million
   * keys seen once do not stay in memory. A throw fails that execution.
   * @default undefined (one window for every attempt)
   * @example
   * ```ts
   * // At most 2 requests per second to each host.
   * new RateLimiter({ limit: 2, interval: 1_000, key: (url: URL) => url.host });
   * ```
   */
  key?: ((value: T, context: C) => unknown) | undefined;
}

/** The keys of {@link RateLimitOptions}; any other key is rejected. */
const rateLimitOptionKeys = {
  limit: true,
  interval: true,
  cost: true,
  key: true,
} as const satisfies OptionKeys<RateLimitOptions>;

type Reader = (value: unknown, context: unknown) => unknown;

/**
 * A sliding-window limit on attempt starts: at most `limit` attempts (or, with `cost`, at most
 * `limit` of their summed costs) start within any window of `interval` ms, whichever stages,
 * pipelines and batches share the limiter. Retries count like first attempts.
 *
 * - **Counted at the start.** An attempt counts from the moment its handler is called, not
 *   when its turn was granted: measured at the handler, no window of `interval` ms holds more
 *   than `limit`, also when the event loop lags and a burst of waiters is let through at once.
 * - **FIFO.** Attempts that must wait go in the order they asked; a large one is not overtaken
 *   by smaller ones behind it. A waiting attempt whose signal aborts leaves the queue at once
 *   and takes nothing.
 * - **Time never runs backwards.** Intervals are measured on `performance.now()`, which never
 *   goes back: a wall clock stepped back or forward neither stalls the limiter nor lets
 *   anything start early. Fake timers drive it.
 * - **Timers.** None while nothing waits; one per window while attempts wait in it (the global
 *   `setTimeout`, looked up when used); none left behind.
 * - **Per key.** With `key`, each key has its own window (and queue), dropped when idle.
 * - **Arrays.** `rateLimit: [requests, tokens]` on a stage: an attempt starts once every limiter
 *   has room for it, taking its slot in all of them at once (none held while it waits for
 *   another), and waits in each one's queue.
 *
 * The stage's `timeout` starts when the attempt starts, not while it waits for its turn.
 *
 * @typeParam T - the input of the stages the limiter is given to (what `cost` and `key` read)
 * @typeParam C - their context type
 * @example
 * ```ts
 * import { Pipeline, RateLimiter, Stage } from "async-pipeline";
 *
 * // One limit for every stage that calls the same API, across pipelines and batches.
 * const github = new RateLimiter({ limit: 10, interval: 1_000 });
 * const fetchRepo = new Stage("fetchRepo", async (name: string) => name.toUpperCase(), {
 *   rateLimit: github,
 *   timeout: 5_000,
 * });
 * const repos = await new Pipeline([fetchRepo]).map(["a", "b", "c"], 8);
 * github.waiting; // 0: nothing waits once the batch is done
 * ```
 */
// `T` and `C` type the options' callbacks only: a limiter of any input fits any stage.
// Implements `AttemptGate` (checked where `attemptGateOption` returns it): not declared here,
// where it would make an internal interface part of the public class's documentation.
export class RateLimiter<T = unknown, C extends object = Context> {
  readonly #limit: number;
  readonly #interval: number;
  readonly #cost: Reader | undefined;
  readonly #key: Reader | undefined;
  readonly #count: WaitCount = { waiting: 0 };
  /** The one window, without `key`. */
  readonly #window: SlidingWindow | undefined;
  /** The windows per key, with `key`. */
  readonly #windows: KeyedStates<SlidingWindow> | undefined;
  readonly #makeWindow = (key: unknown): SlidingWindow =>
    new SlidingWindow(this, key, this.#limit, this.#interval, this.#count);

  /**
   * @param options - `limit`, `interval`, `cost`, `key`: see {@link RateLimitOptions}
   * @throws TypeError when `options` is not an object, has an unknown key, or an option has the
   *   wrong type
   * @throws RangeError when `limit` is not an integer ≥ 1 or `interval` is not a finite
   *   number > 0
   */
  constructor(options: RateLimitOptions<T, C>) {
    const settings = rateLimitSettings(options, "");
    this.#limit = settings.limit;
    this.#interval = settings.interval;
    this.#cost = settings.cost as Reader | undefined;
    this.#key = settings.key as Reader | undefined;
    if (this.#key === undefined) this.#window = this.#makeWindow(undefined);
    else this.#windows = new KeyedStates((window) => window.idle);
  }

  /**
   * How much may start within any window of {@link RateLimiter.interval} ms (attempts, or with
   * `cost`, cost units).
   * @default no default: set at construction
   * @example
   * ```ts
   * new RateLimiter({ limit: 10, interval: 1_000 }).limit; // 10
   * ```
   */
  get limit(): number {
    return this.#limit;
  }

  /**
   * The window, in ms.
   * @default no default: set at construction
   * @example
   * ```ts
   * new RateLimiter({ limit: 10, interval: 1_000 }).interval; // 1000
   * ```
   */
  get interval(): number {
    return this.#interval;
  }

  /**
   * Attempts waiting for their turn now, every key's together.
   * @default 0
   * @example
   * ```ts
   * const limiter = new RateLimiter({ limit: 1, interval: 1_000 });
   * limiter.waiting; // 0
   * ```
   */
  get waiting(): number {
    return this.#count.waiting;
  }

  /**
   * Attempts waiting for their turn now in the window of `key` (keys compared as a `Map`
   * compares them). Without a `key` option every attempt shares one window, whatever `key`.
   * @param key - a key as the `key` option returns it
   * @returns 0 for a key nobody waits for
   * @default 0
   * @example
   * ```ts
   * import { RateLimiter } from "async-pipeline";
   *
   * const perHost = new RateLimiter({ limit: 2, interval: 1_000, key: (url: URL) => url.host });
   * perHost.waitingFor("api.example.com"); // 0
   * ```
   */
  waitingFor(key: unknown): number {
    return this.#window?.waiting ?? this.#windows?.get(key)?.waiting ?? 0;
  }

  /** How many keys' windows are held now: 0 without `key`. @internal */
  get [keyCount](): number {
    return this.#windows?.size ?? 0;
  }

  /** See {@link admitAttempt}. @internal */
  [admitAttempt](
    value: unknown,
    context: unknown,
    signal: AbortSignal | undefined,
  ): AttemptGrant | Promise<AttemptGrant> {
    const window = this.#window ?? this[windowOf](value, context);
    const cost = this.#cost === undefined ? 1 : this[costOf](value, context);
    if (window.open && window.fits(cost)) {
      window.reserve(cost);
      return cost === 1 ? window.unit : new SingleGrant(window, cost);
    }
    return new Turn([window], [cost]).wait(signal);
  }

  /** See {@link windowOf}. @internal */
  [windowOf](value: unknown, context: unknown): SlidingWindow {
    const key = this.#key;
    if (key === undefined) return this.#window as SlidingWindow;
    return (this.#windows as KeyedStates<SlidingWindow>).obtain(
      key(value, context),
      this.#makeWindow,
    );
  }

  /** See {@link costOf}. @internal */
  [costOf](value: unknown, context: unknown): number {
    const cost = this.#cost;
    if (cost === undefined) return 1;
    const amount = cost(value, context);
    if (typeof amount !== "number") {
      throw new TypeError(`cost must return a number, got ${show(amount)}`);
    }
    if (!(amount >= 0) || amount === Infinity) {
      throw new RangeError(`cost must return a finite number ≥ 0, got ${show(amount)}`);
    }
    if (amount > this.#limit) {
      throw new RangeError(
        `cost ${String(amount)} is above the limiter's limit of ${String(this.#limit)}: the attempt could never start`,
      );
    }
    return amount;
  }
}

/** The options, validated; `prefix` names them in messages (`rateLimit.` for the stage option). */
function rateLimitSettings(value: unknown, prefix: string): RateLimitOptions {
  const name = prefix === "" ? "options" : prefix.slice(0, -1);
  const options = optionsObject<Partial<RateLimitOptions>>(name, value, rateLimitOptionKeys, {
    ...rateLimitOptionHints,
    prefix,
  });
  if (options === undefined) throw new TypeError(`${name} must be an object, got undefined`);
  return {
    limit: positiveInteger(`${prefix}limit`, options.limit),
    interval: positiveDuration(`${prefix}interval`, options.interval),
    cost: optionalFunction(`${prefix}cost`, options.cost),
    key: optionalFunction(`${prefix}key`, options.key),
  };
}

/** Whether `value` is a {@link RateLimiter} of this or any other build of the package. */
export function isRateLimiter(value: unknown): value is RateLimiter {
  return (
    typeof value === "object" &&
    value !== null &&
    typeof (value as Partial<RateLimiter>)[admitAttempt] === "function"
  );
}

/**
 * The `rateLimit` stage option other than an array, validated: a {@link RateLimiter} (of this
 * or any other copy of the package), or its options for a limiter of the stage's own. What
 * `attemptGateOption` (limiter-set.ts), which takes arrays too, makes of a single one.
 */
export function rateLimiterOption(value: unknown): RateLimiter | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "object" || value === null) {
    throw new TypeError(
      `rateLimit must be a RateLimiter or { limit, interval }, got ${show(value)}`,
    );
  }
  if (isRateLimiter(value)) return value;
  return new RateLimiter(rateLimitSettings(value, "rateLimit."));
}
