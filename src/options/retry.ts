import type { RetryAfter } from "../flow/retry-after.js";
import type { OptionKeys } from "../internal/known-keys.js";
import type { Backoff, OnRetry, ShouldRetry } from "../types.js";

/**
 * How failed attempts are retried: how many, how long to wait between them, and which errors
 * are worth another try. The options of a {@link Stage}'s own retries and of
 * `retryMiddleware`, which take them under the same names and with the same rules. Every
 * option is checked when the stage (or middleware) is built: a bad value throws a
 * `RangeError` or `TypeError` that names it.
 *
 * @example
 * ```ts
 * import { Stage } from "async-pipeline";
 *
 * new Stage("fetchPage", download, {
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
export interface RetryOptions {
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
   * of the backoff: for a server's `Retry-After` (see `parseRetryAfter`, from `async-pipeline`). A finite
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
}

/**
 * The keys of {@link RetryOptions}, shared by the option-key lists of `Stage` and
 * `retryMiddleware`: a new retry option goes here, and both take it.
 */
export const retryOptionKeys = {
  retries: true,
  retryDelay: true,
  backoff: true,
  maxRetryDelay: true,
  jitter: true,
  shouldRetry: true,
  onRetry: true,
  retryAfter: true,
} as const satisfies OptionKeys<RetryOptions>;
