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

// The write under way (one at a time: see `busy`).
let out: Uint8Array = new Uint8Array(0);
let at = 0;
let limit = 0;
/** What stopped the write: `NOT_PLAIN` or `NO_ROOM`. */
let stop = NOT_PLAIN;
/**
 * Whether a write is under way: a getter of the value may append a record of its own; that
 * nested write is told `NOT_PLAIN` (and takes `JSON.stringify`) instead of sharing this state.
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

/**
 * Writes the JSON text of `value` as UTF-8 into `bytes[start, end)`. Returns where the text
 * ends, {@link NOT_PLAIN} when `value` is not plain data (or JSON leaves it out: `undefined`, a
 * function, a symbol), or {@link NO_ROOM} when `end` came first. On a negative answer the
 * bytes past `start` are garbage.
 */
export function writeJson(value: unknown, bytes: Uint8Array, start: number, end: number): number {
  if (!begin(bytes, start, end)) return NOT_PLAIN;
  try {
    return writeValue(value, 0) ? at : stop;
  } finally {
    finish();
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
  if (!begin(bytes, start, end)) return NOT_PLAIN;
  try {
    return writeOutput(index, hash, output) ? at : stop;
  } finally {
    finish();
  }
}

/** Starts a write into `bytes[start, end)`; `false` when one is under way already. */
function begin(bytes: Uint8Array, start: number, end: number): boolean {
  if (busy) return false;
  busy = true;
  inherits = hasEnumerableKey(Object.prototype);
  out = bytes;
  at = start;
  limit = end;
  return true;
}

function finish(): void {
  out = EMPTY;
  busy = false;
}

const EMPTY: Uint8Array = new Uint8Array(0);

function notPlain(): false {
  stop = NOT_PLAIN;
  return false;
}

function noRoom(): false {
  stop = NO_ROOM;
  return false;
}

function writeValue(value: unknown, depth: number): boolean {
  switch (typeof value) {
    case "number":
      return writeNumber(value);
    case "string":
      return writeString(value);
    case "boolean":
      return writeAscii(value ? "true" : "false");
    case "object":
      if (value === null) return writeAscii("null");
      if (depth >= MAX_DEPTH) return notPlain();
      return Array.isArray(value) ? writeArray(value, depth + 1) : writeObject(value, depth + 1);
    default:
      return notPlain();
  }
}

function writeNumber(value: number): boolean {
  if (at + NUMBER_ROOM > limit) return noRoom();
  if (!Number.isInteger(value) || value <= -SAFE || value >= SAFE) {
    return writeAscii(Number.isFinite(value) ? String(value) : "null");
  }
  // -0 writes "0", as JSON does.
  if (value < 0) {
    out[at++] = MINUS;
    value = -value;
  }
  at = writeDigits(value, out, at);
  return true;
}

/** Writes ASCII text as it is. */
function writeAscii(text: string): boolean {
  const length = text.length;
  if (at + length > limit) return noRoom();
  for (let index = 0; index < length; index++) out[at++] = text.charCodeAt(index);
  return true;
}

/** Writes a string as JSON: as it is between quotes when nothing in it needs an escape. */
function writeString(text: string): boolean {
  const length = text.length;
  if (at + length + 2 > limit) return noRoom();
  const start = at;
  out[at++] = QUOTE;
  for (let index = 0; index < length; index++) {
    const code = text.charCodeAt(index);
    if (code < 0x20 || code > 0x7e || code === QUOTE || code === BACKSLASH) {
      at = start;
      return writeText(JSON.stringify(text));
    }
    out[at++] = code;
  }
  out[at++] = QUOTE;
  return true;
}

/** Writes any text (well-formed: JSON's own escapes every lone surrogate) as UTF-8. */
function writeText(text: string): boolean {
  // UTF-8 takes at most 3 bytes per UTF-16 code unit.
  if (at + 3 * text.length > limit) return noRoom();
  const length = text.length;
  let index = 0;
  for (; index < length; index++) {
    const code = text.charCodeAt(index);
    if (code >= 0x80) break;
    out[at++] = code;
  }
  if (index < length) at += encoder.encodeInto(text.slice(index), out.subarray(at, limit)).written;
  return true;
}

function writeArray(array: readonly unknown[], depth: number): boolean {
  if (typeof (array as { toJSON?: unknown }).toJSON === "function") return notPlain();
  if (at + 2 > limit) return noRoom();
  out[at++] = OPEN_BRACKET;
  const length = array.length;
  for (let index = 0; index < length; index++) {
    if (index > 0) {
      if (at + 1 > limit) return noRoom();
      out[at++] = COMMA;
    }
    const entry = array[index];
    const type = typeof entry;
    // What JSON leaves out of an object, it writes as null in an array (holes too).
    if (entry === undefined || type === "function" || type === "symbol") {
      if (!writeAscii("null")) return false;
    } else if (!writeValue(entry, depth)) {
      return false;
    }
  }
  if (at + 1 > limit) return noRoom();
  out[at++] = CLOSE_BRACKET;
  return true;
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
function writeBytes(text: Uint8Array): boolean {
  const length = text.length;
  if (at + length > limit) return noRoom();
  for (let index = 0; index < length; index++) out[at++] = text[index] as number;
  return true;
}

/** {@link writeObject} of the literal `{ i: index, h: hash, o: output }`, key by key. */
function writeOutput(index: number, hash: number, output: unknown): boolean {
  // What writeObject asks of such a literal: whether it inherits a key or a `toJSON`.
  if (inherits || typeof (LITERAL as { toJSON?: unknown }).toJSON === "function") {
    return notPlain();
  }
  if (!writeBytes(INDEX_KEY) || !writeNumber(index)) return false;
  if (!writeBytes(HASH_KEY) || !writeNumber(hash)) return false;
  const type = typeof output;
  if (output !== undefined && type !== "function" && type !== "symbol") {
    if (!writeBytes(OUTPUT_KEY) || !writeValue(output, 1)) return false;
  }
  if (at + 1 > limit) return noRoom();
  out[at++] = CLOSE_BRACE;
  return true;
}

function writeObject(object: object, depth: number): boolean {
  const prototype: unknown = Object.getPrototypeOf(object);
  if (prototype !== null && (prototype !== Object.prototype || inherits)) return notPlain();
  if (typeof (object as { toJSON?: unknown }).toJSON === "function") return notPlain();
  if (at + 2 > limit) return noRoom();
  out[at++] = OPEN_BRACE;
  let first = true;
  // `for…in` gives the own keys in JSON's order (integer keys first, then insertion order),
  // and no other key: the prototype is null, or an Object.prototype without enumerable keys.
  for (const key in object) {
    const entry = (object as Record<string, unknown>)[key];
    const type = typeof entry;
    if (entry === undefined || type === "function" || type === "symbol") continue;
    if (first) first = false;
    else {
      if (at + 1 > limit) return noRoom();
      out[at++] = COMMA;
    }
    if (!writeString(key)) return false;
    if (at + 1 > limit) return noRoom();
    out[at++] = COLON;
    if (!writeValue(entry, depth)) return false;
  }
  if (at + 1 > limit) return noRoom();
  out[at++] = CLOSE_BRACE;
  return true;
}
