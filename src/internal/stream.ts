import { Pool } from "./pool.js";
import {
  admissionFor,
  progressHooks,
  reporterFor,
  type BatchSettings,
  type ItemRunner,
} from "./batch.js";
import { Queue } from "./queue.js";
import { ReorderBuffer } from "./reorder.js";
import { countOrInfinity, optionalBoolean } from "./validate.js";

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

/** A `next()` waiting for a result. */
interface Reader {
  resolve(result: IteratorResult<unknown, void>): void;
  reject(error: unknown): void;
}

function neverStarted(): never {
  throw new Error("never started");
}

const END: IteratorReturnResult<undefined> = Object.freeze({ done: true, value: undefined });

/**
 * `stream`: the pool feeding a hand-written async iterator, with backpressure. At most
 * `concurrency` items run at once, and no item is taken while `concurrency + buffer` items are
 * taken and not yet read. Results come in input order (`ordered`) or as they settle; a
 * failure ends the stream with that error after the results ready before it (unless
 * `settled`).
 *
 * Written by hand rather than as an `async *` generator because a generator queues
 * `return()` and `throw()` behind a pending `next()`: here leaving early works whichever way
 * the consumer leaves (`break`, `return()`, `throw()`, with or without a `next()` pending):
 * in-flight items' signals abort, nothing new starts, pending reads end, and the input is
 * closed, awaited before `return()` settles. A read that finds a result ready costs no
 * promise beyond the one it returns; every queue is O(1). Backpressure holds nothing: the
 * pool's workers end when the window is full, and a read starts them again.
 *
 * The arguments are validated on the first `next()` (as the generator's body would be), so
 * that a bad option surfaces where the stream is read.
 */
export class PipelineStream implements AsyncGenerator<unknown, void, undefined> {
  /**
   * An idle stream that is never read, kept for the life of the module with its queues and
   * ring, so that their hidden classes outlive every batch (as {@link Pool} does for its own).
   */
  // eslint-disable-next-line no-unused-private-class-members -- held, never read (see above)
  static readonly #idle: unknown = new PipelineStream([], neverStarted, neverStarted);

  readonly #items: Iterable<unknown> | AsyncIterable<unknown>;
  readonly #makeSettings: () => BatchSettings<unknown>;
  readonly #runnerFor: (settings: BatchSettings<unknown>) => ItemRunner;
  #signal: AbortSignal | undefined = undefined;
  #pool: Pool<unknown> | undefined = undefined;
  #ordered = true;
  #settled = false;
  #limit = 0;
  /** Ordered mode: results by input index, until read (sized for the window in `#start`). */
  #ready = new ReorderBuffer<unknown>(1);
  /** Unordered mode: results in the order they settled. */
  readonly #arrivals = new Queue<unknown>();
  readonly #readers = new Queue<Reader>();
  #read = 0;
  /** The pool has ended (or the consumer left): nothing more will arrive. */
  #finished = false;
  /** The stream is over for the consumer: every later `next()` is `done`. */
  #closed = false;
  #failure: { readonly error: unknown } | undefined = undefined;

  constructor(
    items: Iterable<unknown> | AsyncIterable<unknown>,
    makeSettings: () => BatchSettings<unknown>,
    runnerFor: (settings: BatchSettings<unknown>) => ItemRunner,
  ) {
    this.#items = items;
    this.#makeSettings = makeSettings;
    this.#runnerFor = runnerFor;
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  next(): Promise<IteratorResult<unknown, void>> {
    if (this.#closed) return Promise.resolve(END);
    if (this.#pool === undefined) {
      try {
        this.#start();
      } catch (error) {
        this.#closed = true;
        return Promise.reject(error);
      }
    }
    // Cancellation wins over results already waiting to be read.
    const signal = this.#signal;
    if (signal?.aborted === true) {
      this.#leave(signal.reason);
      return Promise.reject(signal.reason);
    }
    if (this.#readers.length === 0) {
      const taken = this.#take();
      if (taken !== undefined) {
        this.#pool?.resume();
        return Promise.resolve(taken);
      }
    }
    return new Promise((resolve, reject) => {
      this.#readers.push({ resolve, reject });
      this.#deliver();
    });
  }

  return(): Promise<IteratorResult<unknown, void>> {
    return this.#stop().then((outcome) => {
      if (outcome !== undefined) throw outcome.error;
      return END;
    });
  }

  throw(error: unknown): Promise<IteratorResult<unknown, void>> {
    return this.#stop().then(() => {
      throw error;
    });
  }

  #start(): void {
    const settings = this.#makeSettings();
    const shape = streamShape(settings);
    const runner = this.#runnerFor(settings);
    this.#signal = settings.signal;
    this.#ordered = shape.ordered;
    this.#settled = shape.settled;
    this.#limit = settings.concurrency + shape.buffer;
    if (shape.ordered) this.#ready = new ReorderBuffer(this.#limit);
    // Annotated: the callbacks below read `pool`, which TypeScript cannot infer through.
    // eslint-disable-next-line @typescript-eslint/consistent-generic-constructors
    const pool: Pool<unknown> = new Pool({
      source: this.#items,
      concurrency: settings.concurrency,
      signal: settings.signal,
      run: runner.run,
      mapRejection: runner.mapRejection,
      settle: (index, ok, outcome) => this.#arrive(index, ok, outcome),
      // `reserved` counts the pulls under way too, so that workers pulling from an async input
      // at the same time cannot overshoot the window.
      room: () => pool.reserved - this.#read < this.#limit,
      ...progressHooks(reporterFor(this.#items, settings, () => pool.inFlight)),
      admission: admissionFor(settings),
    });
    this.#pool = pool;
    pool.done.then(
      () => {
        this.#end(undefined);
      },
      (error: unknown) => {
        this.#end({ error });
      },
    );
    pool.start();
  }

  /** One item settled: returns `true` to stop the pool (fail-fast). */
  #arrive(index: number, ok: boolean, outcome: unknown): boolean {
    if (!ok && !this.#settled) return true;
    const value = !this.#settled
      ? outcome
      : ok
        ? { status: "fulfilled", value: outcome }
        : { status: "rejected", reason: outcome };
    if (this.#ordered) this.#ready.set(index, value);
    else this.#arrivals.push(value);
    this.#deliver();
    return false;
  }

  /**
   * The next result if one is ready to be read, else `undefined`. A read frees a place in the
   * window: the caller resumes the pool once its readers are served (a resumed item may settle
   * at once and deliver in turn).
   */
  #take(): IteratorYieldResult<unknown> | undefined {
    let value: unknown;
    if (this.#ordered) {
      if (!this.#ready.ready) return undefined;
      value = this.#ready.shift();
    } else {
      if (this.#arrivals.length === 0) return undefined;
      value = this.#arrivals.shift();
    }
    this.#read++;
    return { done: false, value };
  }

  /** Hands ready results to waiting readers, then the failure or the end once none is left. */
  #deliver(): void {
    const readers = this.#readers;
    let read = false;
    while (readers.length > 0) {
      const taken = this.#take();
      if (taken !== undefined) {
        (readers.shift() as Reader).resolve(taken);
        read = true;
        continue;
      }
      const failure = this.#failure;
      if (failure !== undefined) {
        this.#failure = undefined;
        this.#closed = true;
        (readers.shift() as Reader).reject(failure.error);
        continue;
      }
      if (this.#closed || this.#finished) {
        this.#closed = true;
        (readers.shift() as Reader).resolve(END);
        continue;
      }
      break;
    }
    if (read) this.#pool?.resume();
  }

  /** The pool ended: with `failure` (fail-fast, the signal, the input) or after every item. */
  #end(failure: { readonly error: unknown } | undefined): void {
    this.#finished = true;
    if (!this.#closed) this.#failure = failure;
    this.#deliver();
  }

  /** The signal aborted: the stream ends with its reason, the pool stops with it too. */
  #leave(reason: unknown): void {
    this.#closed = true;
    this.#finished = true;
    void this.#pool?.stop(reason, true);
    this.#deliver();
  }

  /**
   * The consumer leaves: pending reads end, the pool stops (in-flight items' signals abort,
   * the input is closed), and the returned promise settles once the close has: with what it
   * threw, if anything.
   */
  #stop(): Promise<{ readonly error: unknown } | undefined> {
    const pool = this.#pool;
    const wasClosed = this.#closed;
    this.#closed = true;
    this.#finished = true;
    this.#failure = undefined;
    this.#deliver();
    if (pool === undefined || wasClosed) return Promise.resolve(undefined);
    return pool.stop(consumerStopped(), true);
  }
}
