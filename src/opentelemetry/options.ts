import { trace, type Tracer } from "@opentelemetry/api";
import { nonEmptyString, optionsObject, show } from "../internal/validate.js";

/** The tracer name used when no `tracer` is given, as in the Python library. */
export const DEFAULT_TRACER_NAME = "async_pipeline";

/** An options bag (or any record option): `{}` when not given, else a non-null object. */
export function optionsBag<T extends object>(
  name: string,
  value: T | undefined,
  known?: object,
): Partial<T> {
  return optionsObject<T>(name, value, known) ?? {};
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
