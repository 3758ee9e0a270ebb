import { timed } from "../internal/execution.js";
import { AttemptCall } from "../internal/call.js";
import type { OptionKeys } from "../internal/known-keys.js";
import { optionsObject, positiveDuration } from "../internal/validate.js";
import type { Middleware } from "../middleware.js";
import { timeoutMiddlewareOptionHints } from "../internal/option-hints.js";

/**
 * Options of {@link timeoutMiddleware}.
 *
 * @example
 * ```ts
 * timeoutMiddleware({ timeout: 1_000 });
 * ```
 */
export interface TimeoutMiddlewareOptions {
  /**
   * Milliseconds the rest of the chain may take, greater than 0.
   * @example
   * ```ts
   * timeoutMiddleware({ timeout: 2_500 });
   * ```
   */
  timeout: number;
}

/** The keys of {@link TimeoutMiddlewareOptions}; any other key is rejected. */
const timeoutMiddlewareOptionKeys = {
  timeout: true,
} as const satisfies OptionKeys<TimeoutMiddlewareOptions>;

/**
 * Bounds the rest of the chain (the inner middlewares and the stage, with all of its attempts)
 * with the same code as a stage's `timeout`: past the limit it rejects with a `TimeoutError`,
 * and the signal it passed down aborts with that error, so the handler's `call.signal` aborts
 * too. A synchronous result is never timed out.
 *
 * @throws RangeError or TypeError for a bad `timeout`, when called
 * @example
 * ```ts
 * import { Pipeline, Stage } from "async-pipeline";
 * import { timeoutMiddleware } from "async-pipeline/middlewares";
 *
 * const pipeline = new Pipeline([new Stage("fetch", fetchJson, { retries: 5 })], {
 *   middlewares: [timeoutMiddleware({ timeout: 10_000 })], // 10 s for all five retries together
 * });
 * ```
 */
export function timeoutMiddleware(options: TimeoutMiddlewareOptions): Middleware<object> {
  if (typeof options !== "object" || (options as unknown) === null) {
    throw new TypeError("options must be an object with a timeout");
  }
  optionsObject("options", options, timeoutMiddlewareOptionKeys, timeoutMiddlewareOptionHints);
  const timeout = positiveDuration("timeout", options.timeout);
  return (next, stageName, value, _context, signal) => {
    const call = new AttemptCall(signal, 1, stageName);
    return timed(next(value, call.signal), stageName, timeout, signal, call);
  };
}
