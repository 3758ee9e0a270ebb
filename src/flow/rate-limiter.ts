import { whenAborted, type Subscription } from "../internal/abort.js";
import type { OptionKeys } from "../internal/known-keys.js";
import { startTimer, stopTimer, type TimerHandle } from "../internal/timers.js";
import { optionsObject, positiveDuration, positiveInteger, show } from "../internal/validate.js";
import { Fifo, type FifoNode } from "./fifo.js";

/**
 * `limiter[acquire](signal)`: takes a start slot. Returns `undefined` when one was free (the
 * caller starts at once, synchronously), else a promise that resolves when the caller's turn
 * comes, or rejects with `signal.reason` when `signal` aborts first (the slot is then never
 * taken). A registered symbol, so that a limiter made by one build of the package works with a
 * stage made by another. Not exported from the package.
 */
export const acquire: unique symbol = Symbol.for("async-pipeline.RateLimiter.acquire") as never;

/**
 * Options of a {@link RateLimiter}; also accepted as the `rateLimit` stage option, which then
 * makes a limiter of the stage's own.
 *
 * @example
 * ```ts
 * import { RateLimiter } from "async-pipeline";
 *
 * const limiter = new RateLimiter({ limit: 10, interval: 1_000 }); // at most 10 starts in any 1 s
 * ```
 */
export interface RateLimitOptions {
  /**
   * How many attempts may start within any window of `interval` ms: an integer ≥ 1.
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
}

interface Waiter {
  readonly resolve: () => void;
  subscription: Subscription | undefined;
}

/**
 * A sliding-window limit on attempt starts: at most `limit` attempts start within any window
 * of `interval` ms, whichever stages (and whichever pipelines and batches) share the limiter.
 * Retries count like first attempts.
 *
 * Attempts that must wait are let through in the order they asked (FIFO). A waiting attempt
 * whose signal aborts leaves the queue at once and never takes a slot. The limiter remembers
 * the start times of the last `limit` starts (`Date.now()`), and sets one timer (the global
 * `setTimeout`, looked up when used, so fake timers drive it) only while attempts wait; none
 * is left behind when the queue empties.
 *
 * The stage's `timeout` starts when the attempt starts, not while it waits for its turn.
 *
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
export class RateLimiter {
  readonly #limit: number;
  readonly #interval: number;
  /** Start times of the last `limit` starts: a ring once full, the oldest at `#oldest`. */
  readonly #starts: number[] = [];
  #oldest = 0;
  readonly #waiters = new Fifo<Waiter>();
  #timer: TimerHandle | undefined;

  /**
   * @param options - `limit` and `interval`, see {@link RateLimitOptions}
   * @throws TypeError when `options` is not an object or an option is not a number
   * @throws RangeError when `limit` is not an integer ≥ 1 or `interval` is not a finite
   *   number > 0
   */
  constructor(options: RateLimitOptions) {
    const settings = rateLimitSettings(options, "");
    this.#limit = settings.limit;
    this.#interval = settings.interval;
  }

  /**
   * How many attempts may start within any window of {@link RateLimiter.interval} ms.
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
   * Attempts waiting for their turn now.
   * @default 0
   * @example
   * ```ts
   * const limiter = new RateLimiter({ limit: 1, interval: 1_000 });
   * limiter.waiting; // 0
   * ```
   */
  get waiting(): number {
    return this.#waiters.size;
  }

  /** See {@link acquire}. @internal */
  [acquire](signal: AbortSignal | undefined): Promise<void> | undefined {
    if (this.#waiters.size === 0) {
      const now = Date.now();
      if (this.#freeAt() <= now) {
        this.#record(now);
        return undefined;
      }
    }
    if (signal?.aborted === true) return Promise.reject(signal.reason as Error);
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = { resolve, subscription: undefined };
      const node = this.#waiters.push(waiter);
      this.#arm();
      if (signal !== undefined) {
        // Through the library's signal registry: one listener per signal, however many wait.
        waiter.subscription = whenAborted(signal, () => {
          this.#leave(node);
          reject(signal.reason as Error);
        });
      }
    });
  }

  /** When the next start may happen: the oldest remembered start plus the window. */
  #freeAt(): number {
    return this.#starts.length < this.#limit
      ? -Infinity
      : (this.#starts[this.#oldest] as number) + this.#interval;
  }

  #record(now: number): void {
    if (this.#starts.length < this.#limit) {
      this.#starts.push(now);
      return;
    }
    this.#starts[this.#oldest] = now;
    this.#oldest = (this.#oldest + 1) % this.#limit;
  }

  /** Sets the timer for the head of the queue, unless it is set. */
  #arm(): void {
    if (this.#timer !== undefined) return;
    // At least 1 ms: a timer may fire a little before `Date.now()` says it is due, and then
    // sets itself again rather than letting an attempt start early.
    this.#timer = startTimer(Math.max(this.#freeAt() - Date.now(), 1), this.#onTimer);
  }

  readonly #onTimer = (): void => {
    this.#timer = undefined;
    const now = Date.now();
    while (this.#waiters.size > 0 && this.#freeAt() <= now) {
      const waiter = this.#waiters.shift() as Waiter;
      waiter.subscription?.cancel();
      this.#record(now);
      waiter.resolve();
    }
    if (this.#waiters.size > 0) this.#arm();
  };

  /** A waiter gave up: out of the queue, and no timer left when nothing waits. */
  #leave(node: FifoNode<Waiter>): void {
    this.#waiters.remove(node);
    if (this.#waiters.size === 0 && this.#timer !== undefined) {
      stopTimer(this.#timer);
      this.#timer = undefined;
    }
  }
}

/** The keys of {@link RateLimitOptions}; any other key is rejected. */
const rateLimitOptionKeys = {
  limit: true,
  interval: true,
} as const satisfies OptionKeys<RateLimitOptions>;

function rateLimitSettings(value: unknown, prefix: string): RateLimitOptions {
  const options = optionsObject<Partial<RateLimitOptions>>(
    prefix || "options",
    value,
    rateLimitOptionKeys,
  );
  if (options === undefined) {
    throw new TypeError(`${prefix || "options"} must be an object, got undefined`);
  }
  return {
    limit: positiveInteger(`${prefix}limit`, options.limit),
    interval: positiveDuration(`${prefix}interval`, options.interval),
  };
}

/**
 * The `rateLimit` stage option, validated: a {@link RateLimiter} (of this or any other copy of
 * the package), or `{ limit, interval }` for a limiter of the stage's own.
 */
export function rateLimiterOption(value: unknown): RateLimiter | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "object" || value === null) {
    throw new TypeError(
      `rateLimit must be a RateLimiter or { limit, interval }, got ${show(value)}`,
    );
  }
  if (typeof (value as Partial<RateLimiter>)[acquire] === "function") return value as RateLimiter;
  return new RateLimiter(rateLimitSettings(value, "rateLimit."));
}
