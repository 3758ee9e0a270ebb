/**
 * Errors as JSON: what survives of a thrown value when it is stored or sent (a BullMQ result, a
 * checkpoint record), and the `Error` rebuilt from it. One implementation for every such place,
 * so that an error read back looks the same whichever way it travelled.
 */
import { jsonProblem } from "./json.js";

/** How deep a `cause` chain is kept: the error itself and four causes below it. */
export const MAX_CAUSE_DEPTH = 5;

/**
 * A thrown value, JSON-safe.
 *
 * - `name`, `message`, `stack`: the error's own (for a thrown non-`Error`, `"Error"`, the value
 *   described, and no stack).
 * - `fields`: the error's own enumerable properties whose values are JSON-safe (`code`,
 *   `status`, `details`, …); others are left out. Absent when there are none.
 * - `cause`: the error's `cause`, recorded the same way, up to five errors
 *   deep in all. Absent when the error has none.
 * - `value`: for a thrown non-`Error`, the value itself when it is JSON-safe.
 *
 * Public as `RecordedCause` (`async-pipeline/checkpoint`): the `cause` of a recorded failure,
 * and its own `cause`, and so on.
 *
 * @example
 * ```ts
 * import type { RecordedCause, RecordedError } from "async-pipeline/checkpoint";
 *
 * function causes(error: RecordedError): RecordedCause[] {
 *   const chain: RecordedCause[] = [];
 *   for (let cause = error.cause; cause !== undefined; cause = cause.cause) chain.push(cause);
 *   return chain;
 * }
 * ```
 */
export interface RecordedCause {
  /** Its class name; `"Error"` for a thrown non-error. */
  readonly name: string;
  /** Its message (for a thrown non-error, the value as JSON, or a string as it is). */
  readonly message: string;
  /** Its stack, when it had one. */
  readonly stack?: string | undefined;
  /** Its own JSON-safe fields (`code`, `status`, …), when it had any. */
  readonly fields?: Readonly<Record<string, unknown>> | undefined;
  /** Its own `cause`, when it had one and the chain is not five errors deep yet. */
  readonly cause?: RecordedCause | undefined;
  /** For a thrown non-error, the value itself when it is JSON-safe. */
  readonly value?: unknown;
}

/** The name this module's code uses for a {@link RecordedCause}. */
export type ErrorRecord = RecordedCause;

/** Properties an `Error` carries in its record's own slots, never among `fields`. */
const OWN_SLOTS = new Set(["name", "message", "stack", "cause"]);

/**
 * The record of `thrown`: see {@link ErrorRecord}. Never throws, whatever the value's getters
 * do: a property that throws when read is left out.
 */
export function errorToRecord(thrown: unknown, depth: number = MAX_CAUSE_DEPTH): ErrorRecord {
  if (!(thrown instanceof Error)) return valueRecord(thrown);
  const record: {
    name: string;
    message: string;
    stack?: string;
    fields?: Record<string, unknown>;
    cause?: ErrorRecord;
  } = {
    name: safeString(() => thrown.name, "Error"),
    message: safeString(() => thrown.message, ""),
  };
  const stack = safeRead(() => thrown.stack);
  if (typeof stack === "string") record.stack = stack;
  const fields = jsonFields(thrown);
  if (fields !== undefined) record.fields = fields;
  if (depth > 1 && safeRead(() => Object.hasOwn(thrown, "cause")) === true) {
    record.cause = errorToRecord(
      safeRead(() => thrown.cause),
      depth - 1,
    );
  }
  return record;
}

/**
 * The `Error` a record stands for: of the built-in class its `name` names (`TypeError`, …),
 * else `Error`, with the record's `name`, `message` and `stack`, its `fields` as own
 * properties, its `cause` rebuilt the same way, and `value` for a thrown non-`Error`.
 */
export function errorFromRecord(record: ErrorRecord): Error {
  const cause = record.cause === undefined ? undefined : errorFromRecord(record.cause);
  const error = new (builtins[record.name] ?? Error)(
    record.message,
    record.cause === undefined ? undefined : { cause },
  );
  if (error.name !== record.name) {
    Object.defineProperty(error, "name", {
      value: record.name,
      writable: true,
      configurable: true,
    });
  }
  if (record.stack === undefined) delete error.stack;
  else error.stack = record.stack;
  if (record.fields !== undefined) {
    for (const [key, value] of Object.entries(record.fields)) {
      if (!OWN_SLOTS.has(key)) (error as unknown as Record<string, unknown>)[key] = value;
    }
  }
  if ("value" in record) (error as Error & { value?: unknown }).value = record.value;
  return error;
}

/** Whether `value` has the shape of an {@link ErrorRecord} (as read back from JSON). */
export function isErrorRecord(value: unknown): value is ErrorRecord {
  if (typeof value !== "object" || value === null) return false;
  const record = value as Partial<Record<keyof ErrorRecord, unknown>>;
  return (
    typeof record.name === "string" &&
    typeof record.message === "string" &&
    (record.stack === undefined || typeof record.stack === "string") &&
    (record.fields === undefined ||
      (typeof record.fields === "object" && record.fields !== null)) &&
    (record.cause === undefined || isErrorRecord(record.cause))
  );
}

const builtins: Readonly<Record<string, ErrorConstructor>> = {
  Error,
  TypeError,
  RangeError,
  SyntaxError,
  ReferenceError,
  EvalError,
  URIError,
};

/**
 * A thrown non-`Error`: its message is the value's JSON (a string as it is), so that a thrown
 * `{ code: 42 }` reads `{"code":42}`, never `[object Object]`.
 */
function valueRecord(value: unknown): ErrorRecord {
  const safe = jsonProblem(value) === undefined;
  let message: string;
  if (typeof value === "string") message = value;
  else if (safe) message = JSON.stringify(value);
  else message = safeString(() => String(value), "(a value that cannot be described)");
  return safe ? { name: "Error", message, value } : { name: "Error", message };
}

/** The own enumerable JSON-safe properties of `error` other than its record's own slots. */
function jsonFields(error: Error): Record<string, unknown> | undefined {
  let fields: Record<string, unknown> | undefined;
  const keys = safeRead(() => Object.keys(error)) ?? [];
  for (const key of keys) {
    if (OWN_SLOTS.has(key)) continue;
    const read = safeRead(() => ({ value: (error as unknown as Record<string, unknown>)[key] }));
    if (read === undefined || jsonProblem(read.value) !== undefined) continue;
    (fields ??= {})[key] = read.value;
  }
  return fields;
}

function safeRead<T>(read: () => T): T | undefined {
  try {
    return read();
  } catch {
    return undefined;
  }
}

function safeString(read: () => unknown, fallback: string): string {
  const value = safeRead(read);
  return typeof value === "string" ? value : fallback;
}
