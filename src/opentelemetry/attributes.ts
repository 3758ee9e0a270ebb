import type { Attributes, Exception } from "@opentelemetry/api";

// Attribute and event names, shared by the stage spans, the run span and the retry events.
// They are the Python library's names (`async_pipeline.*`) plus the ones this port adds.

/** The stage's name, on every stage span and retry event. */
export const STAGE_NAME = "async_pipeline.stage.name";
/** The type of the value a stage (or a run) received, see {@link typeName}. */
export const INPUT_TYPE = "async_pipeline.input.type";
/** The type of the value a stage (or a run) returned; set on success only. */
export const OUTPUT_TYPE = "async_pipeline.output.type";
/** `true` on a span whose stage (or run) failed. */
export const ERROR = "async_pipeline.error";
/** The failure's type: its `name` for an `Error`, else {@link typeName}. */
export const ERROR_TYPE = "async_pipeline.error.type";
/** The failure's message. */
export const ERROR_MESSAGE = "async_pipeline.error.message";
/** `true` on a span whose stage (or run) was cancelled by the caller's signal. */
export const CANCELLED = "async_pipeline.cancelled";
/** The event added when the caller's signal cancels a stage (or a run). */
export const CANCELLED_EVENT = "async_pipeline.cancelled";
/** The abort reason's type, on the cancellation event. */
export const CANCEL_REASON_TYPE = "async_pipeline.cancel.reason.type";
/** The abort reason's message, on the cancellation event. */
export const CANCEL_REASON_MESSAGE = "async_pipeline.cancel.reason.message";
/** The event `recordRetry` adds before each wait between attempts. */
export const RETRY_EVENT = "async_pipeline.retry";
/** The number of the attempt that failed, counting from 1, on a retry event. */
export const RETRY_ATTEMPT = "async_pipeline.retry.attempt";
/** The wait before the next attempt, in ms, on a retry event. */
export const RETRY_DELAY = "async_pipeline.retry.delay";

/** The event `recordConcurrencyChange` adds each time an adaptive limit changes. */
export const CONCURRENCY_EVENT = "async_pipeline.concurrency.change";
/** The new limit, on a concurrency event; on the span, the batch's limit last recorded. */
export const CONCURRENCY_LIMIT = "async_pipeline.concurrency.limit";
/** The key whose limit changed (`perKey`), on a concurrency event, when it is a simple value. */
export const CONCURRENCY_KEY = "async_pipeline.concurrency.key";

/**
 * A short name for a value's type, the counterpart of Python's `type(value).__name__`: `"null"`,
 * the `typeof` of a primitive or a function (`"string"`, `"number"`, `"undefined"`,
 * `"function"`, …), and the constructor's name of an object (`"Object"`, `"Array"`, `"Map"`,
 * a class name). An object whose constructor cannot be read is an `"Object"`.
 */
export function typeName(value: unknown): string {
  if (value === null) return "null";
  const kind = typeof value;
  if (kind !== "object") return kind;
  try {
    const prototype = Object.getPrototypeOf(value) as { constructor?: unknown } | null;
    const constructor = prototype?.constructor;
    if (typeof constructor === "function" && constructor.name !== "") return constructor.name;
  } catch {
    // A proxy whose getPrototypeOf trap throws: fall through.
  }
  return "Object";
}

/** The type of a thrown value: an error's (or error-like object's) `name`, else its type name. */
export function errorType(error: unknown): string {
  try {
    const name = (error as { name?: unknown } | null | undefined)?.name;
    if (typeof name === "string" && name !== "") return name;
  } catch {
    // A getter that throws: fall through.
  }
  return typeName(error);
}

/** The message of a thrown value: an error's (or error-like object's) `message`, else `String()`. */
export function errorMessage(error: unknown): string {
  try {
    const message = (error as { message?: unknown } | null | undefined)?.message;
    if (typeof message === "string") return message;
    return String(error);
  } catch {
    // A getter or a toString that throws.
    return typeName(error);
  }
}

/** What `span.recordException` accepts, for any thrown value. */
export function toException(error: unknown): Exception {
  if (error instanceof Error || typeof error === "string") return error;
  return { name: errorType(error), message: errorMessage(error) };
}

/**
 * The simple values (string, number, boolean) of `context.traceAttributes`. Anything else is
 * skipped, and a context (or a `traceAttributes`) that cannot be read gives no attributes.
 */
export function traceAttributesOf(context: unknown): Attributes {
  // Collected as entries, so that a key such as "__proto__" becomes an own property.
  const entries: [string, string | number | boolean][] = [];
  if (typeof context !== "object" || context === null) return {};
  try {
    const raw = (context as { traceAttributes?: unknown }).traceAttributes;
    if (typeof raw !== "object" || raw === null || Array.isArray(raw)) return {};
    for (const key of Object.keys(raw)) {
      const value = (raw as Record<string, unknown>)[key];
      if (typeof value === "string" || typeof value === "number" || typeof value === "boolean") {
        entries.push([key, value]);
      }
    }
  } catch {
    // A proxy or a getter that throws: tracing never changes the outcome of a stage.
    return {};
  }
  return Object.fromEntries(entries);
}
