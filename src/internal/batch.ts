import type { Progress } from "../types.js";
import type { CheckpointJournal } from "./checkpoint.js";
import type { DynamicLimit } from "./limits.js";
import { Pool, type Admission, type ItemRunner } from "./pool.js";
import { knownSize, ProgressReporter } from "./progress.js";
import { noop } from "./thenable.js";

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
  checkpoint?: unknown;
  itemKey?: unknown;
  retryFailed?: unknown;
  version?: unknown;
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
  /**
   * Makes the batch's checkpoint journal (`checkpoint`, with `itemKey`, `retryFailed` and
   * `version`), one per batch, for a pipeline of these stage names; `lazyOutputs` for a stream.
   * `undefined` for none.
   */
  readonly journal:
    ((stages: readonly string[], lazyOutputs: boolean) => CheckpointJournal) | undefined;
  /** Every option as given, for the options of one form (a stream's `buffer`, …). */
  readonly options: RawBatchOptions;
}

/**
 * The runners of one batch: one per worker, each running that worker's items in turn under
 * the batch's signal.
 */
export type RunnerFactory = (signal: AbortSignal) => ItemRunner<unknown>;

/** What the progress report reads of the pool, which does not exist yet when it is made. */
export interface PoolCounts {
  /** Items taken and not yet settled. */
  readonly inFlight: () => number;
  /** Items restored from the checkpoint. */
  readonly restored: () => number;
}

/** The progress reporter of one batch, when `onProgress` is set. */
function reporterFor(
  items: unknown,
  settings: BatchSettings<unknown>,
  counts: PoolCounts,
  journaled: boolean,
): ProgressReporter | undefined {
  if (settings.onProgress === undefined) return undefined;
  const { concurrency, dynamic } = settings;
  return new ProgressReporter(
    settings.onProgress,
    knownSize(items),
    counts.inFlight,
    journaled ? counts.restored : undefined,
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
 * admission. `counts` reads the pool's counts (the pool does not exist yet); `journaled` says
 * whether the batch has a checkpoint (its reports then count the items restored).
 */
export function batchHooks(
  items: unknown,
  settings: BatchSettings<unknown>,
  counts: PoolCounts,
  journaled: boolean,
): BatchHooks {
  const progress = reporterFor(items, settings, counts, journaled);
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
 * writes each outcome into the results array at its input index. With a checkpoint, the
 * journal is opened first (it may read the input ahead, and gives the input to read instead),
 * and closed last, whichever way the batch ends, before the promise settles.
 */
export function collect(
  items: Iterable<unknown> | AsyncIterable<unknown>,
  settings: BatchSettings<unknown>,
  runner: RunnerFactory,
  settled: boolean,
  stages: readonly string[],
): Promise<unknown[]> {
  const journal = settings.journal?.(stages, false);
  if (journal === undefined) return collectFrom(items, items, settings, runner, settled, undefined);
  // When `open` rejects, it has closed the store already.
  return journal.open(items).then((input) =>
    collectFrom(input, items, settings, runner, settled, journal).then(
      async (results) => {
        await journal.close(true);
        return results;
      },
      async (error: unknown) => {
        // The batch's own failure wins over the close's.
        await journal.close(false).catch(noop);
        throw error;
      },
    ),
  );
}

/** {@link collect} from `source` (`items`, or what the journal gave to read instead). */
function collectFrom(
  source: Iterable<unknown> | AsyncIterable<unknown>,
  items: Iterable<unknown> | AsyncIterable<unknown>,
  settings: BatchSettings<unknown>,
  runner: RunnerFactory,
  settled: boolean,
  journal: CheckpointJournal | undefined,
): Promise<unknown[]> {
  // Pre-sized when the size is known: no regrowth while the results are written.
  const size = Array.isArray(items) ? items.length : 0;
  const results: unknown[] = size > 0 ? new Array<unknown>(size) : [];
  const hooks = batchHooks(
    items,
    settings,
    countsOf(() => pool),
    journal !== undefined,
  );
  // Annotated: the callbacks above read `pool`, which TypeScript cannot infer through.
  // eslint-disable-next-line @typescript-eslint/consistent-generic-constructors
  const pool: Pool<unknown> = new Pool({
    source,
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
    journal,
    dynamic: settings.dynamic,
  });
  pool.start();
  return pool.done.then(() => results);
}

/** The {@link PoolCounts} of the pool `pool()` returns once it exists. */
export function countsOf(pool: () => Pool<unknown> | undefined): PoolCounts {
  return {
    inFlight: () => pool()?.inFlight ?? 0,
    restored: () => pool()?.restored ?? 0,
  };
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
