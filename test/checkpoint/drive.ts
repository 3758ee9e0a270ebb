/**
 * A minimal batch that drives a {@link CheckpointJournal} exactly as the class's description
 * asks (open, take, record, close), one item at a time: what the journal's tests (and the crash
 * tests' child) use until the real batch calls it.
 */
import { CheckpointJournal, type JournalOptions } from "../../src/internal/checkpoint.js";
import type { CheckpointStore } from "../../src/index.js";

export interface Driven {
  /** One settled result per item taken, by index. */
  readonly results: PromiseSettledResult<unknown>[];
  /** The indexes that ran, in order. */
  readonly ran: number[];
  /** The indexes that were restored, in order. */
  readonly restored: number[];
  /** Whether the batch completed (and told `close` so). */
  readonly completed: boolean;
}

export interface DriveOptions extends Partial<JournalOptions> {
  /** `mapSettled`: go on after a failure (default `true`); `false`: stop at the first, like `map`. */
  readonly settled?: boolean;
  /** Stop before taking the item at this index, as an abort would (the batch does not complete). */
  readonly stopAt?: number;
}

/**
 * A journal on `store` for the one-stage pipeline `["double"]`, identity by position, failures
 * run again, outputs kept from the first read, unless `options` says otherwise.
 */
export function journalOn(
  store: CheckpointStore,
  options: Partial<JournalOptions> = {},
): CheckpointJournal {
  return new CheckpointJournal(store, {
    stages: options.stages ?? ["double"],
    version: options.version,
    itemKey: options.itemKey,
    retryFailed: options.retryFailed ?? true,
    lazyOutputs: options.lazyOutputs ?? false,
    signal: options.signal,
  });
}

/** Runs `items` through `run` with `store` as the checkpoint; rejects as the batch would. */
export async function drive<T>(
  store: CheckpointStore,
  items: Iterable<T> | AsyncIterable<T>,
  run: (item: T, index: number) => unknown,
  options: DriveOptions = {},
): Promise<Driven> {
  const journal = journalOn(store, options);
  const input = await journal.open(items);
  const driven = {
    results: [] as PromiseSettledResult<unknown>[],
    ran: [] as number[],
    restored: [] as number[],
    completed: false,
  };
  let failure: { error: unknown } | undefined;
  let stopped = false;
  try {
    let index = 0;
    for await (const item of input as AsyncIterable<T>) {
      const at = index++;
      if (at === options.stopAt) {
        stopped = true;
        break;
      }
      const taken = journal.take(item, at);
      let ok: boolean;
      let outcome: unknown;
      if (typeof taken === "object") {
        const restored = await taken;
        ({ ok, outcome } = restored);
        driven.restored.push(at);
      } else {
        driven.ran.push(at);
        try {
          outcome = await run(item, at);
          ok = true;
        } catch (error) {
          ok = false;
          outcome = error;
        }
        const replacement = journal.record(at, taken, ok, outcome);
        if (replacement !== undefined) {
          ok = false;
          outcome = replacement;
        }
      }
      driven.results[at] = ok
        ? { status: "fulfilled", value: outcome }
        : { status: "rejected", reason: outcome };
      if (!ok && options.settled === false) {
        failure = { error: outcome };
        break;
      }
    }
  } catch (error) {
    failure = { error };
  }
  driven.completed = failure === undefined && !stopped;
  try {
    await journal.close(driven.completed);
  } catch (error) {
    failure ??= { error };
  }
  if (failure !== undefined) throw failure.error;
  return driven;
}

/** The settled results as plain values: outputs, or `"✗ message"` for failures. */
export function outcomes(results: readonly PromiseSettledResult<unknown>[]): unknown[] {
  return results.map((result) =>
    result.status === "fulfilled" ? result.value : `✗ ${(result.reason as Error).message}`,
  );
}
