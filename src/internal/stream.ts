import { untilAborted } from "./abort.js";
import { batchHooks, countsOf, recorder, type BatchSettings, type RunnerFactory } from "./batch.js";
import type { CheckpointJournal } from "./checkpoint.js";
import { Pool } from "./pool.js";
import {
  ResultStream,
  type CloseOutcome,
  type ResultSource,
  type ResultStreamSettings,
} from "./result-stream.js";
import { noop } from "./thenable.js";
import { countOrInfinity, optionalBoolean } from "./validate.js";

/** Stream-only options, validated. */
interface StreamShape {
  /** `undefined`: as large as the concurrency (under an adaptive one, its limit now). */
  readonly buffer: number | undefined;
  readonly ordered: boolean;
  readonly settled: boolean;
}

function streamShape(settings: BatchSettings<unknown>): StreamShape {
  const { buffer, ordered, settled } = settings.options;
  return {
    buffer: buffer === undefined ? undefined : countOrInfinity("buffer", buffer),
    ordered: optionalBoolean("ordered", ordered, true),
    settled: optionalBoolean("settled", settled, false),
  };
}

/**
 * `stream`: the pool feeding a {@link ResultStream}, with backpressure. At most `concurrency`
 * items run at once, and no item is taken while `concurrency + buffer` items are taken and not
 * yet read. Results come in input order (`ordered`) or as they settle; a failure ends the
 * stream with that error after the results ready before it (unless `settled`), and stops the
 * pool (fail-fast). Backpressure holds nothing: the pool's workers end when the window is
 * full, and a read starts them again. Under an adaptive concurrency the window follows its
 * limit: `limit + buffer`, `buffer` being the limit too unless given (so at most 2 × `max`).
 *
 * With a checkpoint, the journal is opened when the stream starts (the pool starts once it is
 * open) and closed when the pool ends, before the stream ends: see {@link JournaledSource}.
 *
 * The arguments are validated on the first `next()` (as a generator's body would be), so that
 * a bad option surfaces where the stream is read.
 */
export function pipelineStream(
  items: Iterable<unknown> | AsyncIterable<unknown>,
  makeSettings: () => BatchSettings<unknown>,
  runnerFor: (settings: BatchSettings<unknown>) => RunnerFactory,
  stages: readonly string[],
): ResultStream {
  return new ResultStream((stream): ResultStreamSettings => {
    const settings = makeSettings();
    const shape = streamShape(settings);
    const runner = runnerFor(settings);
    // Lazy outputs: a resumed stream fetches each recorded output when its item's turn comes.
    const journal = settings.journal?.(stages, true);
    let pool: Pool<unknown> | undefined;
    const hooks = batchHooks(
      items,
      settings,
      countsOf(() => pool),
      journal !== undefined,
    );
    const { buffer, settled } = shape;
    const { dynamic } = settings;
    const window = settings.concurrency + (buffer ?? settings.concurrency);
    const poolOf = (source: Iterable<unknown> | AsyncIterable<unknown>): Pool<unknown> => {
      // Annotated: the callbacks below read `started`, which TypeScript cannot infer through.
      // eslint-disable-next-line @typescript-eslint/consistent-generic-constructors
      const started: Pool<unknown> = new Pool({
        source,
        concurrency: settings.concurrency,
        signal: settings.signal,
        runner,
        settle: recorder((index, ok, outcome) => {
          // Fail-fast: the pool stops, and its failure ends the stream.
          if (!ok && !settled) return true;
          stream.arrive(
            index,
            !settled
              ? outcome
              : ok
                ? { status: "fulfilled", value: outcome }
                : { status: "rejected", reason: outcome },
          );
          return false;
        }, hooks.progress),
        // `reserved` counts the pulls under way too, so that workers pulling from an async
        // input at the same time cannot overshoot the window.
        room:
          dynamic === undefined
            ? () => started.reserved - stream.read < window
            : () => started.reserved - stream.read < dynamic.limit + (buffer ?? dynamic.limit),
        onEnd: hooks.onEnd,
        admission: hooks.admission,
        journal,
        dynamic,
      });
      pool = started;
      return started;
    };
    let source: ResultSource;
    if (journal === undefined) {
      const direct = poolOf(items);
      direct.done.then(
        () => {
          stream.end(undefined);
        },
        (error: unknown) => {
          stream.end({ error });
        },
      );
      source = {
        start: () => {
          direct.start();
        },
        resume: () => {
          direct.resume();
        },
        // The close waits for a pull under way (an async generator queues `return()` behind
        // it); cancellation never waits for an input that may not answer.
        stop: (reason) => untilAborted(direct.stop(reason, true), settings.signal),
      };
    } else {
      source = new JournaledSource(journal, items, poolOf, stream, settings.signal);
    }
    return {
      source,
      ordered: shape.ordered,
      spread: dynamic === undefined ? window : dynamic.limit + (buffer ?? dynamic.limit),
      signal: settings.signal,
      stopsBeforeAbort: journal !== undefined,
    };
  });
}

/**
 * The producer of a stream with a checkpoint: opens the journal when the stream starts, then
 * starts the pool on the input the journal gives; when the pool ends (or the consumer leaves
 * while the journal opens), closes the journal, and only then ends the stream (or settles the
 * consumer's `return()`), so that the checkpoint can be opened again at once.
 */
class JournaledSource implements ResultSource {
  readonly #journal: CheckpointJournal;
  readonly #items: Iterable<unknown> | AsyncIterable<unknown>;
  readonly #poolOf: (source: Iterable<unknown> | AsyncIterable<unknown>) => Pool<unknown>;
  readonly #stream: ResultStream;
  readonly #signal: AbortSignal | undefined;
  #pool: Pool<unknown> | undefined = undefined;
  /** The consumer left before the pool started. */
  #left = false;
  /** Settles once the journal is closed, with what the close threw. */
  readonly #closed: Promise<CloseOutcome>;
  #markClosed: (outcome: CloseOutcome) => void = noop;

  constructor(
    journal: CheckpointJournal,
    items: Iterable<unknown> | AsyncIterable<unknown>,
    poolOf: (source: Iterable<unknown> | AsyncIterable<unknown>) => Pool<unknown>,
    stream: ResultStream,
    signal: AbortSignal | undefined,
  ) {
    this.#journal = journal;
    this.#items = items;
    this.#poolOf = poolOf;
    this.#stream = stream;
    this.#signal = signal;
    this.#closed = new Promise((resolve) => {
      this.#markClosed = resolve;
    });
  }

  start(): void {
    this.#journal.open(this.#items).then(
      (input) => {
        if (this.#left) {
          this.#end(false, undefined);
          return;
        }
        const pool = this.#poolOf(input);
        this.#pool = pool;
        pool.done.then(
          () => {
            this.#end(true, undefined);
          },
          (error: unknown) => {
            this.#end(false, { error });
          },
        );
        pool.start();
      },
      (error: unknown) => {
        // A rejected `open` has closed the store already.
        this.#markClosed(undefined);
        this.#stream.end({ error });
      },
    );
  }

  resume(): void {
    this.#pool?.resume();
  }

  stop(reason: unknown): Promise<CloseOutcome> {
    const pool = this.#pool;
    let stopped: Promise<CloseOutcome>;
    if (pool === undefined) {
      this.#left = true;
      stopped = Promise.resolve(undefined);
    } else {
      // As without a checkpoint: the input's close, unless the caller's signal aborts first.
      stopped = untilAborted(pool.stop(reason, true), this.#signal);
    }
    // Settles once the journal is closed too: with the input's outcome (or the signal's
    // rejection), else with the close's.
    return Promise.allSettled([stopped, this.#closed]).then(([input, closed]) => {
      if (input.status === "rejected") throw input.reason;
      return input.value ?? (closed as PromiseFulfilledResult<CloseOutcome>).value;
    });
  }

  /** The pool ended (or never started): close the journal, then end the stream. */
  #end(completed: boolean, failure: CloseOutcome): void {
    this.#journal.close(completed).then(
      () => {
        this.#markClosed(undefined);
        this.#stream.end(failure);
      },
      (error: unknown) => {
        this.#markClosed({ error });
        // The stream's own failure wins over the close's.
        this.#stream.end(failure ?? { error });
      },
    );
  }
}
