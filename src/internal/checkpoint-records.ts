/**
 * The records of a checkpoint, whatever store keeps them: the header that names the pipeline,
 * one record per finished item, the completion marker; how each is made, checked when read
 * back, and summed up for `readCheckpoint`. The journal (`checkpoint.ts`) writes and reads
 * them; `docs/checkpoints.md` documents them for people who inspect or repair a checkpoint.
 */
import { CheckpointCorruptError } from "../errors/CheckpointCorruptError.js";
import { CheckpointMismatchError } from "../errors/CheckpointMismatchError.js";
import { StageExecutionError } from "../errors/StageExecutionError.js";
import {
  errorFromRecord,
  errorToRecord,
  isErrorRecord,
  type ErrorRecord,
  type RecordedCause,
} from "./error-json.js";
import { MAX_DIGITS, writeDigits } from "./decimal.js";

/** The `format` of every header: what wrote the checkpoint. */
export const FORMAT = "async-pipeline/checkpoint";

/** The version of the record format this code writes and reads. */
export const FORMAT_VERSION = 1;

/**
 * How a checkpoint identifies items: by input position (and a hash of each recorded item), or
 * by the batch's `itemKey`.
 */
export type Identity = "position" | "key";

/** An item's identity in a record: its input position, or its `itemKey`. */
export type ItemId = number | string;

/** The first record: what wrote the checkpoint. */
export interface HeaderRecord {
  readonly format: typeof FORMAT;
  readonly v: number;
  readonly stages: readonly string[];
  readonly version?: string;
  readonly identity: Identity;
}

/** A failed item's record: its failure, with the stage and attempts of a stage failure. */
export interface FailureRecord {
  /** The failed stage; absent for a failure outside the stages (a hook, `aroundRun`, …). */
  readonly stageName?: string;
  /** The attempts made; absent with `stageName`. */
  readonly attempts?: number;
  /** The stage's last error (the `originalError`), or the failure itself outside the stages. */
  readonly error: ErrorRecord;
}

/**
 * One finished item: `i` (position, with `h` the item's hash) or `k` (`itemKey`), and `o` (the
 * output; absent for `undefined`) or `e` (the failure).
 */
export type ItemRecord =
  | { readonly i: number; readonly h: number; readonly o?: unknown; readonly e?: FailureRecord }
  | { readonly k: ItemId; readonly o?: unknown; readonly e?: FailureRecord };

/**
 * The key of an optional method of a store, `store[APPEND_OUTPUT](index, hash, output)`: appends
 * the record `{ i: index, h: hash, o: output }` (`o` left out when `output` is `undefined`) as
 * `append` would, the same bytes and errors, without the journal making the record object for
 * it. The file checkpoint has it (a record per finished item is its hot path); the journal calls
 * it, when the store has it, for every item that succeeded in a batch identified by position.
 * Registered (`Symbol.for`) so that a store of one copy of the library (ESM, CommonJS) is
 * understood by the journal of another.
 */
export const APPEND_OUTPUT: unique symbol = Symbol.for("async-pipeline.checkpoint.appendOutput");

/** A store with the method {@link APPEND_OUTPUT}. */
export interface OutputAppender {
  [APPEND_OUTPUT](index: number, hash: number, output: unknown): void;
}

/** The last record of a batch that completed: every item of its input was recorded. */
export interface CompleteRecord {
  readonly complete: true;
}

/** The header of a checkpoint written by the pipeline `stages` at `version`. */
export function headerRecord(
  stages: readonly string[],
  version: string | undefined,
  identity: Identity,
): HeaderRecord {
  return version === undefined
    ? { format: FORMAT, v: FORMAT_VERSION, stages, identity }
    : { format: FORMAT, v: FORMAT_VERSION, stages, version, identity };
}

export const COMPLETE: CompleteRecord = Object.freeze({ complete: true });

/** Where a record sits in the checkpoint, for a `CheckpointCorruptError`. */
function damaged(reason: string, record: number): CheckpointCorruptError {
  return new CheckpointCorruptError(reason, { record });
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * The header `value` (the checkpoint's first record), checked: a `CheckpointCorruptError`
 * when it is not a header, a `CheckpointMismatchError` when it is one of a format this code
 * does not read.
 */
export function readHeader(value: unknown): HeaderRecord {
  if (!isObject(value) || value.format !== FORMAT) {
    throw damaged(`the first record is not a checkpoint header (${FORMAT})`, 0);
  }
  if (value.v !== FORMAT_VERSION) {
    throw new CheckpointMismatchError("format", value.v, FORMAT_VERSION);
  }
  const { stages, version, identity } = value;
  if (
    !Array.isArray(stages) ||
    !stages.every((name) => typeof name === "string") ||
    (version !== undefined && typeof version !== "string") ||
    (identity !== "position" && identity !== "key")
  ) {
    throw damaged("the header's stages, version or identity are malformed", 0);
  }
  return value as unknown as HeaderRecord;
}

/**
 * Throws `CheckpointMismatchError` unless `header` was written by the pipeline `stages` at
 * `version`, identifying items the same way.
 */
export function checkHeader(
  header: HeaderRecord,
  stages: readonly string[],
  version: string | undefined,
  identity: Identity,
): void {
  if (header.stages.length !== stages.length || header.stages.some((n, i) => n !== stages[i])) {
    throw new CheckpointMismatchError("stages", header.stages, stages);
  }
  if (header.version !== version) {
    throw new CheckpointMismatchError("version", header.version, version);
  }
  if (header.identity !== identity) {
    throw new CheckpointMismatchError("identity", header.identity, identity);
  }
}

/** A record read back, checked: a finished item, or the completion marker. */
export type ReadRecord =
  | {
      readonly complete?: false;
      readonly id: ItemId;
      readonly hash: number;
      readonly ok: boolean;
      /** The output (`ok`), or the {@link FailureRecord}. */
      readonly value: unknown;
    }
  | { readonly complete: true };

const COMPLETE_READ: ReadRecord = Object.freeze({ complete: true });

/**
 * The record `value`, at position `ordinal` of a checkpoint whose items are identified by
 * `identity`, checked; `CheckpointCorruptError` when it is not one.
 */
export function readRecord(value: unknown, ordinal: number, identity: Identity): ReadRecord {
  if (!isObject(value)) throw damaged("not a checkpoint record", ordinal);
  if (value.complete === true) return COMPLETE_READ;
  let id: unknown;
  let hash = 0;
  if (identity === "position") {
    id = value.i;
    const h = value.h;
    if (!Number.isSafeInteger(id) || (id as number) < 0) {
      throw damaged("an item record without a valid position (i)", ordinal);
    }
    if (typeof h !== "number" || !Number.isInteger(h) || h < 0 || h > 0xffffffff) {
      throw damaged("an item record without a valid hash (h)", ordinal);
    }
    hash = h;
  } else {
    id = value.k;
    if (!isItemKey(id)) throw damaged("an item record without a valid key (k)", ordinal);
  }
  const failure = value.e;
  if (failure === undefined) return { id: id as ItemId, hash, ok: true, value: value.o };
  if (!isFailureRecord(failure))
    throw damaged("an item record with a malformed failure (e)", ordinal);
  return { id: id as ItemId, hash, ok: false, value: failure };
}

/** Whether `value` can be an `itemKey`: a string, or a finite number. */
export function isItemKey(value: unknown): value is ItemId {
  return typeof value === "string" || (typeof value === "number" && Number.isFinite(value));
}

function isFailureRecord(value: unknown): value is FailureRecord {
  if (!isObject(value) || !isErrorRecord(value.error)) return false;
  const { stageName, attempts } = value;
  return stageName === undefined
    ? attempts === undefined
    : typeof stageName === "string" && typeof attempts === "number";
}

/** The record of an item that failed with `failure`. */
export function failureRecord(failure: unknown): FailureRecord {
  if (failure instanceof StageExecutionError) {
    return {
      stageName: failure.stageName,
      attempts: failure.attempts,
      error: errorToRecord(failure.originalError),
    };
  }
  return { error: errorToRecord(failure) };
}

/**
 * The failure a record stands for: a `StageExecutionError` around the rebuilt error for a stage
 * failure, the rebuilt error itself otherwise.
 */
export function failureFromRecord(record: FailureRecord): Error {
  const error = errorFromRecord(record.error);
  return record.stageName === undefined
    ? error
    : new StageExecutionError(record.stageName, error, record.attempts as number);
}

/**
 * The hash that identifies an item recorded by position: FNV-1a (32 bits) over the UTF-16 code
 * units of the item's JSON text (`"undefined"` for a value JSON leaves out). Two items with the
 * same JSON text are the same item. Throws a `TypeError` for an item JSON cannot write (a
 * `BigInt`, a circular structure).
 */
export function itemHash(item: unknown, index: number): number {
  // The common items first, without JSON.stringify: the same text, so the same hash.
  if (typeof item === "number") return numberHash(item);
  if (typeof item === "string") return stringHash(item);
  let text: string | undefined;
  try {
    text = JSON.stringify(item);
  } catch (error) {
    throw new TypeError(
      `The item at index ${String(index)} cannot be hashed for the checkpoint (${
        error instanceof Error ? error.message : String(error)
      }): give an itemKey to identify items instead`,
      { cause: error },
    );
  }
  text ??= "undefined";
  return fnv1a(text);
}

const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;
const QUOTE = 0x22;
const MINUS = 0x2d;
/** Integers below this in size are hashed from their digits (see `decimal.ts`). */
const SAFE = 2 ** 53;

/** FNV-1a (32 bits) over the UTF-16 code units of `text`. */
function fnv1a(text: string): number {
  let hash = FNV_OFFSET;
  for (let at = 0; at < text.length; at++) hash = Math.imul(hash ^ text.charCodeAt(at), FNV_PRIME);
  return hash >>> 0;
}

/** The digits of an integer item, hashed from there instead of from a string made for it. */
const digits = new Uint8Array(MAX_DIGITS);

/** {@link fnv1a} of the JSON text of the number `item` (what `String` gives, or `null`). */
function numberHash(item: number): number {
  if (!Number.isInteger(item) || item <= -SAFE || item >= SAFE) {
    return fnv1a(Number.isFinite(item) ? String(item) : "null");
  }
  let hash = FNV_OFFSET;
  // -0 is "0", as String and JSON write it.
  if (item < 0) {
    hash = Math.imul(hash ^ MINUS, FNV_PRIME);
    item = -item;
  }
  const end = writeDigits(item, digits, 0);
  for (let at = 0; at < end; at++) hash = Math.imul(hash ^ (digits[at] as number), FNV_PRIME);
  return hash >>> 0;
}

/**
 * {@link fnv1a} of the JSON text of the string `item`: computed over the quotes and the string
 * itself when nothing in it needs an escape (JSON would write it as it is).
 */
function stringHash(item: string): number {
  let hash = Math.imul(FNV_OFFSET ^ QUOTE, FNV_PRIME);
  for (let at = 0; at < item.length; at++) {
    const code = item.charCodeAt(at);
    if (code < 0x20 || code === QUOTE || code === 0x5c || (code >= 0xd800 && code <= 0xdfff)) {
      return fnv1a(JSON.stringify(item));
    }
    hash = Math.imul(hash ^ code, FNV_PRIME);
  }
  return Math.imul(hash ^ QUOTE, FNV_PRIME) >>> 0;
}

/**
 * A failure as `readCheckpoint` reports it: the error's `name`, `message`, `stack` and
 * JSON-safe fields, with the `stageName` and `attempts` of a stage failure.
 *
 * @example
 * ```ts
 * import { fileCheckpoint, readCheckpoint, type RecordedError } from "async-pipeline/checkpoint";
 *
 * const { failed } = await readCheckpoint(fileCheckpoint("prices.ckpt"));
 * const errors: RecordedError[] = failed.map(({ error }) => error);
 * for (const error of errors) console.log(`${error.stageName ?? "?"}: ${error.name}: ${error.message}`);
 * ```
 */
export interface RecordedError {
  /** The error's class name (`"TypeError"`, `"HttpError"`, …); `"Error"` for a thrown non-error. */
  readonly name: string;
  /** Its message (for a thrown non-error, the value as JSON, or a string as it is). */
  readonly message: string;
  /** Its stack, when it had one. */
  readonly stack?: string;
  /** The stage that failed; absent for a failure outside the stages (a hook, `aroundRun`, …). */
  readonly stageName?: string;
  /** The attempts the stage made; absent with `stageName`. */
  readonly attempts?: number;
  /** Its `cause`, when it had one. */
  readonly cause?: RecordedCause;
  /** Its own JSON-safe fields (`code`, `status`, …), and `value` for a thrown non-error. */
  readonly [field: string]: unknown;
}

export type { RecordedCause } from "./error-json.js";

/**
 * What {@link readCheckpoint} finds in a checkpoint.
 *
 * @example
 * ```ts
 * import { fileCheckpoint, readCheckpoint, type CheckpointReport } from "async-pipeline/checkpoint";
 *
 * const report: CheckpointReport = await readCheckpoint(fileCheckpoint("prices.ckpt"));
 * console.log(`${report.done} done, ${report.failed.length} failed, complete: ${report.complete}`);
 * ```
 */
export interface CheckpointReport {
  /** Items recorded, failures included (as `onProgress`'s `done` counts them). */
  readonly done: number;
  /** The items whose last record is a failure, in the order they were recorded. */
  readonly failed: readonly CheckpointFailure[];
  /** Whether the batch that wrote it completed (every item of its input recorded). */
  readonly complete: boolean;
}

/**
 * One failed item of a {@link CheckpointReport}.
 *
 * @example
 * ```ts
 * import { fileCheckpoint, readCheckpoint, type CheckpointFailure } from "async-pipeline/checkpoint";
 *
 * const { failed } = await readCheckpoint(fileCheckpoint("prices.ckpt"));
 * const keys = failed.map((failure: CheckpointFailure) => failure.key);
 * ```
 */
export interface CheckpointFailure {
  /** The item's `itemKey`, or its input position when the batch gave none. */
  readonly key: string | number;
  /** Its failure. */
  readonly error: RecordedError;
}

/** The report of a failed item's record. */
export function recordedError(record: FailureRecord): RecordedError {
  const { name, message, stack, fields, cause } = record.error;
  const error: Record<string, unknown> = { ...fields };
  if ("value" in record.error) error.value = record.error.value;
  error.name = name;
  error.message = message;
  if (stack !== undefined) error.stack = stack;
  if (cause !== undefined) error.cause = cause;
  if (record.stageName !== undefined) {
    error.stageName = record.stageName;
    error.attempts = record.attempts;
  }
  return error as RecordedError;
}

/**
 * Calls `each` with every value of `values`: synchronously for an `Iterable`, awaiting each
 * step of an `AsyncIterable` only. Closes the iterator when `each` throws.
 */
export function forEachValue(
  values: Iterable<unknown> | AsyncIterable<unknown>,
  each: (value: unknown) => void,
): void | Promise<void> {
  if (typeof (values as Partial<Iterable<unknown>>)[Symbol.iterator] === "function") {
    for (const value of values as Iterable<unknown>) each(value);
    return undefined;
  }
  return (async () => {
    for await (const value of values) each(value);
  })();
}

/**
 * Sums up `records` (a checkpoint's records, in order) into a {@link CheckpointReport}: each
 * item counts once, by its last record.
 */
export async function reportOf(
  records: Iterable<unknown> | AsyncIterable<unknown>,
): Promise<CheckpointReport> {
  let identity: Identity | undefined;
  let ordinal = 0;
  let complete = false;
  /** Each item's last record: `undefined` for an output, the failure otherwise. */
  const last = new Map<ItemId, FailureRecord | undefined>();
  await forEachValue(records, (value) => {
    if (identity === undefined) {
      identity = readHeader(value).identity;
    } else {
      const record = readRecord(value, ordinal, identity);
      if (record.complete === true) {
        complete = true;
      } else {
        complete = false;
        // Re-inserted, so that the map's order is the order of each item's last record.
        last.delete(record.id);
        last.set(record.id, record.ok ? undefined : (record.value as FailureRecord));
      }
    }
    ordinal++;
  });
  const failed: CheckpointFailure[] = [];
  for (const [key, failure] of last) {
    if (failure !== undefined) failed.push(Object.freeze({ key, error: recordedError(failure) }));
  }
  return Object.freeze({ done: last.size, failed: Object.freeze(failed), complete });
}
