/**
 * OpenTelemetry tracing for `async-pipeline`: one span per stage, an optional span per run, and
 * retries and the changes of an adaptive concurrency recorded as span events. Needs
 * `@opentelemetry/api` (an optional peer dependency: the core entry point never loads it).
 *
 * @example
 * ```ts
 * import {
 *   openTelemetryMiddleware,
 *   recordConcurrencyChange,
 *   recordRetry,
 *   tracedRun,
 * } from "async-pipeline/opentelemetry";
 * ```
 *
 * @packageDocumentation
 */

export { openTelemetryMiddleware } from "./middleware.js";
export type { OpenTelemetryMiddlewareOptions, TraceAttributesContext } from "./middleware.js";
export { openTelemetryRunSpan, tracedRun } from "./run.js";
export type { Runnable, RunSpanOptions, TracedRunOptions } from "./run.js";
export { recordRetry } from "./retry.js";
export { recordConcurrencyChange } from "./concurrency.js";
export type { Middleware, Next } from "../middleware.js";
export type { RunWrapper } from "../options/pipeline.js";
export type { RetryEvent, RunOptions } from "../types.js";
// Not exported on purpose: the attribute-name constants and the helpers that read types,
// errors and `traceAttributes`. The names are documented in the README.
