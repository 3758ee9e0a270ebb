import { untilAborted } from "./abort.js";
import { batchHooks, recorder, type BatchSettings, type RunnerFactory } from "./batch.js";
import { Pool } from "./pool.js";
import { ResultStream, type ResultStreamSettings } from "./result-stream.js";
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
 * The arguments are validated on the first `next()` (as a generator's body would be), so that
 * a bad option surfaces where the stream is read.
 */
export function pipelineStream(
  items: Iterable<unknown> | AsyncIterable<unknown>,
  makeSettings: () => BatchSettings<unknown>,
  runnerFor: (settings: BatchSettings<unknown>) => RunnerFactory,
): ResultStream {
  return new ResultStream((stream): ResultStreamSettings => {
    const settings = makeSettings();
    const shape = streamShape(settings);
    const runner = runnerFor(settings);
    const hooks = batchHooks(items, settings, () => pool.inFlight);
    const { buffer } = shape;
    const { dynamic } = settings;
    const window = settings.concurrency + (buffer ?? settings.concurrency);
    const { settled } = shape;
    // Annotated: the callbacks below read `pool`, which TypeScript cannot infer through.
    // eslint-disable-next-line @typescript-eslint/consistent-generic-constructors
    const pool: Pool<unknown> = new Pool({
      source: items,
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
      // `reserved` counts the pulls under way too, so that workers pulling from an async input
      // at the same time cannot overshoot the window.
      room:
        dynamic === undefined
          ? () => pool.reserved - stream.read < window
          : () => pool.reserved - stream.read < dynamic.limit + (buffer ?? dynamic.limit),
      onEnd: hooks.onEnd,
      admission: hooks.admission,
      dynamic: settings.dynamic,
    });
    pool.done.then(
      () => {
        stream.end(undefined);
      },
      (error: unknown) => {
        stream.end({ error });
      },
    );
    return {
      source: {
        start: () => {
          pool.start();
        },
        resume: () => {
          pool.resume();
        },
        // The close waits for a pull under way (an async generator queues `return()` behind
        // it); cancellation never waits for an input that may not answer.
        stop: (reason) => untilAborted(pool.stop(reason, true), settings.signal),
      },
      ordered: shape.ordered,
      spread: dynamic === undefined ? window : dynamic.limit + (buffer ?? dynamic.limit),
      signal: settings.signal,
    };
  });
}
