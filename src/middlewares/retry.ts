import { optionsObject } from "../internal/validate.js";
import type { Middleware } from "../middleware.js";
import { retry, retryPolicy, type OnRetry, type ShouldRetry } from "../internal/retry.js";
import type { Backoff } from "../types.js";

/**
 * Options of {@link retryMiddleware}: the stage's retry options under shorter names.
 *
 * @example
 * ```ts
 * retryMiddleware({ retries: 3, delay: 200, backoff: "exponential", maxDelay: 2_000, jitter: true });
 * ```
 */
export interface RetryMiddlewareOptions {
  /**
   * Extra runs of the inner chain after the first: an integer ≥ 0.
   * @default 0
   * @example
   * ```ts
   * retryMiddleware({ retries: 2 });
   * ```
   */
  retries?: number | undefined;
  /**
   * Milliseconds to wait after a failure, ≥ 0; `0` sets no timer.
   * @default 0
   * @example
   * ```ts
   * retryMiddleware({ retries: 2, delay: 100 });
   * ```
   */
  delay?: number | undefined;
  /**
   * `"fixed"` or `"exponential"` (`delay × 2^(failure − 1)`).
   * @default "fixed"
   * @example
   * ```ts
   * retryMiddleware({ retries: 3, delay: 100, backoff: "exponential" });
   * ```
   */
  backoff?: Backoff | undefined;
  /**
   * Milliseconds cap on any one wait, applied before jitter.
   * @default undefined (no cap)
   * @example
   * ```ts
   * retryMiddleware({ retries: 8, delay: 100, backoff: "exponential", maxDelay: 5_000 });
   * ```
   */
  maxDelay?: number | undefined;
  /**
   * Draw each wait uniformly from [0, capped delay].
   * @default false
   * @example
   * ```ts
   * retryMiddleware({ retries: 3, delay: 1_000, jitter: true });
   * ```
   */
  jitter?: boolean | undefined;
  /**
   * `(error, attempt) => boolean | Promise<boolean>`, awaited; `false` or a throw stops
   * retrying and rethrows that error.
   * @default retry every error
   * @example
   * ```ts
   * retryMiddleware({ retries: 3, shouldRetry: (error) => !(error instanceof TypeError) });
   * ```
   */
  shouldRetry?: ShouldRetry | undefined;
  /**
   * Told `{ stageName, error, attempt, delay }` (frozen) before each wait; not awaited,
   * failures ignored.
   * @default undefined
   * @example
   * ```ts
   * retryMiddleware({ retries: 3, onRetry: ({ stageName, attempt }) => console.warn(stageName, attempt) });
   * ```
   */
  onRetry?: OnRetry | undefined;
}

/**
 * Retries the rest of the chain (the inner middlewares and the stage, with all of the stage's
 * own attempts) with the same rules and the same code as a stage's `retries`: backoff, cap,
 * jitter, `shouldRetry`, `onRetry`, and no retry once the signal has aborted. When every run
 * fails, the last error is rethrown as it is (usually the stage's `StageExecutionError`).
 *
 * @default retries: 0, delay: 0, backoff: "fixed"
 * @throws RangeError or TypeError for a bad option, when called
 * @example
 * ```ts
 * import { Pipeline, Stage } from "async-pipeline";
 * import { retryMiddleware } from "async-pipeline/middlewares";
 *
 * const pipeline = new Pipeline([new Stage("fetch", fetchJson)], {
 *   middlewares: [retryMiddleware({ retries: 3, delay: 200, backoff: "exponential" })],
 * });
 * ```
 */
export function retryMiddleware(options: RetryMiddlewareOptions = {}): Middleware<object> {
  optionsObject("options", options);
  const policy = retryPolicy(
    {
      retries: options.retries,
      retryDelay: options.delay,
      backoff: options.backoff,
      maxRetryDelay: options.maxDelay,
      jitter: options.jitter,
      shouldRetry: options.shouldRetry,
      onRetry: options.onRetry,
    },
    { retryDelay: "delay", maxRetryDelay: "maxDelay" },
  );
  return (next, stageName, value, _context, signal) =>
    retry(() => next(value), policy, stageName, signal, rethrow);
}

function rethrow(error: unknown): unknown {
  return error;
}
