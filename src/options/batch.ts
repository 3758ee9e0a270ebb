import { AdaptiveKeys } from "../flow/adaptive-keys.js";
import type { AdaptiveConcurrency } from "../flow/adaptive.js";
import { KeyedAdmission, perKeyOption, waitingBound, type PerKeyOptions } from "../flow/per-key.js";
import type { BatchSettings, RawBatchOptions } from "../internal/batch.js";
import { CheckpointJournal } from "../internal/checkpoint.js";
import type { Admission } from "../internal/pool.js";
import type { KeyHints, OptionKeys } from "../internal/known-keys.js";
import { concurrencyOption, isDynamicLimit } from "../internal/limits.js";
import {
  mapOptionHints,
  mapSettledOptionHints,
  streamOptionHints,
} from "../internal/option-hints.js";
import {
  optionalContext,
  optionalBoolean,
  optionalFunction,
  optionalSignal,
  optionsObject,
  show,
} from "../internal/validate.js";
import type { CheckpointStore, Context, Progress } from "../types.js";

/** The default `concurrency` of `map`, `mapSettled` and `stream`. */
export const DEFAULT_CONCURRENCY = 5;

/**
 * Options of {@link Pipeline.map} and {@link Pipeline.mapSettled}.
 *
 * @example
 * ```ts
 * const controller = new AbortController();
 * const results = await pipeline.map(ids, { concurrency: 8, context: { tenant: "acme" }, signal: controller.signal });
 * ```
 */
export interface MapOptions<C extends object = Context, I = unknown> {
  /**
   * How many items run at once: an integer of at least 1, or `Infinity`, or a limit the batch
   * finds itself, `adaptiveConcurrency(...)` (batches given the same one share it; see the
   * guide docs/adaptive-concurrency.md). A positional `concurrency` argument wins over this one.
   * @default 5
   * @example
   * ```ts
   * await pipeline.map(items, { concurrency: 16 });
   * await pipeline.map(items, { concurrency: adaptiveConcurrency({ max: 256 }) });
   * ```
   */
  concurrency?: number | AdaptiveConcurrency | undefined;
  /**
   * A template: each item's run gets its own shallow copy (prototype kept), so concurrent
   * items never share one object and the template's own properties never change.
   * @default a new empty object per item
   * @example
   * ```ts
   * await pipeline.map(items, 4, { context: { tenant: "acme" } });
   * ```
   */
  context?: C | undefined;
  /**
   * Cancels the whole batch: nothing new starts, in-flight items' signals abort, and the
   * promise rejects with `signal.reason`.
   * @default undefined
   * @example
   * ```ts
   * await pipeline.map(items, 4, { signal: AbortSignal.timeout(60_000) });
   * ```
   */
  signal?: AbortSignal | undefined;
  /**
   * Called with a frozen `{ done, failed, inFlight, total, concurrency }` after items settle:
   * at most once per turn of the event loop when many settle together, and once more, at the
   * latest, before the batch settles. `total` is the input's size when known (an array, a
   * `Set`, a `Map`), else `undefined`; `concurrency` is the limit in force (an adaptive one's
   * value then). Its failures are ignored.
   * @default undefined
   * @example
   * ```ts
   * await pipeline.map(items, 8, {
   *   onProgress: ({ done, total }) => console.log(`${done}/${total ?? "?"}`),
   * });
   * ```
   */
  onProgress?: ((progress: Progress) => unknown) | undefined;
  /**
   * A bound per key, within `concurrency`: at most `perKey.concurrency` items whose
   * `perKey.key(item, index)` are equal (`SameValueZero`) run at once, for example two per
   * host. An item waiting for its key does not hold up items of other keys: the batch reads
   * ahead past it, keeping at most `perKey.maxWaiting` such items waiting (1,000 by default,
   * whatever the `concurrency`, fixed or adaptive; so at most `concurrency + maxWaiting` items
   * are taken and not finished). Results keep input order. A `key` that throws fails its item
   * as a stage failure would.
   * @default undefined (no bound per key)
   * @example
   * ```ts
   * await pipeline.map(urls, { concurrency: 32, perKey: { key: (url) => new URL(url).host, concurrency: 2 } });
   * ```
   */
  perKey?: PerKeyOptions<I> | undefined;
  /**
   * Makes the batch resumable: each finished item is recorded in this store (its output as
   * JSON, or its failure), and the same call after a crash, a deploy or Ctrl-C restores the
   * recorded items in their places without running them and runs the others. Records are
   * made durable in groups (`fileCheckpoint`'s `flushEvery`), so after a crash the items that
   * were in flight and those that finished within the last unflushed group run again: each
   * item runs at least once. Outputs must be JSON-safe (an item whose output is not fails
   * with a `TypeError`). Identity is the input position (checked against a hash of each
   * recorded item) unless `itemKey` is given. The batch opens the store before anything runs
   * and closes it on every ending, before its promise settles. See docs/checkpoints.md.
   * @default undefined (nothing is recorded)
   * @example
   * ```ts
   * import { fileCheckpoint } from "async-pipeline/checkpoint";
   *
   * const prices = await pricing.map(lines, { concurrency: 32, checkpoint: fileCheckpoint("prices.ckpt") });
   * ```
   */
  checkpoint?: CheckpointStore | undefined;
  /**
   * With `checkpoint`: identifies each item by a key (a string or a finite number) instead of
   * its input position, so that a resumed batch may read a reordered, filtered or extended
   * input. Keys must be unique within a batch: a duplicate rejects the batch (`map` and
   * `mapSettled` alike) with a `TypeError` naming both indexes. Ignored without `checkpoint`.
   * @default undefined (identity by input position)
   * @example
   * ```ts
   * await pricing.map(lines, { checkpoint: fileCheckpoint("prices.ckpt"), itemKey: (line) => line.sku });
   * ```
   */
  itemKey?: ((item: I, index: number) => string | number) | undefined;
  /**
   * With `checkpoint`: whether recorded failures run again when the batch resumes (`true`),
   * or are restored as failures without running (`false`: `mapSettled` gives them back as
   * `{ status: "rejected" }`, `map` rejects with the first one it meets). Ignored without
   * `checkpoint`.
   * @default true
   * @example
   * ```ts
   * // Re-running a finished mapSettled gives back its results and runs nothing at all:
   * await pricing.mapSettled(lines, { checkpoint: fileCheckpoint("prices.ckpt"), retryFailed: false });
   * ```
   */
  retryFailed?: boolean | undefined;
  /**
   * With `checkpoint`: the version of what the pipeline computes, recorded in the checkpoint
   * with its stage names. A checkpoint written at another version (or with one when this batch
   * has none, or the other way round) rejects with `CheckpointMismatchError` before anything
   * runs: change it when the stages' meaning changes but their names do not. Ignored without
   * `checkpoint`.
   * @default undefined (no version)
   * @example
   * ```ts
   * await pricing.map(lines, { checkpoint: fileCheckpoint("prices.ckpt"), version: "2026-03 tariffs" });
   * ```
   */
  version?: string | undefined;
}

/** The keys of {@link MapOptions}; any other key is rejected. A new option goes here too. */
export const mapOptionKeys = {
  concurrency: true,
  context: true,
  signal: true,
  onProgress: true,
  perKey: true,
  checkpoint: true,
  itemKey: true,
  retryFailed: true,
  version: true,
} as const satisfies OptionKeys<MapOptions>;

/**
 * Options of {@link Pipeline.stream}: those of `map`, plus how results are delivered.
 *
 * @example
 * ```ts
 * for await (const entry of pipeline.stream(items, { concurrency: 8, ordered: false, settled: true })) {
 *   if (entry.status === "rejected") console.error(entry.reason);
 * }
 * ```
 */
export interface StreamOptions<C extends object = Context, I = unknown> extends MapOptions<C, I> {
  /**
   * How many finished results may wait to be read beyond the `concurrency` in flight: no item
   * is taken from the input while `concurrency + buffer` are taken and not yet read. An integer
   * ≥ 0, or `Infinity` for no backpressure. With an adaptive `concurrency`, both follow its
   * limit as it changes: by default `2 × limit` are read ahead at most.
   * @default concurrency (its limit now, when adaptive)
   * @example
   * ```ts
   * pipeline.stream(items, { concurrency: 4, buffer: 0 }); // never more than 4 items ahead
   * ```
   */
  buffer?: number | undefined;
  /**
   * `true`: results in input order. `false`: as items finish (a slow item does not hold the
   * others back).
   * @default true
   * @example
   * ```ts
   * pipeline.stream(items, { ordered: false });
   * ```
   */
  ordered?: boolean | undefined;
  /**
   * `true`: yield a `PromiseSettledResult` per item and go on after failures, like
   * `mapSettled`. `false`: end the stream with the first failure, like `map`.
   * @default false
   * @example
   * ```ts
   * pipeline.stream(items, { settled: true });
   * ```
   */
  settled?: boolean | undefined;
}

/** The keys of {@link StreamOptions}; any other key is rejected. A new option goes here too. */
export const streamOptionKeys = {
  ...mapOptionKeys,
  buffer: true,
  ordered: true,
  settled: true,
} as const satisfies OptionKeys<StreamOptions>;

/**
 * Reads `(items, concurrency?, options?)` or `(items, options?)`: a positional concurrency
 * wins over `options.concurrency`. Throws `TypeError`/`RangeError` for bad arguments, and a
 * `TypeError` for an option key that the form's keys do not list (with a hint at what was
 * meant, see {@link BatchForm}).
 */
export function batchSettings<C>(
  items: unknown,
  concurrencyOrOptions: unknown,
  maybeOptions: unknown,
  form: BatchForm,
): BatchSettings<C> {
  const { known, hints } = form;
  if (
    items === null ||
    items === undefined ||
    (typeof (items as Partial<Iterable<unknown>>)[Symbol.iterator] !== "function" &&
      typeof (items as Partial<AsyncIterable<unknown>>)[Symbol.asyncIterator] !== "function")
  ) {
    throw new TypeError("items must be an Iterable or an AsyncIterable");
  }
  let options: RawBatchOptions;
  let concurrency: unknown;
  if (
    typeof concurrencyOrOptions === "object" &&
    concurrencyOrOptions !== null &&
    !isDynamicLimit(concurrencyOrOptions)
  ) {
    options = optionsObject<RawBatchOptions>("options", concurrencyOrOptions, known, hints) ?? {};
    concurrency = options.concurrency;
  } else {
    options = optionsObject<RawBatchOptions>("options", maybeOptions, known, hints) ?? {};
    concurrency = concurrencyOrOptions === undefined ? options.concurrency : concurrencyOrOptions;
  }
  const limit = concurrency === undefined ? DEFAULT_CONCURRENCY : concurrencyOption(concurrency);
  const perKey = perKeyOption(options.perKey);
  const template = optionalContext(options.context as C | undefined);
  const signal = optionalSignal(options.signal);
  return {
    // An adaptive limit is the pool's gauge to hold: the workers themselves are then unbounded.
    concurrency: typeof limit === "number" ? limit : Infinity,
    dynamic: typeof limit === "number" ? undefined : limit,
    template,
    signal,
    onProgress: optionalFunction(
      "onProgress",
      options.onProgress as ((progress: Progress) => unknown) | undefined,
    ),
    admission: admissionFor(perKey),
    journal: journalFactory(options, signal),
    options,
  };
}

/** The batch's per-key admission (`perKey`), one per batch; `undefined` for none. */
function admissionFor(perKey: PerKeyOptions | undefined): (() => Admission<unknown>) | undefined {
  if (perKey === undefined) return undefined;
  const { key, concurrency } = perKey;
  if (isDynamicLimit(concurrency)) {
    return () => new AdaptiveKeys({ key, concurrency, maxWaiting: waitingBound(perKey) });
  }
  return () => new KeyedAdmission(perKey);
}

/** The methods a `checkpoint` must have: those of {@link CheckpointStore}. */
const storeMethods = ["load", "append", "flush", "close", "clear"] as const;

/** The `checkpoint` option, validated: a {@link CheckpointStore}, or `undefined`. */
function checkpointOption(value: unknown): CheckpointStore | undefined {
  if (value === undefined) return undefined;
  const expected =
    "checkpoint must be a CheckpointStore (fileCheckpoint(path) from async-pipeline/checkpoint, " +
    "or an object with load, append, flush, close and clear methods)";
  if (typeof value !== "object" || value === null) {
    throw new TypeError(`${expected}, got ${show(value)}`);
  }
  const store = value as Partial<Record<(typeof storeMethods)[number], unknown>>;
  const missing = storeMethods.find((method) => typeof store[method] !== "function");
  if (missing !== undefined) {
    throw new TypeError(`${expected}, got an object without a ${missing} method`);
  }
  return value as CheckpointStore;
}

/**
 * The checkpoint options (`checkpoint`, `itemKey`, `retryFailed`, `version`), validated, as the
 * maker of one batch's journal; `undefined` without `checkpoint`. The others are checked even
 * then, so that a mistake does not wait for the day a checkpoint is given.
 */
function journalFactory(
  options: RawBatchOptions,
  signal: AbortSignal | undefined,
): BatchSettings<unknown>["journal"] {
  const store = checkpointOption(options.checkpoint);
  const itemKey = optionalFunction(
    "itemKey",
    options.itemKey as ((item: never, index: number) => unknown) | undefined,
  );
  const retryFailed = optionalBoolean("retryFailed", options.retryFailed, true);
  const { version } = options;
  if (version !== undefined && typeof version !== "string") {
    throw new TypeError(`version must be a string, got ${show(version)}`);
  }
  if (store === undefined) return undefined;
  return (stages, lazyOutputs) =>
    new CheckpointJournal(store, { stages, version, itemKey, retryFailed, lazyOutputs, signal });
}

/** What one batch form accepts: its option keys, and the hints for a key it does not know. */
export interface BatchForm {
  readonly known: object;
  readonly hints: KeyHints;
}

/** `map`: a stream-only option (`ordered`, …) is named as one. */
export const mapForm: BatchForm = {
  known: mapOptionKeys,
  hints: { ...mapOptionHints, siblings: { stream: streamOptionKeys } },
};

/** `mapSettled`, likewise. */
export const mapSettledForm: BatchForm = {
  known: mapOptionKeys,
  hints: { ...mapSettledOptionHints, siblings: { stream: streamOptionKeys } },
};

/** `stream`. */
export const streamForm: BatchForm = { known: streamOptionKeys, hints: streamOptionHints };
