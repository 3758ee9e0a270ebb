/**
 * JSON written straight into bytes: {@link writeJson} puts the UTF-8 of `JSON.stringify(value)`
 * into a byte array without building the JSON string first, for plain data (numbers, strings,
 * booleans, `null`, arrays, and objects whose prototype is `Object.prototype` or `null`).
 *
 * A file checkpoint frames one record per finished item; building each record's JSON string
 * and then copying it into the buffer cost more than the rest of the journal together (the
 * number-to-text conversions of `JSON.stringify` above all). Anything else (a `toJSON` method,
 * a class instance, a `Date`, a `BigInt`, a cycle) is left to `JSON.stringify`: the writer
 * says so and the caller takes that path for the whole record, so both give the same bytes.
 */
import { writeDigits } from "../internal/decimal.js";

/** {@link writeJson}: the value is not plain data; use `JSON.stringify`. */
export const NOT_PLAIN = -1;
/** {@link writeJson}: the bytes ran out before the end; retry with more room. */
export const NO_ROOM = -2;

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const COLON = 0x3a;
const MINUS = 0x2d;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
/** Deeper values are left to `JSON.stringify` (which also tells a cycle). */
const MAX_DEPTH = 64;
/** The longest text of a number: `-1.7976931348623157e+308`. */
const NUMBER_ROOM = 24;
/** Integers below this are written by `writeDigits`, exactly as `String` would. */
const SAFE = 2 ** 53;

const encoder = new TextEncoder();

/**
 * Whether a write is under way: a getter of the value may append a record of its own; that
 * nested write is told `NOT_PLAIN` (and takes `JSON.stringify`).
 */
let busy = false;
/**
 * Whether `Object.prototype` has an enumerable key (someone added one): `for…in` would list it
 * for every object, where JSON leaves it out. Checked once a write.
 */
let inherits = false;

function hasEnumerableKey(object: object): boolean {
  for (const _key in object) return true;
  return false;
}

// Every writer below writes into `bytes` from `at`, never at or past `limit`, and returns where
// its text ends, or NOT_PLAIN, or NO_ROOM (both negative). The position lives in the callers'
// locals, not in module state: V8 keeps it, and what it knows of `bytes`, in registers.

/**
 * Writes the JSON text of `value` as UTF-8 into `bytes[start, end)`. Returns where the text
 * ends, {@link NOT_PLAIN} when `value` is not plain data (or JSON leaves it out: `undefined`, a
 * function, a symbol), or {@link NO_ROOM} when `end` came first. On a negative answer the
 * bytes past `start` are garbage.
 */
export function writeJson(value: unknown, bytes: Uint8Array, start: number, end: number): number {
  if (busy) return NOT_PLAIN;
  busy = true;
  inherits = hasEnumerableKey(Object.prototype);
  try {
    return writeValue(value, 0, bytes, start, end);
  } finally {
    busy = false;
  }
}

/**
 * {@link writeJson} of the record `{ i: index, h: hash, o: output }` (without `o` when `output`
 * is `undefined`), the record of an item that succeeded, without the record object: the same
 * bytes, the same answers.
 */
export function writeOutputRecord(
  index: number,
  hash: number,
  output: unknown,
  bytes: Uint8Array,
  start: number,
  end: number,
): number {
  if (busy) return NOT_PLAIN;
  busy = true;
  inherits = hasEnumerableKey(Object.prototype);
  try {
    return writeOutput(index, hash, output, bytes, start, end);
  } finally {
    busy = false;
  }
}

function writeValue(
  value: unknown,
  depth: number,
  bytes: Uint8Array,
  at: number,
  limit: number,
): number {
  switch (typeof value) {
    case "number":
      return writeNumber(value, bytes, at, limit);
    case "string":
      return writeString(value, bytes, at, limit);
    case "boolean":
      return writeAscii(value ? "true" : "false", bytes, at, limit);
    case "object":
      if (value === null) return writeAscii("null", bytes, at, limit);
      if (depth >= MAX_DEPTH) return NOT_PLAIN;
      return Array.isArray(value)
        ? writeArray(value, depth + 1, bytes, at, limit)
        : writeObject(value, depth + 1, bytes, at, limit);
    default:
      return NOT_PLAIN;
  }
}

function writeNumber(value: number, bytes: Uint8Array, at: number, limit: number): number {
  if (at + NUMBER_ROOM > limit) return NO_ROOM;
  if (!Number.isInteger(value) || value <= -SAFE || value >= SAFE) {
    return writeAscii(Number.isFinite(value) ? String(value) : "null", bytes, at, limit);
  }
  // -0 writes "0", as JSON does.
  if (value < 0) {
    bytes[at++] = MINUS;
    value = -value;
  }
  return writeDigits(value, bytes, at);
}

/** Writes ASCII text as it is. */
function writeAscii(text: string, bytes: Uint8Array, at: number, limit: number): number {
  const length = text.length;
  if (at + length > limit) return NO_ROOM;
  for (let index = 0; index < length; index++) bytes[at++] = text.charCodeAt(index);
  return at;
}

/** Writes a string as JSON: as it is between quotes when nothing in it needs an escape. */
function writeString(text: string, bytes: Uint8Array, start: number, limit: number): number {
  const length = text.length;
  if (start + length + 2 > limit) return NO_ROOM;
  let at = start;
  bytes[at++] = QUOTE;
  for (let index = 0; index < length; index++) {
    const code = text.charCodeAt(index);
    if (code < 0x20 || code > 0x7e || code === QUOTE || code === BACKSLASH) {
      return writeText(JSON.stringify(text), bytes, start, limit);
    }
    bytes[at++] = code;
  }
  bytes[at++] = QUOTE;
  return at;
}

/** Writes any text (well-formed: JSON's own escapes every lone surrogate) as UTF-8. */
function writeText(text: string, bytes: Uint8Array, at: number, limit: number): number {
  // UTF-8 takes at most 3 bytes per UTF-16 code unit.
  if (at + 3 * text.length > limit) return NO_ROOM;
  const length = text.length;
  let index = 0;
  for (; index < length; index++) {
    const code = text.charCodeAt(index);
    if (code >= 0x80) break;
    bytes[at++] = code;
  }
  if (index < length) {
    at += encoder.encodeInto(text.slice(index), bytes.subarray(at, limit)).written;
  }
  return at;
}

function writeArray(
  array: readonly unknown[],
  depth: number,
  bytes: Uint8Array,
  at: number,
  limit: number,
): number {
  if (typeof (array as { toJSON?: unknown }).toJSON === "function") return NOT_PLAIN;
  if (at + 2 > limit) return NO_ROOM;
  bytes[at++] = OPEN_BRACKET;
  const length = array.length;
  for (let index = 0; index < length; index++) {
    if (index > 0) {
      if (at + 1 > limit) return NO_ROOM;
      bytes[at++] = COMMA;
    }
    const entry = array[index];
    const type = typeof entry;
    // What JSON leaves out of an object, it writes as null in an array (holes too).
    at =
      entry === undefined || type === "function" || type === "symbol"
        ? writeAscii("null", bytes, at, limit)
        : writeValue(entry, depth, bytes, at, limit);
    if (at < 0) return at;
  }
  if (at + 1 > limit) return NO_ROOM;
  bytes[at++] = CLOSE_BRACKET;
  return at;
}

/** An empty plain object: what it inherits, every object literal inherits. */
const LITERAL: object = {};
const INDEX_KEY = asciiBytes('{"i":');
const HASH_KEY = asciiBytes(',"h":');
const OUTPUT_KEY = asciiBytes(',"o":');

function asciiBytes(text: string): Uint8Array {
  return Uint8Array.from(text, (char) => char.charCodeAt(0));
}

/** Writes the fixed bytes `text`. */
function writeBytes(text: Uint8Array, bytes: Uint8Array, at: number, limit: number): number {
  const length = text.length;
  if (at + length > limit) return NO_ROOM;
  for (let index = 0; index < length; index++) bytes[at++] = text[index] as number;
  return at;
}

/** {@link writeObject} of the literal `{ i: index, h: hash, o: output }`, key by key. */
function writeOutput(
  index: number,
  hash: number,
  output: unknown,
  bytes: Uint8Array,
  at: number,
  limit: number,
): number {
  // What writeObject asks of such a literal: whether it inherits a key or a `toJSON`.
  if (inherits || typeof (LITERAL as { toJSON?: unknown }).toJSON === "function") {
    return NOT_PLAIN;
  }
  at = writeBytes(INDEX_KEY, bytes, at, limit);
  if (at >= 0) at = writeNumber(index, bytes, at, limit);
  if (at >= 0) at = writeBytes(HASH_KEY, bytes, at, limit);
  if (at >= 0) at = writeNumber(hash, bytes, at, limit);
  const type = typeof output;
  if (output !== undefined && type !== "function" && type !== "symbol") {
    if (at >= 0) at = writeBytes(OUTPUT_KEY, bytes, at, limit);
    if (at >= 0) at = writeValue(output, 1, bytes, at, limit);
  }
  if (at < 0) return at;
  if (at + 1 > limit) return NO_ROOM;
  bytes[at++] = CLOSE_BRACE;
  return at;
}

function writeObject(
  object: object,
  depth: number,
  bytes: Uint8Array,
  at: number,
  limit: number,
): number {
  const prototype: unknown = Object.getPrototypeOf(object);
  if (prototype !== null && (prototype !== Object.prototype || inherits)) return NOT_PLAIN;
  if (typeof (object as { toJSON?: unknown }).toJSON === "function") return NOT_PLAIN;
  if (at + 2 > limit) return NO_ROOM;
  bytes[at++] = OPEN_BRACE;
  let first = true;
  // `for…in` gives the own keys in JSON's order (integer keys first, then insertion order),
  // and no other key: the prototype is null, or an Object.prototype without enumerable keys.
  for (const key in object) {
    const entry = (object as Record<string, unknown>)[key];
    const type = typeof entry;
    if (entry === undefined || type === "function" || type === "symbol") continue;
    if (first) first = false;
    else {
      if (at + 1 > limit) return NO_ROOM;
      bytes[at++] = COMMA;
    }
    at = writeString(key, bytes, at, limit);
    if (at < 0) return at;
    if (at + 1 > limit) return NO_ROOM;
    bytes[at++] = COLON;
    at = writeValue(entry, depth, bytes, at, limit);
    if (at < 0) return at;
  }
  if (at + 1 > limit) return NO_ROOM;
  bytes[at++] = CLOSE_BRACE;
  return at;
}
