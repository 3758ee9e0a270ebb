import type { Progress } from "../types.js";
import { KeyedAdmission, perKeyOption, type PerKeyOptions } from "../flow/per-key.js";
import { Pool } from "./pool.js";
import { knownSize, ProgressReporter } from "./progress.js";
import {
  concurrencyLimit,
  optionalContext,
  optionalFunction,
  optionalSignal,
  optionsObject,
} from "./validate.js";

/** The default `concurrency` of `map`, `mapSettled` and `stream`. */
export const DEFAULT_CONCURRENCY = 5;

/** The options every batch form takes, as the user gave them. */
export interface RawBatchOptions {
  concurrency?: unknown;
  context?: unknown;
  signal?: unknown;
  onProgress?: unknown;
  buffer?: unknown;
  ordered?: unknown;
  settled?: unknown;
  perKey?: unknown;
}

/** Validated batch settings. */
export interface BatchSettings<C> {
  readonly concurrency: number;
  readonly template: C | undefined;
  readonly signal: AbortSignal | undefined;
  readonly onProgress: ((progress: Progress) => unknown) | undefined;
  readonly perKey: PerKeyOptions | undefined;
  readonly options: RawBatchOptions;
}

/** Runs one batch item: the pipeline, with the item's own context. */
export interface ItemRunner {
  /** Runs the item: its output or a promise of it. What it throws is the item's failure. */
  readonly run: (item: unknown, signal: AbortSignal) => unknown;
  /**
   * Maps a rejection of the promise `run` returned into the item's failure, for a runner that
   * returns its stage's own promise; `undefined` when that promise rejects with the failure.
   */
  readonly mapRejection: ((error: unknown) => unknown) | undefined;
}

/**
 * Reads `(items, concurrency?, options?)` or `(items, options?)`: a positional concurrency
 * wins over `options.concurrency`. Throws `TypeError`/`RangeError` for bad arguments, and a
 * `TypeError` for an option key that `known` (the form's option keys) does not list.
 */
export function batchSettings<C>(
  items: unknown,
  concurrencyOrOptions: unknown,
  maybeOptions: unknown,
  known: object,
): BatchSettings<C> {
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
  if (typeof concurrencyOrOptions === "object" && concurrencyOrOptions !== null) {
    options = optionsObject<RawBatchOptions>("options", concurrencyOrOptions, known) ?? {};
    concurrency = options.concurrency;
  } else {
    options = optionsObject<RawBatchOptions>("options", maybeOptions, known) ?? {};
    concurrency = concurrencyOrOptions === undefined ? options.concurrency : concurrencyOrOptions;
  }
  return {
    concurrency: concurrency === undefined ? DEFAULT_CONCURRENCY : concurrencyLimit(concurrency),
    template: optionalContext(options.context as C | undefined),
    signal: optionalSignal(options.signal),
    onProgress: optionalFunction(
      "onProgress",
      options.onProgress as ((progress: Progress) => unknown) | undefined,
    ),
    perKey: perKeyOption(options.perKey),
    options,
  };
}

export function reporterFor(
  items: unknown,
  settings: BatchSettings<unknown>,
  inFlight: () => number,
): ProgressReporter | undefined {
  return settings.onProgress === undefined
    ? undefined
    : new ProgressReporter(settings.onProgress, knownSize(items), inFlight);
}

/**
 * `map` (fail-fast, outputs) and `mapSettled` (`PromiseSettledResult`s): runs the pool and
 * writes each outcome into the results array at its input index.
 */
export function collect(
  items: Iterable<unknown> | AsyncIterable<unknown>,
  settings: BatchSettings<unknown>,
  runner: ItemRunner,
  settled: boolean,
): Promise<unknown[]> {
  // Pre-sized when the size is known: no regrowth while the results are written.
  const size = Array.isArray(items) ? items.length : 0;
  const results: unknown[] = size > 0 ? new Array<unknown>(size) : [];
  const { signal } = settings;
  // Annotated: the callbacks below read `pool`, which TypeScript cannot infer through.
  // eslint-disable-next-line @typescript-eslint/consistent-generic-constructors
  const pool: Pool<unknown> = new Pool({
    source: items,
    concurrency: settings.concurrency,
    signal,
    run: runner.run,
    mapRejection: runner.mapRejection,
    settle: settled
      ? (index, ok, outcome) => {
          results[index] = ok
            ? { status: "fulfilled", value: outcome }
            : { status: "rejected", reason: outcome };
          return false;
        }
      : (index, ok, outcome) => {
          if (!ok) return true;
          results[index] = outcome;
          return false;
        },
    ...progressHooks(reporterFor(items, settings, () => pool.inFlight)),
    admission: admissionFor(settings),
  });
  pool.start();
  return pool.done.then(() => results);
}

export function progressHooks(reporter: ProgressReporter | undefined): {
  onSettled?: (ok: boolean) => void;
  onEnd?: () => void;
} {
  if (reporter === undefined) return {};
  return {
    onSettled: (ok) => {
      reporter.settled(ok);
    },
    onEnd: () => {
      reporter.flush();
    },
  };
}

/**
 * The `perKey` admission of one batch: at most `concurrency` items wait for their keys, so at
 * most 2 × `concurrency` items are taken and not finished.
 */
export function admissionFor(
  settings: BatchSettings<unknown>,
): KeyedAdmission<unknown> | undefined {
  const { perKey } = settings;
  return perKey === undefined ? undefined : new KeyedAdmission(perKey, settings.concurrency);
}
