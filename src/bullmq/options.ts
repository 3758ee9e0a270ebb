/** Checks of the options both sides share, with messages that name the option. */
import type { KeyHints } from "../internal/known-keys.js";
import { nonEmptyString, optionsObject, show } from "../internal/validate.js";

/**
 * The options object itself (no key that `known` does not list; `hints` for the message), and
 * its `queueName`: a non-empty string without `:`.
 */
export function queueNameOf(options: unknown, known: object, hints: KeyHints): string {
  const bag = optionsObject<{ queueName?: unknown }>("options", options, known, hints);
  if (bag === undefined) throw new TypeError("options must be an object with a queueName");
  return noColon("queueName", bag.queueName);
}

function noColon(name: string, value: unknown): string {
  const text = nonEmptyString(name, value);
  if (text.includes(":")) throw new RangeError(`${name} must not contain ":", got ${show(text)}`);
  return text;
}

/** BullMQ's key prefix; `"bull"`, BullMQ's own default, when not given. */
export function prefixOf(value: unknown): string {
  return value === undefined ? "bull" : nonEmptyString("prefix", value);
}

/** A batch id: a non-empty string without `:` (it becomes part of BullMQ job ids). */
export function batchIdOf(value: unknown): string | undefined {
  return value === undefined ? undefined : noColon("batchId", value);
}

/** An integer count of at least `min` (1 unless given), or `fallback` when not given. */
export function optionalCount<F extends number | undefined>(
  name: string,
  value: unknown,
  fallback: F,
  min = 1,
): number | F {
  if (value === undefined) return fallback;
  if (typeof value !== "number")
    throw new TypeError(`${name} must be a number, got ${show(value)}`);
  if (!Number.isSafeInteger(value) || value < min) {
    throw new RangeError(
      `${name} must be an integer of at least ${String(min)}, got ${show(value)}`,
    );
  }
  return value;
}

/** `version`: a string, or `undefined` when not given. */
export function optionalVersion(value: unknown): string | undefined {
  if (value === undefined || typeof value === "string") return value;
  throw new TypeError(`version must be a string, got ${show(value)}`);
}

/** `connectTimeout`: ms to wait for Redis, 10 s by default. */
export function connectTimeoutOf(value: unknown): number {
  return optionalCount("connectTimeout", value, 10_000);
}
