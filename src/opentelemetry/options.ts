import { trace, type Tracer } from "@opentelemetry/api";

/** The tracer name used when no `tracer` is given, as in the Python library. */
export const DEFAULT_TRACER_NAME = "async_pipeline";

/** An options bag (or any record option): `undefined` or a non-null object. */
export function optionsBag<T extends object>(name: string, value: T | undefined): Partial<T> {
  if (value === undefined) return {};
  if (typeof value !== "object" || (value as unknown) === null) {
    throw new TypeError(`${name} must be an object, got ${describe(value)}`);
  }
  return value;
}

/** The tracer to use: `tracer` when given, else the global provider's tracer named `tracerName`. */
export function resolveTracer(tracer: unknown, tracerName: unknown): Tracer {
  if (tracer !== undefined) {
    if (
      typeof tracer !== "object" ||
      tracer === null ||
      typeof (tracer as Partial<Tracer>).startSpan !== "function"
    ) {
      throw new TypeError(`tracer must be an OpenTelemetry Tracer, got ${describe(tracer)}`);
    }
    return tracer as Tracer;
  }
  return trace.getTracer(
    tracerName === undefined ? DEFAULT_TRACER_NAME : nonEmptyString("tracerName", tracerName),
  );
}

/** A string option; `fallback` when not given. */
export function stringOption(name: string, value: unknown, fallback: string): string {
  if (value === undefined) return fallback;
  if (typeof value !== "string") {
    throw new TypeError(`${name} must be a string, got ${describe(value)}`);
  }
  return value;
}

/** A non-empty string option. */
export function nonEmptyString(name: string, value: unknown): string {
  const text = stringOption(name, value, "");
  if (text === "") throw new RangeError(`${name} must not be empty`);
  return text;
}

function describe(value: unknown): string {
  switch (typeof value) {
    case "string":
      return JSON.stringify(value);
    case "bigint":
      return `${value.toString()}n`;
    case "symbol":
      return value.toString();
    case "function":
      return "a function";
    case "object":
      if (value === null) return "null";
      return Array.isArray(value) ? "an array" : "an object";
    case "number":
    case "boolean":
    case "undefined":
      return String(value);
  }
}
