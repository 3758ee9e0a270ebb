import { Retrying } from "../internal/execution.js";
import type { OptionKeys } from "../internal/known-keys.js";
import { retryPolicy } from "../internal/retry.js";
import { optionsObject } from "../internal/validate.js";
import type { Middleware } from "../middleware.js";
import { retryOptionKeys, type RetryOptions } from "../options/retry.js";
import { retryMiddlewareOptionHints } from "../internal/option-hints.js";

/**
 * Options of {@link retryMiddleware}: the stage's retry options, under the same names.
 *
 * @example
 * ```ts
 * retryMiddleware({ retries: 3, retryDelay: 200, backoff: "exponential", maxRetryDelay: 2_000, jitter: true });
 * ```
 */
export interface RetryMiddlewareOptions extends RetryOptions {
  /**
   * The old name of {@link RetryMiddlewareOptions.retryDelay}, accepted for one more release.
   * Giving both is a `TypeError`.
   * @deprecated Use `retryDelay`, the name `Stage` uses; `delay` will be removed.
   * @default 0
   * @example
   * ```ts
   * retryMiddleware({ retries: 2, retryDelay: 100 }); // formerly { retries: 2, delay: 100 }
   * ```
   */
  delay?: number | undefined;
  /**
   * The old name of {@link RetryMiddlewareOptions.maxRetryDelay}, accepted for one more
   * release. Giving both is a `TypeError`.
   * @deprecated Use `maxRetryDelay`, the name `Stage` uses; `maxDelay` will be removed.
   * @default undefined (no cap)
   * @example
   * ```ts
   * retryMiddleware({ retries: 8, retryDelay: 100, backoff: "exponential", maxRetryDelay: 5_000 });
   * ```
   */
  maxDelay?: number | undefined;
}

/** The keys of {@link RetryMiddlewareOptions}; any other key is rejected. */
const retryMiddlewareOptionKeys = {
  ...retryOptionKeys,
  // The deprecated aliases, accepted for one more release.
  // eslint-disable-next-line @typescript-eslint/no-deprecated
  delay: true,
  // eslint-disable-next-line @typescript-eslint/no-deprecated
  maxDelay: true,
} as const satisfies OptionKeys<RetryMiddlewareOptions>;

/**
 * Retries the rest of the chain (the inner middlewares and the stage, with all of the stage's
 * own attempts) with the same rules, the same option names and the same code as a stage's
 * `retries`: backoff, cap, jitter, `shouldRetry`, `onRetry`, and no retry once the signal has
 * aborted. When every run fails, the last error is rethrown as it is (usually the stage's
 * `StageExecutionError`).
 *
 * @default retries: 0, retryDelay: 0, backoff: "fixed"
 * @throws RangeError or TypeError for a bad option, when called
 * @example
 * ```ts
 * import { Pipeline, Stage } from "async-pipeline";
 * import { retryMiddleware } from "async-pipeline/middlewares";
 *
 * const pipeline = new Pipeline([new Stage("fetch", fetchJson)], {
 *   middlewares: [retryMiddleware({ retries: 3, retryDelay: 200, backoff: "exponential" })],
 * });
 * ```
 */
export function retryMiddleware(options: RetryMiddlewareOptions = {}): Middleware<object> {
  optionsObject("options", options, retryMiddlewareOptionKeys, retryMiddlewareOptionHints);
  const [retryDelay, retryDelayLabel] = aliased(options, "retryDelay", "delay");
  const [maxRetryDelay, maxRetryDelayLabel] = aliased(options, "maxRetryDelay", "maxDelay");
  const policy = retryPolicy(
    {
      retries: options.retries,
      retryDelay,
      backoff: options.backoff,
      maxRetryDelay,
      jitter: options.jitter,
      shouldRetry: options.shouldRetry,
      onRetry: options.onRetry,
      retryAfter: options.retryAfter,
    },
    { retryDelay: retryDelayLabel, maxRetryDelay: maxRetryDelayLabel },
  );
  return (next, stageName, value, _context, signal) =>
    new Retrying(() => next(value), policy, stageName, rethrow).run(value, undefined, signal);
}

/**
 * An option under its name or its deprecated alias (not both): its value, and the name it was
 * given under, for the messages.
 */
function aliased(
  options: RetryMiddlewareOptions,
  name: "retryDelay" | "maxRetryDelay",
  alias: "delay" | "maxDelay",
): [unknown, string] {
  const value = options[name];
  const old = options[alias];
  if (old === undefined) return [value, name];
  if (value !== undefined) {
    throw new TypeError(`give ${name} or its deprecated alias ${alias}, not both`);
  }
  return [old, alias];
}

function rethrow(error: unknown): unknown {
  return error;
}
