import type { Progress } from "../types.js";
import { throwIfAborted } from "./abort.js";
import { Pool } from "./pool.js";
import { knownSize, ProgressReporter } from "./progress.js";
import {
  concurrencyLimit,
  countOrInfinity,
  optionalBoolean,
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
}

/** Validated batch settings. */
export interface BatchSettings<C> {
  readonly concurrency: number;
  readonly template: C | undefined;
  readonly signal: AbortSignal | undefined;
  readonly onProgress: ((progress: Progress) => unknown) | undefined;
  readonly options: RawBatchOptions;
}

/** Runs one item: the pipeline, with the item's own context. */
export type ItemRunner = (item: unknown, signal: AbortSignal | undefined) => unknown;

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
    options,
  };
}

function reporterFor(
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
  run: ItemRunner,
  settled: boolean,
): Promise<unknown[]> {
  const results: unknown[] = [];
  const { signal } = settings;
  // Annotated: the callbacks below read `pool`, which TypeScript cannot infer through.
  // eslint-disable-next-line @typescript-eslint/consistent-generic-constructors
  const pool: Pool<unknown> = new Pool({
    source: items,
    concurrency: settings.concurrency,
    signal,
    // Also for mapSettled: an input that throws stops the batch, and its in-flight items must
    // stop too. One controller per worker, not per item.
    itemSignals: true,
    run: (item, _index, itemSignal) => run(item, itemSignal),
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
  });
  pool.start();
  return pool.done.then(() => results);
}

function progressHooks(reporter: ProgressReporter | undefined): {
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

/** Stream-only options, validated. */
interface StreamShape {
  readonly buffer: number;
  readonly ordered: boolean;
  readonly settled: boolean;
}

function streamShape(settings: BatchSettings<unknown>): StreamShape {
  const { buffer, ordered, settled } = settings.options;
  return {
    buffer: buffer === undefined ? settings.concurrency : countOrInfinity("buffer", buffer),
    ordered: optionalBoolean("ordered", ordered, true),
    settled: optionalBoolean("settled", settled, false),
  };
}

/** The reason in-flight items' signals abort with when the consumer stops reading. */
function consumerStopped(): Error {
  return new DOMException("The stream's consumer stopped reading", "AbortError");
}

/**
 * `stream`: the pool feeding an async generator, with backpressure. At most `concurrency`
 * items run at once, and no item is taken while `concurrency + buffer` items are taken and
 * not yet read. Results come in input order (`ordered`) or as they settle; a failure ends the
 * stream with that error after the results ready before it (unless `settled`). Leaving the
 * loop early stops the pool: in-flight items' signals abort and the input is closed.
 */
export async function* streamResults(
  items: Iterable<unknown> | AsyncIterable<unknown>,
  settings: BatchSettings<unknown>,
  run: ItemRunner,
): AsyncGenerator<unknown, void, undefined> {
  const shape = streamShape(settings);
  const limit = settings.concurrency + shape.buffer;
  const ready = new Map<number, unknown>();
  const arrivals: unknown[] = [];
  let nextIndex = 0;
  let read = 0;
  let finished = false;
  let failure: { error: unknown } | undefined;
  let wakeConsumer: (() => void) | undefined;
  // Every worker blocked by the read-ahead window waits here, each on its own promise. A read
  // frees one place, so it wakes one worker (which re-checks the window); the end of the
  // stream wakes them all. Waking all on every read would cost O(concurrency) per item.
  let blocked: (() => void)[] = [];
  const nudge = (): void => {
    const wake = wakeConsumer;
    wakeConsumer = undefined;
    wake?.();
  };
  const releaseOne = (): void => {
    blocked.shift()?.();
  };
  const release = (): void => {
    if (blocked.length === 0) return;
    const waiting = blocked;
    blocked = [];
    for (const wake of waiting) wake();
  };

  // Annotated: the callbacks below read `pool`, which TypeScript cannot infer through.
  // eslint-disable-next-line @typescript-eslint/consistent-generic-constructors
  const pool: Pool<unknown> = new Pool({
    source: items,
    concurrency: settings.concurrency,
    signal: settings.signal,
    itemSignals: true,
    run: (item, _index, itemSignal) => run(item, itemSignal),
    settle: (index, ok, outcome) => {
      if (!ok && !shape.settled) return true;
      const value = !shape.settled
        ? outcome
        : ok
          ? { status: "fulfilled", value: outcome }
          : { status: "rejected", reason: outcome };
      if (shape.ordered) ready.set(index, value);
      else arrivals.push(value);
      nudge();
      return false;
    },
    wait: () =>
      // `reserved` counts the pulls under way too, so that workers pulling from an async
      // input at the same time cannot overshoot the window.
      finished || pool.reserved - read < limit
        ? undefined
        : new Promise<void>((resolve) => {
            blocked.push(resolve);
          }),
    ...progressHooks(reporterFor(items, settings, () => pool.inFlight)),
  });
  pool.done.then(
    () => {
      finished = true;
      nudge();
    },
    (error: unknown) => {
      finished = true;
      failure = { error };
      release();
      nudge();
    },
  );
  pool.start();

  // Read through a call: the pool's callbacks change it while this loop awaits.
  const failed = (): { error: unknown } | undefined => failure;
  const ended = (): boolean => finished;
  try {
    for (;;) {
      // Cancellation wins over results already waiting to be read.
      throwIfAborted(settings.signal);
      let value: unknown;
      let have = false;
      if (shape.ordered) {
        if (ready.has(nextIndex)) {
          value = ready.get(nextIndex);
          ready.delete(nextIndex);
          nextIndex++;
          have = true;
        }
      } else if (arrivals.length > 0) {
        value = arrivals.shift();
        have = true;
      }
      if (have) {
        read++;
        releaseOne();
        yield value;
        continue;
      }
      const late = failed();
      if (late !== undefined) throw late.error;
      if (ended()) return;
      await new Promise<void>((resolve) => {
        wakeConsumer = resolve;
      });
    }
  } finally {
    finished = true;
    pool.stop(consumerStopped(), true);
    release();
  }
}
