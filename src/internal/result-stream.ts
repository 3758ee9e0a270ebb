import { Queue } from "./queue.js";
import { ReorderBuffer } from "./reorder.js";
import { noop } from "./thenable.js";

/** What closing a producer's input threw, if anything. */
export type CloseOutcome = { readonly error: unknown } | undefined;

/**
 * The producer behind a {@link ResultStream}: the in-process pool, or a distributed batch.
 * The stream tells it when a read made room, and when the consumer left.
 */
export interface ResultSource {
  /**
   * Begin producing: called once, right after the stream took its settings, so that results
   * may arrive (even synchronously, from inside this call) and end the stream.
   */
  start(): void;
  /** A result was read: there may be room to take more input now. */
  resume(): void;
  /**
   * Stop producing with `reason` (the consumer left, or the caller's signal aborted): start
   * nothing new, abort what runs, close the input. Resolves with what the close threw, once
   * it has settled, or rejects with the caller's signal's reason when it aborts first (a
   * close may wait for an input that never answers).
   */
  stop(reason: unknown): Promise<CloseOutcome>;
}

/** How a {@link ResultStream} delivers, decided when it starts. */
export interface ResultStreamSettings {
  readonly source: ResultSource;
  /** `true`: results in input order (by the index given to `arrive`); `false`: as they arrive. */
  readonly ordered: boolean;
  /**
   * How far ahead of the next read a result can land (input indexes): sizes the ordered ring,
   * which then never grows. `Infinity` when unbounded.
   */
  readonly spread: number;
  /** The caller's signal: once it has aborted, `next()` rejects with its reason. */
  readonly signal: AbortSignal | undefined;
  /**
   * `true` when the producer holds something its caller may want back as soon as the stream
   * has ended (a checkpoint): a `next()` that finds the caller's signal aborted then rejects
   * once the producer's `stop` has settled, not before.
   */
  readonly stopsBeforeAbort: boolean;
}

/** A `next()` waiting for a result. */
interface Reader {
  resolve(result: IteratorResult<unknown, void>): void;
  reject(error: unknown): void;
}

const END: IteratorReturnResult<undefined> = Object.freeze({ done: true, value: undefined });

/** The reason a producer is stopped with when the consumer stops reading. */
function consumerStopped(): Error {
  return new DOMException("The stream's consumer stopped reading", "AbortError");
}

/**
 * The consumer side of a stream of results: a hand-written async iterator, fed by a producer
 * ({@link ResultSource}) through {@link ResultStream.arrive} and {@link ResultStream.end}.
 * Results are read in input order (a ring indexed by input position) or as they arrive; a
 * failure ends the stream after the results ready before it.
 *
 * Written by hand rather than as an `async *` generator because a generator queues
 * `return()` and `throw()` behind a pending `next()`: here leaving early works whichever way
 * the consumer leaves (`break`, `return()`, `throw()`, with or without a `next()` pending):
 * pending reads end at once, the producer is stopped, and `return()` settles once the
 * producer's input is closed. A read that finds a result ready costs no promise beyond the
 * one it returns; every queue is O(1). Backpressure is the producer's: it counts
 * {@link ResultStream.read} against its window, and each read calls its `resume()`.
 *
 * The producer is made on the first `next()` (as a generator's body would run then): `start`
 * may throw (bad arguments), and that first `next()` then rejects with it.
 */
export class ResultStream implements AsyncGenerator<unknown, void, undefined> {
  readonly #start: (stream: ResultStream) => ResultStreamSettings;
  #settings: ResultStreamSettings | undefined = undefined;
  /** Ordered mode: results by input index, until read (sized when the stream starts). */
  #ready: ReorderBuffer<unknown> | undefined = undefined;
  /** Unordered mode: results in the order they arrived. */
  readonly #arrivals = new Queue<unknown>();
  readonly #readers = new Queue<Reader>();
  #read = 0;
  /** The producer has ended (or the consumer left): nothing more will arrive. */
  #finished = false;
  /** The stream is over for the consumer: every later `next()` is `done`. */
  #closed = false;
  #failure: { readonly error: unknown } | undefined = undefined;

  /** `start` builds the producer, given this stream to feed; called by the first `next()`. */
  constructor(start: (stream: ResultStream) => ResultStreamSettings) {
    this.#start = start;
  }

  /** Results read by the consumer so far. */
  get read(): number {
    return this.#read;
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  next(): Promise<IteratorResult<unknown, void>> {
    if (this.#closed) return Promise.resolve(END);
    let settings = this.#settings;
    if (settings === undefined) {
      try {
        settings = this.#begin();
      } catch (error) {
        this.#closed = true;
        return Promise.reject(error);
      }
    }
    // Cancellation wins over results already waiting to be read.
    const { signal } = settings;
    if (signal?.aborted === true) {
      const reason = signal.reason as Error;
      const stopped = this.#leave(reason);
      return settings.stopsBeforeAbort
        ? stopped.then(() => Promise.reject(reason))
        : Promise.reject(reason);
    }
    if (this.#readers.length === 0) {
      const taken = this.#take();
      if (taken !== undefined) {
        settings.source.resume();
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

  /** The result of input `index` is ready (in unordered mode the index is not used). */
  arrive(index: number, value: unknown): void {
    if (this.#closed) return;
    const ready = this.#ready;
    if (ready === undefined) this.#arrivals.push(value);
    else ready.set(index, value);
    this.#deliver();
  }

  /**
   * Nothing more will arrive: the producer finished, or failed with `failure` (read after the
   * results that are ready).
   */
  end(failure: { readonly error: unknown } | undefined): void {
    this.#finished = true;
    if (!this.#closed) this.#failure = failure;
    this.#deliver();
  }

  #begin(): ResultStreamSettings {
    const settings = this.#start(this);
    this.#settings = settings;
    if (settings.ordered) this.#ready = new ReorderBuffer(settings.spread);
    settings.source.start();
    return settings;
  }

  /** The next result if one is ready to be read, else `undefined`. */
  #take(): IteratorYieldResult<unknown> | undefined {
    let value: unknown;
    const ready = this.#ready;
    if (ready !== undefined) {
      if (!ready.ready) return undefined;
      value = ready.shift();
    } else {
      if (this.#arrivals.length === 0) return undefined;
      value = this.#arrivals.shift();
    }
    this.#read++;
    return { done: false, value };
  }

  /**
   * Hands ready results to waiting readers, then the failure or the end once none is left. A
   * read frees a place in the producer's window: it is resumed once the readers are served (a
   * resumed item may settle at once and deliver in turn).
   */
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
    if (read) this.#settings?.source.resume();
  }

  /**
   * The signal aborted: the stream ends with its reason, and the producer stops with it. The
   * returned promise settles (and never rejects) once the stop has.
   */
  #leave(reason: unknown): Promise<void> {
    this.#closed = true;
    this.#finished = true;
    // The stream already ends with `reason`: what the stop comes to is nobody's to hear.
    const stopped = this.#settings?.source.stop(reason).then(noop, noop);
    this.#deliver();
    return stopped ?? Promise.resolve();
  }

  /**
   * The consumer leaves: pending reads end, the producer stops, and the returned promise
   * settles once its input is closed: with what the close threw, if anything.
   */
  #stop(): Promise<CloseOutcome> {
    const settings = this.#settings;
    const wasClosed = this.#closed;
    this.#closed = true;
    this.#finished = true;
    this.#failure = undefined;
    this.#deliver();
    if (settings === undefined || wasClosed) return Promise.resolve(undefined);
    return settings.source.stop(consumerStopped());
  }
}
