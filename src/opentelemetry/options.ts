import { trace, type Tracer } from "@opentelemetry/api";
import type { KeyHints, OptionKeys } from "../internal/known-keys.js";
import {
  openTelemetryMiddlewareOptionHints,
  openTelemetryRunSpanOptionHints,
  tracedRunOptionHints,
} from "../internal/option-hints.js";
import type { OpenTelemetryMiddlewareOptions } from "./middleware.js";
import type { RunSpanOptions } from "./run.js";
import { nonEmptyString, optionsObject, show } from "../internal/validate.js";

/** The tracer name used when no `tracer` is given, as in the Python library. */
export const DEFAULT_TRACER_NAME = "async_pipeline";

/** The keys of {@link OpenTelemetryMiddlewareOptions}. */
export const middlewareOptionKeys = {
  tracer: true,
  tracerName: true,
  spanPrefix: true,
} as const satisfies OptionKeys<OpenTelemetryMiddlewareOptions>;

/** The keys of {@link RunSpanOptions}. */
export const runSpanOptionKeys = {
  tracer: true,
  tracerName: true,
  spanName: true,
  attributes: true,
} as const satisfies OptionKeys<RunSpanOptions>;

/** Hints for `openTelemetryMiddleware`'s options: a run-span key points at `openTelemetryRunSpan`. */
export const middlewareHints: KeyHints = {
  ...openTelemetryMiddlewareOptionHints,
  siblings: { openTelemetryRunSpan: runSpanOptionKeys },
};

/** Hints for `openTelemetryRunSpan`'s options: a middleware key points at the middleware. */
export const runSpanHints: KeyHints = {
  ...openTelemetryRunSpanOptionHints,
  siblings: { openTelemetryMiddleware: middlewareOptionKeys },
};

/** Hints for `tracedRun`'s options. */
export const tracedRunHints: KeyHints = {
  ...tracedRunOptionHints,
  siblings: { openTelemetryMiddleware: middlewareOptionKeys },
};

/** An options bag (or any record option): `{}` when not given, else a non-null object. */
export function optionsBag<T extends object>(
  name: string,
  value: T | undefined,
  known?: object,
  hints?: KeyHints,
): Partial<T> {
  return optionsObject<T>(name, value, known, hints) ?? {};
}

/** The tracer to use: `tracer` when given, else the global provider's tracer named `tracerName`. */
export function resolveTracer(tracer: unknown, tracerName: unknown): Tracer {
  if (tracer !== undefined) {
    if (
      typeof tracer !== "object" ||
      tracer === null ||
      typeof (tracer as Partial<Tracer>).startSpan !== "function"
    ) {
      throw new TypeError(`tracer must be an OpenTelemetry Tracer, got ${show(tracer)}`);
    }
    return tracer as Tracer;
  }
  return trace.getTracer(
    tracerName === undefined ? DEFAULT_TRACER_NAME : nonEmptyString("tracerName", tracerName),
  );
}
