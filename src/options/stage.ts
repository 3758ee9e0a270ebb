import type { CircuitBreaker } from "../flow/circuit-breaker.js";
import type { RateLimiter, RateLimitOptions } from "../flow/rate-limiter.js";
import type { KeyHints, OptionKeys } from "../internal/known-keys.js";
import { stageOptionHints } from "../internal/option-hints.js";
import { retryOptionKeys, type RetryOptions } from "./retry.js";

/**
 * How a stage times out, retries and limits its calls. Every option is checked when the stage is built: a bad
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
export interface StageOptions extends RetryOptions {
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
   * A limit on attempt starts: a {@link RateLimiter} (shared with every stage given the same
   * one), `{ limit, interval }` for a limiter of this stage's own, or an array of limiters that
   * must all grant an attempt (it takes its cost in every one at once, holds nothing in any
   * while it waits, and waits in each one's queue in order; `[]` is no limit). Each attempt,
   * retries included, waits for its turn and counts when its handler is called; the `timeout`
   * starts then too. The handler may correct what an attempt cost with `call.charge`.
   * @default undefined (no limit)
   * @example
   * ```ts
   * import { RateLimiter, Stage } from "async-pipeline";
   *
   * const api = new RateLimiter({ limit: 10, interval: 1_000 });
   * const tokens = new RateLimiter({ limit: 90_000, interval: 60_000, cost: (text: string) => text.length / 4 });
   * new Stage("fetch", fetchJson, { rateLimit: api, timeout: 5_000 });
   * new Stage("ping", fetchJson, { rateLimit: { limit: 1, interval: 60_000 } });
   * new Stage("ask", askModel, { rateLimit: [api, tokens] }); // both must grant each attempt
   * ```
   */
  rateLimit?: RateLimiter | RateLimitOptions | readonly RateLimiter[] | undefined;
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
export const stageOptionKeys = {
  timeout: true,
  ...retryOptionKeys,
  rateLimit: true,
  circuitBreaker: true,
} as const satisfies OptionKeys<StageOptions>;

/** Hints for an unknown key of a `Stage`'s options: a `Pipeline` option is named as one. */
export const stageHints: KeyHints = stageOptionHints;
