import { context as otelContext, type Span, type Tracer } from "@opentelemetry/api";
import type { Middleware } from "../middleware.js";
import { INPUT_TYPE, STAGE_NAME, traceAttributesOf, typeName } from "./attributes.js";
import { optionalString } from "../internal/validate.js";
import { middlewareHints, middlewareOptionKeys, optionsBag, resolveTracer } from "./options.js";
import { runInSpan } from "./span.js";

/**
 * The context shape the OpenTelemetry entry point reads: the simple values (`string`, `number`,
 * `boolean`) of `traceAttributes` are copied onto every span of the run; anything else there is
 * skipped.
 *
 * @example
 * ```ts
 * import type { TraceAttributesContext } from "async-pipeline/opentelemetry";
 *
 * const context: TraceAttributesContext = { traceAttributes: { "tenant.id": "acme", retry: false } };
 * await pipeline.run(input, { context });
 * ```
 */
export interface TraceAttributesContext {
  /**
   * Attributes for every span of the run. Read when each span starts (so samplers see them) and
   * again when it ends (so a value a stage sets lands on that stage's span too). The library's
   * own `async_pipeline.*` attributes win over a key of the same name.
   * @default undefined (no extra attributes)
   * @example
   * ```ts
   * const context: TraceAttributesContext = { traceAttributes: { "request.id": requestId } };
   * ```
   */
  traceAttributes?: Record<string, unknown> | undefined;
}

/**
 * Options of {@link openTelemetryMiddleware}.
 *
 * @example
 * ```ts
 * import { openTelemetryMiddleware } from "async-pipeline/opentelemetry";
 *
 * openTelemetryMiddleware({ tracerName: "checkout", spanPrefix: "checkout.stage" });
 * ```
 */
export interface OpenTelemetryMiddlewareOptions {
  /**
   * The tracer that starts the spans. When omitted, the global tracer provider's tracer named
   * `tracerName` is used (looked up once; a provider registered later is still honoured).
   * @default trace.getTracer(tracerName)
   * @example
   * ```ts
   * import { trace } from "@opentelemetry/api";
   * import { openTelemetryMiddleware } from "async-pipeline/opentelemetry";
   *
   * openTelemetryMiddleware({ tracer: trace.getTracer("checkout", "1.4.0") });
   * ```
   */
  tracer?: Tracer | undefined;
  /**
   * The instrumentation scope name of the global tracer, when no `tracer` is given: a
   * non-empty string.
   * @default "async_pipeline"
   * @example
   * ```ts
   * import { openTelemetryMiddleware } from "async-pipeline/opentelemetry";
   *
   * openTelemetryMiddleware({ tracerName: "checkout" });
   * ```
   */
  tracerName?: string | undefined;
  /**
   * Each span is named `${spanPrefix}.${stageName}`; an empty prefix names it after the stage
   * alone.
   * @default "pipeline.stage"
   * @example
   * ```ts
   * import { openTelemetryMiddleware } from "async-pipeline/opentelemetry";
   *
   * openTelemetryMiddleware({ spanPrefix: "etl" }); // spans "etl.extract", "etl.load", …
   * ```
   */
  spanPrefix?: string | undefined;
}

/**
 * Traces each stage execution with one OpenTelemetry span, named `${spanPrefix}.${stageName}`
 * and made the active span while the stage runs, so the spans a handler creates (an
 * instrumented `fetch`, a database call) nest under it. A span active when the stage starts (a
 * `tracedRun` span, an HTTP server span) becomes its parent.
 *
 * - Attributes: `async_pipeline.stage.name`, `async_pipeline.input.type`, and on success
 *   `async_pipeline.output.type` (`"string"`, `"number"`, `"Array"`, `"Map"`, a class name, …),
 *   plus the simple values of `context.traceAttributes`.
 * - Success: status OK.
 * - Failure: the exception recorded, `async_pipeline.error`, `async_pipeline.error.type` and
 *   `async_pipeline.error.message`, status ERROR with the message; the same error is rethrown.
 * - Cancellation (the error is the abort reason of the signal the middleware received):
 *   `async_pipeline.cancelled = true` and an `async_pipeline.cancelled` event, status left
 *   unset; the reason is rethrown.
 *
 * Put it first in the list so that one span covers the whole chain and every attempt: a stage's
 * retries, and those of a `retryMiddleware` placed after it, happen inside the span (pass
 * `recordRetry` as their `onRetry` to see them as events). A middleware placed before it that
 * calls `next` several times gets one span per call. Tracing never changes a stage's outcome:
 * a tracer that throws is ignored.
 *
 * Nesting needs a context manager, as for any OpenTelemetry instrumentation in Node:
 * `@opentelemetry/sdk-node` registers one, or register `AsyncHooksContextManager` from
 * `@opentelemetry/context-async-hooks` yourself.
 *
 * @default tracerName: "async_pipeline", spanPrefix: "pipeline.stage"
 * @throws TypeError or RangeError for a bad option, when called
 * @example
 * ```ts
 * import { Pipeline, Stage } from "async-pipeline";
 * import { openTelemetryMiddleware } from "async-pipeline/opentelemetry";
 *
 * const pipeline = new Pipeline([new Stage("double", async (n: number) => n * 2)], {
 *   middlewares: [openTelemetryMiddleware()],
 * });
 * await pipeline.run(21, { context: { traceAttributes: { "tenant.id": "acme" } } });
 * // one span "pipeline.stage.double": async_pipeline.stage.name = "double",
 * // async_pipeline.input.type = "number", async_pipeline.output.type = "number", tenant.id = "acme"
 * ```
 */
export function openTelemetryMiddleware(
  options: OpenTelemetryMiddlewareOptions = {},
): Middleware<object> {
  const opts = optionsBag("options", options, middlewareOptionKeys, middlewareHints);
  const spanPrefix = optionalString("spanPrefix", opts.spanPrefix, "pipeline.stage");
  const tracer = resolveTracer(opts.tracer, opts.tracerName);
  const prefix = spanPrefix === "" ? "" : `${spanPrefix}.`;
  return (next, stageName, value, context, signal) => {
    const base = { [STAGE_NAME]: stageName, [INPUT_TYPE]: typeName(value) };
    let span: Span;
    try {
      span = tracer.startSpan(
        prefix + stageName,
        { attributes: { ...traceAttributesOf(context), ...base } },
        otelContext.active(),
      );
    } catch {
      // A faulty tracer: run the stage untraced rather than fail it.
      return next(value);
    }
    return runInSpan(span, base, context, signal, () => next(value));
  };
}
