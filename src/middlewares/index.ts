/**
 * Built-in middlewares for `async-pipeline`: logging, timing, retry and timeout.
 *
 * @example
 * ```ts
 * import { loggingMiddleware, timingMiddleware } from "async-pipeline/middlewares";
 * ```
 *
 * @packageDocumentation
 */

export { loggingMiddleware } from "./logging.js";
export type { LogFields, Logger, LoggingOptions } from "./logging.js";
export { timingMiddleware } from "./timing.js";
export type { TimingContext } from "./timing.js";
export { retryMiddleware } from "./retry.js";
export type { RetryMiddlewareOptions } from "./retry.js";
export { timeoutMiddleware } from "./timeout.js";
export type { TimeoutMiddlewareOptions } from "./timeout.js";
export type { Middleware, Next } from "../middleware.js";
