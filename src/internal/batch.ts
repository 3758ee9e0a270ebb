import type { Progress } from "../types.js";
import type { DynamicLimit } from "./limits.js";
import { Pool, type Admission, type ItemRunner } from "./pool.js";
import { knownSize, ProgressReporter } from "./progress.js";

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

/** Validated batch settings: what `map`, `mapSettled` and `stream` share. */
export interface BatchSettings<C> {
  /** At most this many items at once: the fixed `concurrency`, or Infinity for an adaptive one. */
  readonly concurrency: number;
  /** An adaptive `concurrency`: the pool holds its places (and `concurrency` is Infinity). */
  readonly dynamic: DynamicLimit | undefined;
  readonly template: C | undefined;
  readonly signal: AbortSignal | undefined;
  readonly onProgress: ((progress: Progress) => unknown) | undefined;
  /** Makes the batch's per-key admission (`perKey`), one per batch; `undefined` for none. */
  readonly admission: (() => Admission<unknown>) | undefined;
  /** Every option as given, for the options of one form (a stream's `buffer`, …). */
  readonly options: RawBatchOptions;
}

/**
 * The runners of one batch: one per worker, each running that worker's items in turn under
 * the batch's signal.
 */
export type RunnerFactory = (signal: AbortSignal) => ItemRunner<unknown>;

/** The progress reporter of one batch, when `onProgress` is set. */
function reporterFor(
  items: unknown,
  settings: BatchSettings<unknown>,
  inFlight: () => number,
): ProgressReporter | undefined {
  if (settings.onProgress === undefined) return undefined;
  const { concurrency, dynamic } = settings;
  return new ProgressReporter(
    settings.onProgress,
    knownSize(items),
    inFlight,
    dynamic === undefined ? () => concurrency : () => dynamic.limit,
  );
}

/** What a pool task carries besides its own parts: progress and per-key admission. */
export interface BatchHooks {
  /** Told of each settled item (`ok` false for a failure); `undefined` without `onProgress`. */
  readonly progress: ProgressReporter | undefined;
  readonly onEnd: (() => void) | undefined;
  readonly admission: Admission<unknown> | undefined;
}

/**
 * The parts of a pool task that every batch form shares: progress reports and per-key
 * admission. `inFlight` reads the pool's count (the pool does not exist yet).
 */
export function batchHooks(
  items: unknown,
  settings: BatchSettings<unknown>,
  inFlight: () => number,
): BatchHooks {
  const progress = reporterFor(items, settings, inFlight);
  return {
    progress,
    onEnd:
      progress === undefined
        ? undefined
        : () => {
            progress.flush();
          },
    admission: settings.admission?.(),
  };
}

/**
 * `map` (fail-fast, outputs) and `mapSettled` (`PromiseSettledResult`s): runs the pool and
 * writes each outcome into the results array at its input index.
 */
export function collect(
  items: Iterable<unknown> | AsyncIterable<unknown>,
  settings: BatchSettings<unknown>,
  runner: RunnerFactory,
  settled: boolean,
): Promise<unknown[]> {
  // Pre-sized when the size is known: no regrowth while the results are written.
  const size = Array.isArray(items) ? items.length : 0;
  const results: unknown[] = size > 0 ? new Array<unknown>(size) : [];
  const hooks = batchHooks(items, settings, () => pool.inFlight);
  // Annotated: the callbacks above read `pool`, which TypeScript cannot infer through.
  // eslint-disable-next-line @typescript-eslint/consistent-generic-constructors
  const pool: Pool<unknown> = new Pool({
    source: items,
    concurrency: settings.concurrency,
    signal: settings.signal,
    runner,
    settle: recorder(
      settled
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
      hooks.progress,
    ),
    room: undefined,
    onEnd: hooks.onEnd,
    admission: hooks.admission,
    dynamic: settings.dynamic,
  });
  pool.start();
  return pool.done.then(() => results);
}

type Settle = (index: number, ok: boolean, outcome: unknown) => boolean;

/**
 * A pool's `settle`: `record` (which says whether to fail fast), and, with `onProgress`, the
 * item counted in the progress report before any stop. Composed once per batch, so that a
 * batch without `onProgress` checks nothing per item.
 */
export function recorder(record: Settle, progress: ProgressReporter | undefined): Settle {
  if (progress === undefined) return record;
  return (index, ok, outcome) => {
    const failFast = record(index, ok, outcome);
    progress.settled(ok);
    return failFast;
  };
}
