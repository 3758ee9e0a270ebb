import { throwIfAborted } from "./internal/abort.js";
import { StageExecutionError } from "./errors/StageExecutionError.js";
import { circuitBreakerOption, guard, type CircuitBreaker } from "./flow/circuit-breaker.js";
import {
  acquire,
  rateLimiterOption,
  type RateLimiter,
  type RateLimitOptions,
} from "./flow/rate-limiter.js";
import type { RetryAfter } from "./flow/retry-after.js";
import { guardAttempt } from "./internal/attempt.js";
import { AttemptCall } from "./internal/call.js";
import { begin, execute, fail, readsContext, recover, settle } from "./internal/execute.js";
import {
  retry,
  retryPolicy,
  retrySettingKeys,
  type OnRetry,
  type RetryPolicy,
  type ShouldRetry,
} from "./internal/retry.js";
import { isThenable } from "./internal/thenable.js";
import {
  nonEmptyString,
  optionalContext,
  optionalSignal,
  optionsObject,
  positiveDuration,
} from "./internal/validate.js";
import type { OptionKeys } from "./internal/known-keys.js";
import {
  runOptionKeys,
  type Backoff,
  type Context,
  type Handler,
  type RunOptions,
} from "./types.js";

/**
 * How a stage times out and retries. Every option is checked when the stage is built: a bad
 * value throws a `RangeError` or `TypeError` that names it.
 *
 * @example
 * ```ts
 * import { Stage } from "async-pipeline";
 *
 * const fetchPage = new Stage("fetchPage", download, {
 *   timeout: 5_000,
 *   retries: 3,
 *   retryDelay: 250,
 *   backoff: "exponential",
 *   maxRetryDelay: 2_000,
 *   jitter: true,
 *   shouldRetry: (error) => !(error instanceof TypeError),
 *   onRetry: ({ attempt, delay }) => console.warn(`attempt ${attempt} failed, waiting ${delay} ms`),
 * });
 * ```
 */
export interface StageOptions {
  /**
   * Milliseconds each attempt may take, greater than 0. Applies to an attempt whose handler
   * returned a promise (a synchronous result is never timed out). A late attempt fails with a
   * `TimeoutError`, and the handler's `call.signal` aborts with it.
   * @default undefined (no timeout)
   * @example
   * ```ts
   * new Stage("slowApi", callSlowApi, { timeout: 2_000 });
   * ```
   */
  timeout?: number | undefined;
  /**
   * Extra attempts after the first: an integer of at least 0. Any error is retried, a timeout
   * included; cancellation never is.
   * @default 0
   * @example
   * ```ts
   * new Stage("flaky", callFlakyApi, { retries: 2 }); // at most 3 attempts
   * ```
   */
  retries?: number | undefined;
  /**
   * Milliseconds to wait after a failed attempt, at least 0. `0` sets no timer at all.
   * @default 0
   * @example
   * ```ts
   * new Stage("flaky", callFlakyApi, { retries: 2, retryDelay: 500 });
   * ```
   */
  retryDelay?: number | undefined;
  /**
   * `"fixed"` waits `retryDelay` each time; `"exponential"` waits `retryDelay × 2^(failure − 1)`.
   * @default "fixed"
   * @example
   * ```ts
   * new Stage("flaky", callFlakyApi, { retries: 4, retryDelay: 100, backoff: "exponential" }); // 100, 200, 400, 800
   * ```
   */
  backoff?: Backoff | undefined;
  /**
   * Milliseconds cap on any one wait, applied before jitter.
   * @default undefined (no cap)
   * @example
   * ```ts
   * new Stage("flaky", callFlakyApi, { retries: 10, retryDelay: 100, backoff: "exponential", maxRetryDelay: 5_000 });
   * ```
   */
  maxRetryDelay?: number | undefined;
  /**
   * `true` draws each wait uniformly from [0, capped delay] ("full jitter"), so that many
   * clients retrying at once spread out.
   * @default false
   * @example
   * ```ts
   * new Stage("flaky", callFlakyApi, { retries: 3, retryDelay: 1_000, jitter: true });
   * ```
   */
  jitter?: boolean | undefined;
  /**
   * Called after a failed attempt that has retries left, and awaited: `false` (or a throw)
   * fails the stage at once with that attempt's error. `attempt` is the attempt that failed.
   * @default retry every error
   * @example
   * ```ts
   * new Stage("fetch", fetchJson, {
   *   retries: 3,
   *   shouldRetry: (error) => !(error instanceof SyntaxError), // a bad payload will not get better
   * });
   * ```
   */
  shouldRetry?: ShouldRetry | undefined;
  /**
   * Called before each wait between attempts with a frozen `{ stageName, error, attempt, delay }`
   * (`attempt` is the attempt that failed). Not awaited; its failures are ignored.
   * @default undefined
   * @example
   * ```ts
   * new Stage("fetch", fetchJson, {
   *   retries: 3,
   *   onRetry: ({ stageName, attempt, delay }) => console.warn(`${stageName} #${attempt} failed; retry in ${delay} ms`),
   * });
   * ```
   */
  onRetry?: OnRetry | undefined;
  /**
   * After a failed attempt that will be retried, the wait before the next one in ms, in place
   * of the backoff: for a server's `Retry-After` (see {@link parseRetryAfter}). A finite
   * number ≥ 0 is used as it is (capped by `maxRetryDelay`, never jittered); `undefined`
   * means the usual backoff. A throw or a bad value (negative, `NaN`, not a number) fails the
   * stage with a `TypeError` or `RangeError` as its `originalError`. `onRetry` reports the
   * wait actually used.
   * @default undefined (the backoff decides)
   * @example
   * ```ts
   * import { parseRetryAfter, Stage } from "async-pipeline";
   *
   * new Stage("fetch", fetchJson, {
   *   retries: 4,
   *   retryDelay: 500,
   *   maxRetryDelay: 60_000,
   *   retryAfter: (error) => parseRetryAfter((error as { retryAfter?: string }).retryAfter),
   * });
   * ```
   */
  retryAfter?: RetryAfter | undefined;
  /**
   * A limit on attempt starts: a {@link RateLimiter} (shared with every stage given the same
   * one), or `{ limit, interval }` for a limiter of this stage's own. Each attempt, retries
   * included, waits for its turn; the `timeout` starts when the attempt starts.
   * @default undefined (no limit)
   * @example
   * ```ts
   * import { RateLimiter, Stage } from "async-pipeline";
   *
   * const api = new RateLimiter({ limit: 10, interval: 1_000 });
   * new Stage("fetch", fetchJson, { rateLimit: api, timeout: 5_000 });
   * new Stage("ping", fetchJson, { rateLimit: { limit: 1, interval: 60_000 } });
   * ```
   */
  rateLimit?: RateLimiter | RateLimitOptions | undefined;
  /**
   * A {@link CircuitBreaker} around each execution of the stage (all its attempts together):
   * while it is open, the stage fails at once, without calling the handler, with a
   * `StageExecutionError` whose `originalError` is a `BrokenCircuitError`.
   * @default undefined (no breaker)
   * @example
   * ```ts
   * import { CircuitBreaker, Stage } from "async-pipeline";
   *
   * const breaker = new CircuitBreaker({ threshold: 5, cooldown: 30_000 });
   * new Stage("fetch", fetchJson, { circuitBreaker: breaker, retries: 2 });
   * ```
   */
  circuitBreaker?: CircuitBreaker | undefined;
}

/** The keys of {@link StageOptions}; any other key is rejected. A new option goes here too. */
const stageOptionKeys = {
  timeout: true,
  ...retrySettingKeys,
  rateLimit: true,
  circuitBreaker: true,
} as const satisfies OptionKeys<StageOptions>;

/**
 * One named step of a pipeline: a sync or async handler with an optional timeout, retries and
 * backoff.
 *
 * The handler is called with `value` alone when it declares fewer than two parameters
 * (`handler.length < 2`), otherwise with `(value, context, call)`. Note that a parameter with a
 * default value, and a rest parameter, do not count in `handler.length`.
 *
 * @typeParam I - the input type (what the previous stage returns)
 * @typeParam O - the output type (the handler's result, awaited)
 * @typeParam C - the context type the handler reads
 * @example
 * ```ts
 * import { Stage } from "async-pipeline";
 *
 * const addOne = new Stage("addOne", (value: number) => value + 1);
 * const fetchUser = new Stage(
 *   "fetchUser",
 *   async (id: string, _context, call) => {
 *     const response = await fetch(`https://example.com/users/${id}`, { signal: call.signal });
 *     return (await response.json()) as { name: string };
 *   },
 *   { timeout: 5_000, retries: 2, retryDelay: 200, backoff: "exponential" },
 * );
 *
 * await addOne.run(1); // 2
 * ```
 */
export class Stage<I, O, C extends object = Context> {
  readonly #name: string;
  readonly #handler: Handler<I, O, C>;
  readonly #takesContext: boolean;
  readonly #timeout: number | undefined;
  readonly #policy: RetryPolicy;
  readonly #limiter: RateLimiter | undefined;
  readonly #breaker: CircuitBreaker | undefined;
  /**
   * The first attempt is the handler's call and nothing else: no circuit breaker, rate limit,
   * timeout or call object. Decided once here, so that such an attempt decides nothing per call.
   */
  readonly #bare: boolean;
  /** The stage's failure after `attempts` attempts; also the retry loop's `fail`. */
  readonly #wrap = (error: unknown, attempts: number): StageExecutionError =>
    new StageExecutionError(this.#name, error, attempts);
  /** Rejection handler of the fast path (see {@link Stage[settle]}), made once, not per call. */
  readonly #failOnce = (error: unknown): never => {
    throw this.#wrap(error, 1);
  };

  /**
   * @param name - names the stage in errors, hooks and middleware
   * @param handler - the work: `(value)` or `(value, context, call)`, sync or async
   * @param options - timeout and retry settings, see {@link StageOptions}
   * @throws TypeError when `name` is not a string, `handler` is not a function, or an option
   *   has the wrong type
   * @throws RangeError when `name` is empty or an option is out of range
   */
  constructor(name: string, handler: Handler<I, O, C>, options?: StageOptions) {
    this.#name = nonEmptyString("name", name);
    if (typeof handler !== "function") {
      throw new TypeError(`handler must be a function, got ${typeof handler}`);
    }
    this.#handler = handler;
    this.#takesContext = handler.length >= 2;
    const opts =
      optionsObject<NonNullable<typeof options>>("options", options, stageOptionKeys) ?? {};
    this.#timeout =
      opts.timeout === undefined ? undefined : positiveDuration("timeout", opts.timeout);
    this.#policy = retryPolicy(opts);
    this.#limiter = rateLimiterOption(opts.rateLimit);
    this.#breaker = circuitBreakerOption(opts.circuitBreaker);
    this.#bare =
      this.#breaker === undefined &&
      this.#limiter === undefined &&
      this.#timeout === undefined &&
      !this.#takesContext;
  }

  /**
   * The stage's name.
   * @example
   * ```ts
   * new Stage("parse", JSON.parse).name; // "parse"
   * ```
   */
  get name(): string {
    return this.#name;
  }

  /**
   * The per-attempt timeout in ms, or `undefined` for none.
   * @default undefined
   * @example
   * ```ts
   * new Stage("s", handler, { timeout: 1_000 }).timeout; // 1000
   * ```
   */
  get timeout(): number | undefined {
    return this.#timeout;
  }

  /**
   * Extra attempts after the first.
   * @default 0
   * @example
   * ```ts
   * new Stage("s", handler, { retries: 2 }).retries; // 2
   * ```
   */
  get retries(): number {
    return this.#policy.retries;
  }

  /**
   * The base wait between attempts, in ms.
   * @default 0
   * @example
   * ```ts
   * new Stage("s", handler, { retryDelay: 100 }).retryDelay; // 100
   * ```
   */
  get retryDelay(): number {
    return this.#policy.retryDelay;
  }

  /**
   * How the wait grows between attempts.
   * @default "fixed"
   * @example
   * ```ts
   * new Stage("s", handler, { backoff: "exponential" }).backoff; // "exponential"
   * ```
   */
  get backoff(): Backoff {
    return this.#policy.backoff;
  }

  /**
   * The cap on any one wait, in ms, or `undefined` for none.
   * @default undefined
   * @example
   * ```ts
   * new Stage("s", handler, { maxRetryDelay: 5_000 }).maxRetryDelay; // 5000
   * ```
   */
  get maxRetryDelay(): number | undefined {
    return this.#policy.maxRetryDelay;
  }

  /**
   * Whether waits are drawn at random from [0, delay].
   * @default false
   * @example
   * ```ts
   * new Stage("s", handler, { jitter: true }).jitter; // true
   * ```
   */
  get jitter(): boolean {
    return this.#policy.jitter;
  }

  /**
   * Runs the stage once on `value`: every attempt it needs, then the output.
   *
   * @param value - the input
   * @param options - the `context` for a handler that takes one (a new empty object when
   *   omitted) and a `signal` to cancel with
   * @returns the handler's output
   * @throws StageExecutionError (as a rejection) when the last attempt failed
   * @throws the signal's `reason` (as a rejection) when `options.signal` aborts
   * @example
   * ```ts
   * import { Stage } from "async-pipeline";
   *
   * const double = new Stage("double", async (value: number) => value * 2, { timeout: 100 });
   * await double.run(21); // 42
   * ```
   */
  async run(value: I, options?: RunOptions<C>): Promise<O> {
    const opts = optionsObject<NonNullable<typeof options>>("options", options, runOptionKeys);
    const signal = optionalSignal(opts?.signal);
    const context = optionalContext(opts?.context) ?? ({} as C);
    return this[execute](value, context, signal, true);
  }

  /**
   * The error the stage fails with when its only attempt failed with `error`.
   * @internal
   */
  [fail](error: unknown): unknown {
    // Behind a circuit breaker, `begin`'s promise is the whole execution, already mapped.
    return this.#breaker === undefined ? this.#wrap(error, 1) : error;
  }

  /** Whether the handler takes a context. @internal */
  get [readsContext](): boolean {
    return this.#takesContext;
  }

  /**
   * Runs the stage for a pipeline: returns the output itself when the handler was synchronous.
   * `race` makes a pending attempt reject as soon as `signal` aborts.
   * @internal
   */
  [execute](value: I, context: C, signal: AbortSignal | undefined, race: boolean): O | Promise<O> {
    throwIfAborted(signal);
    return this.#breaker === undefined
      ? this.#execution(value, context, signal, race)
      : this.#guarded(value, context, signal, race);
  }

  /**
   * The first attempt, raw: its output, its own promise, or a synchronous throw of what it
   * threw. Does not check `signal` first: the caller does. A failure must go through
   * {@link Stage[recover]} (or the promise through {@link Stage[settle]}). With a circuit
   * breaker, the whole execution instead, already mapped: `settle` and `recover` pass it on.
   * @internal
   */
  [begin](
    value: I,
    context: C,
    signal: AbortSignal | undefined,
    race: boolean,
  ): O | PromiseLike<O> {
    // Without `race` there is no signal to race either: the attempt is the bare call.
    if (this.#bare && !race) return (this.#handler as (value: I) => O | PromiseLike<O>)(value);
    return this.#breaker === undefined
      ? this.#attempt(value, context, signal, race, 1)
      : this.#guarded(value, context, signal, race);
  }

  /**
   * The stage's promise for a pending first attempt: its output, or its failure mapped (or
   * its retries run) by {@link Stage[recover]}.
   * @internal
   */
  [settle](
    pending: PromiseLike<O>,
    value: I,
    context: C,
    signal: AbortSignal | undefined,
    race: boolean,
  ): Promise<O> {
    return this.#breaker === undefined
      ? this.#settle(pending, value, context, signal, race)
      : Promise.resolve(pending);
  }

  /**
   * After a failed first attempt: the retries (a promise of the output), or a throw of what
   * the stage fails with (`signal.reason` when cancelled).
   * @internal
   */
  [recover](
    error: unknown,
    value: I,
    context: C,
    signal: AbortSignal | undefined,
    race: boolean,
  ): Promise<O> {
    if (this.#breaker === undefined) return this.#recover(error, value, context, signal, race);
    throwIfAborted(signal);
    throw error;
  }

  /** One whole execution, every attempt, its failure mapped. */
  #execution(value: I, context: C, signal: AbortSignal | undefined, race: boolean): O | Promise<O> {
    let result: O | PromiseLike<O>;
    try {
      result = this.#attempt(value, context, signal, race, 1);
      // Inside the try: reading `then` is user code too (a getter may throw).
      if (isThenable(result)) return this.#settle(result, value, context, signal, race);
    } catch (error) {
      return this.#recover(error, value, context, signal, race);
    }
    // A synchronous handler may have aborted the signal: cancellation wins over its output.
    if (race) throwIfAborted(signal);
    return result;
  }

  /** {@link Stage.#execution} through the circuit breaker. */
  #guarded(value: I, context: C, signal: AbortSignal | undefined, race: boolean): O | Promise<O> {
    return (this.#breaker as CircuitBreaker)[guard](this.#name, signal, this.#refuse, () =>
      this.#execution(value, context, signal, race),
    );
  }

  /** The failure of an execution the circuit breaker refused: no attempt was made. */
  readonly #refuse = (error: unknown): StageExecutionError => this.#wrap(error, 0);

  #settle(
    pending: PromiseLike<O>,
    value: I,
    context: C,
    signal: AbortSignal | undefined,
    race: boolean,
  ): Promise<O> {
    // Without retries, and with the caller owning cancellation (`race` false: the run or the
    // batch races the signal itself), a failure maps to the same error whatever the item: one
    // handler made per stage, none per call.
    return Promise.resolve(pending).then(
      undefined,
      this.#policy.retries === 0 && (!race || signal === undefined)
        ? this.#failOnce
        : (error: unknown) => this.#recover(error, value, context, signal, race),
    );
  }

  #recover(
    error: unknown,
    value: I,
    context: C,
    signal: AbortSignal | undefined,
    race: boolean,
  ): Promise<O> {
    throwIfAborted(signal);
    if (this.#policy.retries === 0) throw this.#wrap(error, 1);
    return retry(
      (attempt) => this.#attempt(value, context, signal, race, attempt),
      this.#policy,
      this.#name,
      signal,
      this.#wrap,
      { error },
    );
  }

  /** One attempt: first its turn under the rate limit, if any, then {@link Stage.#call}. */
  #attempt(
    value: I,
    context: C,
    signal: AbortSignal | undefined,
    race: boolean,
    attempt: number,
  ): O | PromiseLike<O> {
    const limiter = this.#limiter;
    if (limiter !== undefined) {
      const turn = limiter[acquire](signal);
      if (turn !== undefined) {
        return turn.then(() => {
          throwIfAborted(signal);
          return this.#call(value, context, signal, race, attempt);
        });
      }
    }
    return this.#call(value, context, signal, race, attempt);
  }

  /**
   * One attempt: calls the handler (with a fresh {@link AttemptCall} when it takes one) and,
   * when a timeout is set or the signal must be raced, guards what it returned. Nothing is
   * allocated for a plain handler with nothing to guard.
   */
  #call(
    value: I,
    context: C,
    signal: AbortSignal | undefined,
    race: boolean,
    attempt: number,
  ): O | PromiseLike<O> {
    const timeout = this.#timeout;
    const guarded = timeout !== undefined || (race && signal !== undefined);
    if (!this.#takesContext) {
      const result = (this.#handler as (value: I) => O | PromiseLike<O>)(value);
      return guarded ? guardAttempt(result, this.#name, timeout, signal, race, undefined) : result;
    }
    const call = new AttemptCall(signal, attempt, this.#name);
    let result: O | PromiseLike<O>;
    try {
      result = this.#handler(value, context, call);
      if (guarded) return guardAttempt(result, this.#name, timeout, signal, race, call);
      if (isThenable(result)) call.endWhenSettled(result);
      else call.end();
    } catch (error) {
      call.end();
      throw error;
    }
    return result;
  }
}
