/**
 * Argument checks shared by every public entry point. Each throws a `TypeError` for a value of
 * the wrong type and a `RangeError` for a value out of range, with a message that names the
 * option and quotes the value it got.
 */

import { rejectUnknownKeys, type KeyHints } from "./known-keys.js";

/** How a bad value is quoted in a message: strings in quotes, objects by their kind. */
export function show(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value);
  if (typeof value === "bigint") return `${value.toString()}n`;
  if (typeof value === "symbol") return value.toString();
  if (typeof value === "function") return "a function";
  if (value === null || typeof value !== "object") return String(value);
  return Array.isArray(value) ? "an array" : "an object";
}

function requireNumber(name: string, value: unknown): number {
  if (typeof value !== "number") {
    throw new TypeError(`${name} must be a number, got ${show(value)}`);
  }
  if (Number.isNaN(value)) throw new RangeError(`${name} must be a number, got NaN`);
  return value;
}

/** A duration that must be finite and greater than 0 (`timeout`). */
export function positiveDuration(name: string, value: unknown): number {
  const ms = requireNumber(name, value);
  if (ms <= 0) throw new RangeError(`${name} must be greater than 0, got ${show(ms)}`);
  if (ms === Infinity) throw new RangeError(`${name} must be a finite number, got Infinity`);
  return ms;
}

/** A duration that must be finite and at least 0 (`retryDelay`, `maxRetryDelay`). */
export function nonNegativeDuration(name: string, value: unknown): number {
  const ms = requireNumber(name, value);
  if (ms < 0) throw new RangeError(`${name} must be greater than or equal to 0, got ${show(ms)}`);
  if (ms === Infinity) throw new RangeError(`${name} must be a finite number, got Infinity`);
  return ms;
}

/** A count that must be an integer of at least 0 (`retries`). */
export function nonNegativeInteger(name: string, value: unknown): number {
  const count = requireNumber(name, value);
  if (count < 0) {
    throw new RangeError(`${name} must be greater than or equal to 0, got ${show(count)}`);
  }
  if (!Number.isInteger(count))
    throw new RangeError(`${name} must be an integer, got ${show(count)}`);
  return count;
}

/** A count that must be an integer of at least 0, or `Infinity` (`buffer`). */
export function countOrInfinity(name: string, value: unknown): number {
  const count = requireNumber(name, value);
  if (count < 0) {
    throw new RangeError(`${name} must be greater than or equal to 0, got ${show(count)}`);
  }
  if (count !== Infinity && !Number.isInteger(count)) {
    throw new RangeError(`${name} must be an integer or Infinity, got ${show(count)}`);
  }
  return count;
}

/** `concurrency` (or another such bound, `name`): an integer of at least 1, or `Infinity`. */
export function concurrencyLimit(value: unknown, name = "concurrency"): number {
  const limit = requireNumber(name, value);
  if (limit < 1) throw new RangeError(`${name} must be at least 1, got ${show(limit)}`);
  if (limit !== Infinity && !Number.isInteger(limit)) {
    throw new RangeError(`${name} must be an integer or Infinity, got ${show(limit)}`);
  }
  return limit;
}

/** A value that must be a function when given. */
export function optionalFunction<F>(name: string, value: F | undefined): F | undefined {
  if (value !== undefined && typeof value !== "function") {
    throw new TypeError(`${name} must be a function, got ${show(value)}`);
  }
  return value;
}

/** A value that must be a boolean when given. */
export function optionalBoolean(name: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== "boolean")
    throw new TypeError(`${name} must be a boolean, got ${show(value)}`);
  return value;
}

/** One of a fixed set of strings. */
export function oneOf<T extends string>(
  name: string,
  value: unknown,
  allowed: readonly T[],
  fallback: T,
): T {
  if (value === undefined) return fallback;
  if ((allowed as readonly unknown[]).includes(value)) return value as T;
  const list = allowed.map((item) => `"${item}"`).join(" or ");
  const message = `${name} must be ${list}, got ${show(value)}`;
  throw typeof value === "string" ? new RangeError(message) : new TypeError(message);
}

/**
 * An options bag: `undefined` or a non-null object. With `known` (the options type's
 * `OptionKeys` record, checked against the type where it is written), a key it does not
 * list is a `TypeError` too, with a suggestion: `unknown option "retry" (did you mean
 * "retries"?)`; `hints` adds aliases, sibling forms and the path of a nested object to what
 * it may suggest (see `KeyHints`).
 */
// eslint-disable-next-line @typescript-eslint/no-unnecessary-type-parameters -- the caller names the bag's type
export function optionsObject<T extends object>(
  name: string,
  value: unknown,
  known?: object,
  hints?: KeyHints,
): T | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "object" || value === null) {
    throw new TypeError(`${name} must be an object, got ${show(value)}`);
  }
  if (known !== undefined) rejectUnknownKeys(value, known, hints);
  return value as T;
}

/**
 * An `AbortSignal`, when given. Accepted: anything the library can fully use, that is a real
 * `AbortSignal` or a look-alike with a boolean `aborted`, a `reason` (any value, `undefined`
 * included, but present) and `addEventListener` and `removeEventListener` methods. Anything
 * else is a `TypeError` that names `name` and says what is missing.
 */
export function optionalSignal(value: unknown, name = "signal"): AbortSignal | undefined {
  if (value === undefined) return undefined;
  const expected = `${name} must be an AbortSignal`;
  if (typeof value !== "object" || value === null) {
    throw new TypeError(`${expected}, got ${show(value)}`);
  }
  const signal = value as Partial<AbortSignal>;
  const missing =
    typeof signal.aborted !== "boolean"
      ? "a boolean aborted"
      : !("reason" in signal)
        ? "a reason"
        : typeof signal.addEventListener !== "function"
          ? "an addEventListener method"
          : typeof signal.removeEventListener !== "function"
            ? "a removeEventListener method"
            : undefined;
  if (missing !== undefined) {
    throw new TypeError(
      `${expected} (or an object with a boolean aborted, a reason, and addEventListener and ` +
        `removeEventListener methods), got an object without ${missing}`,
    );
  }
  return value as AbortSignal;
}

/**
 * Every entry of the array option `name`, holes included: a dense copy of it, read once, or a
 * `TypeError` that names the first bad index (`stages[1] must be a Stage, got a hole`).
 * `kind` says what each entry must be (`"a Stage"`), `isEntry` checks one.
 */
export function listOf<T>(
  name: string,
  value: unknown,
  kind: string,
  isEntry: (entry: unknown) => boolean,
): T[] {
  if (!Array.isArray(value)) throw new TypeError(`${name} must be an array, got ${show(value)}`);
  const list: T[] = [];
  for (let index = 0; index < value.length; index++) {
    const entry: unknown = value[index];
    if (!isEntry(entry)) {
      const got = entry === undefined && !(index in value) ? "a hole" : show(entry);
      throw new TypeError(`${name}[${String(index)}] must be ${kind}, got ${got}`);
    }
    list.push(entry as T);
  }
  return list;
}

/** Whether `value` is a function: the entry check of a list of callbacks. */
export function isFunction(value: unknown): boolean {
  return typeof value === "function";
}

/** A context, when given: any non-null object. */
export function optionalContext<C>(value: C | undefined): C | undefined {
  if (value !== undefined && (typeof value !== "object" || value === null)) {
    throw new TypeError(`context must be an object, got ${show(value)}`);
  }
  return value;
}

/** A string option; `fallback` when not given. */
export function optionalString(name: string, value: unknown, fallback: string): string {
  if (value === undefined) return fallback;
  if (typeof value !== "string")
    throw new TypeError(`${name} must be a string, got ${show(value)}`);
  return value;
}

/** A non-empty string (`name`). */
export function nonEmptyString(name: string, value: unknown): string {
  if (typeof value !== "string")
    throw new TypeError(`${name} must be a string, got ${show(value)}`);
  if (value === "") throw new RangeError(`${name} must not be empty`);
  return value;
}

/** A count that must be an integer of at least 1 (`limit`, `threshold`). */
export function positiveInteger(name: string, value: unknown): number {
  const count = requireNumber(name, value);
  if (count < 1) throw new RangeError(`${name} must be at least 1, got ${show(count)}`);
  if (!Number.isInteger(count))
    throw new RangeError(`${name} must be an integer, got ${show(count)}`);
  return count;
}
