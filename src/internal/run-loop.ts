import { throwIfAborted, untilAborted } from "./abort.js";
import { failureOf, type Execution } from "./execution.js";
import type { AttemptObserver } from "./limits.js";
import { isThenable } from "./thenable.js";

/**
 * Runs one input through a pipeline's steps (each a stage's {@link Execution}, with its hooks
 * and middleware around it), in order, each getting the previous one's output. The one run
 * loop of the library: `pipeline.run`, `stage.run` and every batch item go through it.
 *
 * Synchronous first: steps that return values run one after another in one call, and the
 * loop hands out the thenable of the first step that returns one. Whoever drives the loop
 * awaits it and gives its value back to {@link RunLoop.resume}, which goes on from the next
 * step (or its error to {@link RunLoop.failure}): {@link finish} for a single run, a pool's worker for a batch (so a batch item costs no
 * promise of the loop's own). A step's failure is mapped there, where it is caught
 * ({@link failureOf}): cancellation wins over it, and a step of one plain attempt has its
 * failure wrapped in the stage's error only then.
 *
 * One loop serves the items of one worker one after another: it holds the current item's
 * step, context, signal and attempt observer between `start` and the end of that item.
 */
export class RunLoop {
  readonly #steps: readonly Execution[];
  /** Makes each run's context; `undefined`: every run gets the one given to the constructor. */
  readonly #newContext: (() => unknown) | undefined;
  readonly #signal: AbortSignal | undefined;
  /** The step whose thenable was handed out last. */
  #index = 0;
  #context: unknown;
  /** Told of the current item's failed attempts: an item under adaptive limits has one. */
  #observer: AttemptObserver | undefined = undefined;
  /** Whether the last `start` or `resume` handed out a thenable (else: the output). */
  pending = false;

  /**
   * `signal` is what every run of this loop is cancelled by. Every run gets `context` (a
   * single run's, or none), unless `newContext` is given to make each run's own (a batch's
   * items, when the pipeline has a context): data, not a function, for the common cases, so
   * that a run calls nothing it does not need.
   */
  constructor(
    steps: readonly Execution[],
    signal: AbortSignal | undefined,
    context: unknown,
    newContext: (() => unknown) | undefined,
  ) {
    this.#steps = steps;
    this.#signal = signal;
    this.#context = context;
    this.#newContext = newContext;
  }

  /**
   * Runs `input` from the first step: the output, or (with `pending` set) a thenable to await
   * and hand to {@link RunLoop.resume} (or, when it rejects, to {@link RunLoop.failure}).
   * Throws the run's failure. The caller has checked the signal. `observer` is told of each
   * failed attempt of this run's stages (a batch item under adaptive limits).
   */
  start(input: unknown, observer?: AttemptObserver): unknown {
    const newContext = this.#newContext;
    if (newContext !== undefined) this.#context = newContext();
    this.#observer = observer;
    return this.#from(0, input);
  }

  /** The thenable handed out last fulfilled with `value`: goes on from the next step. */
  resume(value: unknown): unknown {
    const next = this.#index + 1;
    // The common case first: the step that settled was the last one.
    if (next !== this.#steps.length) return this.#from(next, value);
    this.pending = false;
    return value;
  }

  /** The thenable handed out last rejected with `error`: what the run fails with. */
  failure(error: unknown): unknown {
    this.pending = false;
    return failureOf(this.#steps[this.#index] as Execution, error, this.#signal, this.#observer);
  }

  #from(first: number, input: unknown): unknown {
    const steps = this.#steps;
    const context = this.#context;
    const signal = this.#signal;
    const observer = this.#observer;
    let value = input;
    for (let index = first; index < steps.length; index++) {
      // No step starts once the signal has aborted: a step before may have aborted it.
      if (index > 0 && signal?.aborted === true) {
        this.pending = false;
        throw signal.reason;
      }
      const step = steps[index] as Execution;
      try {
        value = step.run(value, context, signal, observer);
        // Inside the try: reading `then` is the step's own code too (a getter may throw).
        if (isThenable(value)) {
          this.#index = index;
          this.pending = true;
          return value;
        }
      } catch (error) {
        this.pending = false;
        throw failureOf(step, error, signal, observer);
      }
    }
    this.pending = false;
    return value;
  }
}

/**
 * One whole run of `loop` on `input`, as a promise: the loop's synchronous start, then its
 * async tail. With a `signal`, the run rejects with its reason as soon as it aborts, whatever
 * the steps are doing (they see it too, and stop), and cancellation wins over an output.
 */
export function runOnce(
  loop: RunLoop,
  input: unknown,
  signal: AbortSignal | undefined,
  observer?: AttemptObserver,
): Promise<unknown> {
  let outcome: unknown;
  try {
    throwIfAborted(signal);
    outcome = loop.start(input, observer);
    if (!loop.pending) {
      // A synchronous step may have aborted the signal: cancellation wins over the output.
      throwIfAborted(signal);
      return Promise.resolve(outcome);
    }
  } catch (error) {
    return Promise.reject(error);
  }
  const tail = finish(loop, outcome, signal);
  return signal === undefined ? tail : untilAborted(tail, signal);
}

/** Awaits each thenable the loop hands out and resumes it, to the end of the run. */
async function finish(
  loop: RunLoop,
  pending: unknown,
  signal: AbortSignal | undefined,
): Promise<unknown> {
  let outcome = pending;
  while (loop.pending) {
    let value: unknown;
    try {
      value = await outcome;
    } catch (error) {
      throw loop.failure(error);
    }
    outcome = loop.resume(value);
  }
  // A step may have aborted the signal: cancellation wins over the output.
  throwIfAborted(signal);
  return outcome;
}
