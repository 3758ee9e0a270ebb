import { AdaptiveKeys } from "../flow/adaptive-keys.js";
import type { AdaptiveConcurrency } from "../flow/adaptive.js";
import { KeyedAdmission, perKeyOption, type PerKeyOptions } from "../flow/per-key.js";
import type { BatchSettings, RawBatchOptions } from "../internal/batch.js";
import type { Admission } from "../internal/pool.js";
import type { KeyHints, OptionKeys } from "../internal/known-keys.js";
import { concurrencyOption, isDynamicLimit, type DynamicLimit } from "../internal/limits.js";
import {
  mapOptionHints,
  mapSettledOptionHints,
  streamOptionHints,
} from "../internal/option-hints.js";
import {
  optionalContext,
  optionalFunction,
  optionalSignal,
  optionsObject,
} from "../internal/validate.js";
import type { Context, Progress } from "../types.js";

/** The default `concurrency` of `map`, `mapSettled` and `stream`. */
export const DEFAULT_CONCURRENCY = 5;

/**
 * At most this many items wait for their keys under `perKey` when the batch's `concurrency` is
 * adaptive (a fixed one is the bound).
 */
export const ADAPTIVE_MAX_WAITING = 1_000;

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
   * ahead past it, keeping at most `concurrency` such items waiting (so at most
   * 2 × `concurrency` items are taken and not finished; 1,000 waiting with an adaptive
   * `concurrency`). Results keep input order. A `key` that throws fails its item as a stage
   * failure would.
   * @default undefined (no bound per key)
   * @example
   * ```ts
   * await pipeline.map(urls, { concurrency: 32, perKey: { key: (url) => new URL(url).host, concurrency: 2 } });
   * ```
   */
  perKey?: PerKeyOptions<I> | undefined;
}

/** The keys of {@link MapOptions}; any other key is rejected. A new option goes here too. */
export const mapOptionKeys = {
  concurrency: true,
  context: true,
  signal: true,
  onProgress: true,
  perKey: true,
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
  return {
    // An adaptive limit is the pool's gauge to hold: the workers themselves are then unbounded.
    concurrency: typeof limit === "number" ? limit : Infinity,
    dynamic: typeof limit === "number" ? undefined : limit,
    template: optionalContext(options.context as C | undefined),
    signal: optionalSignal(options.signal),
    onProgress: optionalFunction(
      "onProgress",
      options.onProgress as ((progress: Progress) => unknown) | undefined,
    ),
    admission: admissionFor(limit, perKey),
    options,
  };
}

/** The batch's per-key admission (`perKey`), one per batch; `undefined` for none. */
function admissionFor(
  limit: number | DynamicLimit,
  perKey: PerKeyOptions | undefined,
): (() => Admission<unknown>) | undefined {
  if (perKey === undefined) return undefined;
  // At most `concurrency` items wait for their keys, so at most 2 × `concurrency` items are
  // taken and not finished.
  const maxWaiting = typeof limit === "number" ? limit : ADAPTIVE_MAX_WAITING;
  const { key, concurrency } = perKey;
  if (isDynamicLimit(concurrency)) {
    return () => new AdaptiveKeys({ key, concurrency, maxWaiting });
  }
  return () => new KeyedAdmission(perKey, maxWaiting);
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
