import {
  context as otelContext,
  type Attributes,
  type Span,
  type Tracer,
} from "@opentelemetry/api";
import type { RunWrapper } from "../options/pipeline.js";
import { INPUT_TYPE, traceAttributesOf, typeName } from "./attributes.js";
import { nonEmptyString } from "../internal/validate.js";
import type { OptionKeys } from "../internal/known-keys.js";
import { runOptionKeys, type Context, type RunOptions } from "../types.js";
import {
  optionsBag,
  resolveTracer,
  runSpanHints,
  runSpanOptionKeys,
  tracedRunHints,
} from "./options.js";
import { runInSpan } from "./span.js";

/**
 * What {@link tracedRun} runs: anything with a `run(input, { context, signal })` method that
 * returns a promise, such as a `Pipeline` or a `Stage`.
 *
 * @typeParam I - the input type
 * @typeParam O - the output type
 * @typeParam C - the context type
 * @example
 * ```ts
 * import { Stage } from "async-pipeline";
 * import type { Runnable } from "async-pipeline/opentelemetry";
 *
 * const runnable: Runnable<number, number> = new Stage("double", (n: number) => n * 2);
 * ```
 */
export interface Runnable<I, O, C extends object = Context> {
  /**
   * Runs on `input` with the given context and signal.
   * @example
   * ```ts
   * await runnable.run(1, { context: {}, signal: AbortSignal.timeout(1_000) });
   * ```
   */
  run(input: I, options?: RunOptions<C>): Promise<O>;
}

/**
 * Options of {@link tracedRun}: the run's own `context` and `signal`, and how to name and
 * record the run span.
 *
 * @example
 * ```ts
 * import { tracedRun } from "async-pipeline/opentelemetry";
 *
 * await tracedRun(pipeline, input, {
 *   context: { traceAttributes: { "order.id": orderId } },
 *   signal: AbortSignal.timeout(30_000),
 *   spanName: "checkout",
 *   attributes: { "pipeline.name": "checkout" },
 * });
 * ```
 */
export interface TracedRunOptions<C extends object = Context>
  extends RunOptions<C>, RunSpanOptions {}

/**
 * How a run span is named and recorded: the options of {@link openTelemetryRunSpan}, and the
 * span half of {@link TracedRunOptions}.
 *
 * @example
 * ```ts
 * import { openTelemetryRunSpan } from "async-pipeline/opentelemetry";
 *
 * openTelemetryRunSpan({ spanName: "orders.import", attributes: { "pipeline.name": "orders" } });
 * ```
 */
export interface RunSpanOptions {
  /**
   * The tracer that starts the run span. When omitted, the global tracer provider's tracer
   * named `tracerName` is used.
   * @default trace.getTracer(tracerName)
   * @example
   * ```ts
   * import { trace } from "@opentelemetry/api";
   * import { tracedRun } from "async-pipeline/opentelemetry";
   *
   * await tracedRun(pipeline, input, { tracer: trace.getTracer("checkout") });
   * ```
   */
  tracer?: Tracer | undefined;
  /**
   * The instrumentation scope name of the global tracer, when no `tracer` is given: a
   * non-empty string.
   * @default "async_pipeline"
   * @example
   * ```ts
   * import { tracedRun } from "async-pipeline/opentelemetry";
   *
   * await tracedRun(pipeline, input, { tracerName: "checkout" });
   * ```
   */
  tracerName?: string | undefined;
  /**
   * The run span's name: a non-empty string.
   * @default "pipeline.run"
   * @example
   * ```ts
   * import { tracedRun } from "async-pipeline/opentelemetry";
   *
   * await tracedRun(pipeline, input, { spanName: "import-order" });
   * ```
   */
  spanName?: string | undefined;
  /**
   * Extra attributes for the run span, such as the pipeline's name. The library's own
   * `async_pipeline.*` attributes win over a key of the same name.
   * @default {}
   * @example
   * ```ts
   * import { tracedRun } from "async-pipeline/opentelemetry";
   *
   * await tracedRun(pipeline, input, { attributes: { "pipeline.name": "orders" } });
   * ```
   */
  attributes?: Attributes | undefined;
}

const tracedRunOptionKeys = {
  ...runSpanOptionKeys,
  ...runOptionKeys,
} as const satisfies OptionKeys<TracedRunOptions>;

/**
 * Runs `pipeline.run(input, { context, signal })` inside one "run span", made the active span
 * for the whole run: the stage spans of {@link openTelemetryMiddleware} (and any span a hook or
 * handler creates) nest under it, so every stage of the run shares one trace. A span active
 * when `tracedRun` is called (an HTTP server span) becomes its parent.
 *
 * The run span gets `async_pipeline.input.type`, on success `async_pipeline.output.type`, the
 * simple values of `context.traceAttributes` and `options.attributes`, and records the outcome
 * as a stage span does: status OK, or the exception and status ERROR, or
 * `async_pipeline.cancelled` when `options.signal` aborted the run. The promise resolves or
 * rejects exactly as `pipeline.run` does, with the same value or error.
 *
 * Works with anything that has a `run` method of that shape: a `Pipeline`, a `Stage`.
 *
 * @param pipeline - what to run: a `Pipeline` or a `Stage`
 * @param input - the run's input
 * @param options - the run's `context` and `signal`, and the span's `spanName`, `attributes`,
 *   `tracer` or `tracerName`
 * @returns the run's output
 * @throws TypeError or RangeError (as a rejection) for a bad argument
 * @default spanName: "pipeline.run", tracerName: "async_pipeline"
 * @example
 * ```ts
 * import { Pipeline, Stage } from "async-pipeline";
 * import { openTelemetryMiddleware, tracedRun } from "async-pipeline/opentelemetry";
 *
 * const pipeline = new Pipeline(
 *   [new Stage("parse", (line: string) => Number(line)), new Stage("double", (n: number) => n * 2)],
 *   { middlewares: [openTelemetryMiddleware()] },
 * );
 * await tracedRun(pipeline, "21"); // 42
 * // "pipeline.run"
 * //   ├─ "pipeline.stage.parse"
 * //   └─ "pipeline.stage.double"
 * ```
 */
export async function tracedRun<I, O, C extends object = Context>(
  pipeline: Runnable<I, O, C>,
  input: I,
  options?: TracedRunOptions<C>,
): Promise<O> {
  if (
    typeof pipeline !== "object" ||
    (pipeline as unknown) === null ||
    typeof (pipeline as Partial<Runnable<I, O, C>>).run !== "function"
  ) {
    throw new TypeError("pipeline must be a Pipeline or a Stage (an object with a run method)");
  }
  const opts = optionsBag("options", options, tracedRunOptionKeys, tracedRunHints);
  const { context, signal } = opts;
  return (await runSpanWrapper(opts)(
    () => pipeline.run(input, { context, signal }),
    input,
    context,
    signal,
  )) as O;
}

/**
 * A run span for every run of a pipeline, items of `map`, `mapSettled` and `stream`
 * included: give it as the pipeline's `aroundRun` option. Each run (each item) gets one span,
 * made active while it runs, so that its stage spans share one trace and concurrent items
 * never mix. The span is named, attributed and ended as {@link tracedRun}'s is.
 *
 * @param options - the span's `spanName`, `attributes`, `tracer` or `tracerName`
 * @returns an `aroundRun` wrapper
 * @throws TypeError or RangeError for a bad option, when called
 * @default spanName: "pipeline.run", tracerName: "async_pipeline"
 * @example
 * ```ts
 * import { Pipeline, Stage } from "async-pipeline";
 * import { openTelemetryMiddleware, openTelemetryRunSpan } from "async-pipeline/opentelemetry";
 *
 * const pipeline = new Pipeline(
 *   [new Stage("parse", (line: string) => Number(line)), new Stage("double", (n: number) => n * 2)],
 *   { middlewares: [openTelemetryMiddleware()], aroundRun: openTelemetryRunSpan() },
 * );
 * await pipeline.map(["1", "2"], 2);
 * // "pipeline.run" ─ "pipeline.stage.parse", "pipeline.stage.double"   (one trace per item)
 * ```
 */
export function openTelemetryRunSpan(options?: RunSpanOptions): RunWrapper<object> {
  return runSpanWrapper(optionsBag("options", options, runSpanOptionKeys, runSpanHints));
}

/**
 * Validates the span options once and returns the wrapper that opens a span per run. Its
 * context may be `undefined`: `tracedRun` leaves the context to the pipeline when none is given.
 */
function runSpanWrapper(
  options: Partial<RunSpanOptions>,
): (
  run: () => Promise<unknown>,
  input: unknown,
  context: unknown,
  signal: AbortSignal | undefined,
) => Promise<unknown> {
  const spanName =
    options.spanName === undefined ? "pipeline.run" : nonEmptyString("spanName", options.spanName);
  const tracer = resolveTracer(options.tracer, options.tracerName);
  const extra = optionsBag("attributes", options.attributes);
  return (run, input, context, signal) => {
    const base: Attributes = { ...extra, [INPUT_TYPE]: typeName(input) };
    let span: Span;
    try {
      span = tracer.startSpan(
        spanName,
        { attributes: { ...traceAttributesOf(context), ...base } },
        otelContext.active(),
      );
    } catch {
      // A faulty tracer: run untraced rather than fail.
      return run();
    }
    return runInSpan(span, base, context, signal, run);
  };
}
