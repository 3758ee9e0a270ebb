import { untilAborted, whenAborted, type Subscription } from "./abort.js";
import { isThenable, noop } from "./thenable.js";

/** What the pool does with each item and each outcome. */
export interface PoolTask<T> {
  /** The input, consumed lazily. */
  readonly source: Iterable<T> | AsyncIterable<T>;
  /** At most this many items are taken and not yet finished (an integer ≥ 1 or Infinity). */
  readonly concurrency: number;
  /** The caller's signal: aborting it stops the pool with its reason. */
  readonly signal: AbortSignal | undefined;
  /** Runs one item; may return a promise. `signal` is the batch's (see {@link Pool.signal}). */
  run(item: T, signal: AbortSignal): unknown;
  /**
   * Receives one item's outcome (its output, or what it threw), in completion order.
   * Returning `true` stops the pool with `outcome` as the reason: this is how fail-fast works.
   */
  settle(index: number, ok: boolean, outcome: unknown): boolean;
  /**
   * Optional backpressure: while it returns a promise, no item is taken; it is asked again
   * when that promise resolves.
   */
  readonly wait?: (() => Promise<void> | undefined) | undefined;
  /** Optional: told after each item settles (`ok` false for a failure), before any stop. */
  readonly onSettled?: ((ok: boolean) => void) | undefined;
  /** Optional: told once when the pool ends, whichever way, before `done` settles. */
  readonly onEnd?: (() => void) | undefined;
}

/** What closing the input threw, if anything: see {@link Pool.stop}. */
export type CloseOutcome = { readonly error: unknown } | undefined;

/** The reason in-flight items' signals abort with when another item failed (fail-fast). */
function failedElsewhere(): DOMException {
  return new DOMException("Stopped because another item of the batch failed", "AbortError");
}

const DONE: IteratorReturnResult<undefined> = Object.freeze({ done: true, value: undefined });

/** The array iterator every array has unless someone replaced it: then indexes can be read. */
const arrayValues = Array.prototype[Symbol.iterator];

/**
 * A pool of at most `concurrency` workers pulling items from one input: the engine behind
 * `map`, `mapSettled` and `stream`. Workers start one per item taken, up to the limit, so a
 * short input starts few. An array is read by index; any other input through its iterator,
 * never asked again once it said `done`; pulls from an async iterator are serialised.
 *
 * When the pool stops early (fail-fast, the caller's signal, or {@link Pool.stop}) it starts
 * nothing new, aborts the batch's signal (which every item's stages and `call.signal`s watch),
 * and closes the input with `return()`, awaiting it before `done` settles.
 */
export class Pool<T> {
  readonly #task: PoolTask<T>;
  /** The batch's signal: aborts when the pool stops early. One controller per batch. */
  readonly #controller = new AbortController();
  /** The input when it is a plain array: read by index, no iterator result per item. */
  #array: readonly T[] | undefined = undefined;
  #iterator: Iterator<T> | AsyncIterator<T> | undefined = undefined;
  #sync = true;
  #workers = 0;
  #filling = false;
  #pending: Promise<void> | undefined = undefined;
  #exhausted = false;
  #stopped = false;
  #nextIndex = 0;
  #inFlight = 0;
  #pulling = 0;
  #subscription: Subscription | undefined = undefined;
  readonly #hold: Subscription;
  #resolve: () => void = noop;
  #reject: (error: unknown) => void = noop;
  readonly #crash = (error: unknown): void => {
    void this.stop(error, true);
  };

  /** Settles when every item has settled, or rejects with the reason the pool stopped. */
  readonly done: Promise<void>;

  constructor(task: PoolTask<T>) {
    this.#task = task;
    // Held for the pool's life: the batch signal's registry entry (and its one listener)
    // stays while attempts subscribe and leave one at a time, instead of coming and going.
    this.#hold = whenAborted(this.#controller.signal, noop);
    this.done = new Promise<void>((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
  }

  /** Items taken from the input and not yet settled. */
  get inFlight(): number {
    return this.#inFlight;
  }

  /** Items taken from the input so far, plus pulls from an async input under way. */
  get reserved(): number {
    return this.#nextIndex + this.#pulling;
  }

  /** Starts pulling. Call once. */
  start(): void {
    const { signal, source } = this.#task;
    if (signal?.aborted === true) {
      void this.stop(signal.reason, false);
      return;
    }
    try {
      const asyncFactory = (source as Partial<AsyncIterable<T>>)[Symbol.asyncIterator];
      if (typeof asyncFactory === "function") {
        this.#sync = false;
        this.#iterator = asyncFactory.call(source);
      } else if (Array.isArray(source) && source[Symbol.iterator] === arrayValues) {
        this.#array = source as readonly T[];
      } else {
        this.#iterator = (source as Iterable<T>)[Symbol.iterator]();
      }
    } catch (error) {
      void this.stop(error, false);
      return;
    }
    if (signal !== undefined) {
      this.#subscription = whenAborted(signal, () => {
        void this.stop(signal.reason, true);
      });
    }
    this.#fill();
    if (this.#workers === 0) this.#finish();
  }

  /**
   * Stops early with `reason`: nothing new starts, the batch's signal aborts (with
   * `abortReason`, by default `reason`), the input is closed (when `closeSource`), and `done`
   * rejects with `reason` once the close has settled: the reason wins over what the close
   * threw. Returns what the close threw, for a caller for whom no other reason exists (a
   * stream's consumer leaving). Later calls do nothing and return `undefined`.
   *
   * When a pull from an async input is under way, `return()` is still called at once (an
   * iterator may use it to cut that pull short; an async generator queues it behind the
   * pull) and `done` waits for the pull and the close, as `for await` would, unless the
   * caller's signal aborts (or has): cancellation never waits for an input that may not
   * answer.
   */
  stop(
    reason: unknown,
    closeSource: boolean,
    abortReason: unknown = reason,
  ): Promise<CloseOutcome> {
    if (this.#stopped) return Promise.resolve(undefined);
    this.#stopped = true;
    this.#subscription?.cancel();
    this.#controller.abort(abortReason);
    const closing =
      closeSource && !this.#exhausted ? this.#close() : Promise.resolve<CloseOutcome>(undefined);
    // With a pull under way the close waits for it; so does the batch, unless the caller's
    // signal aborts (or has): cancellation never waits for an input that may not answer.
    const settleAfter =
      this.#pending === undefined ? closing : untilAborted(closing, this.#task.signal);
    void settleAfter.then(this.#settleStopped(reason), this.#settleStopped(reason));
    return closing;
  }

  #settleStopped(reason: unknown): () => void {
    return () => {
      this.#task.onEnd?.();
      this.#reject(reason);
    };
  }

  /** Calls the input's `return()` and awaits it; never rejects. */
  #close(): Promise<CloseOutcome> {
    const iterator = this.#iterator;
    try {
      if (iterator?.return === undefined) return Promise.resolve(undefined);
      const result = iterator.return();
      if (!isThenable(result)) return Promise.resolve(undefined);
      return Promise.resolve(result).then(
        () => undefined,
        (error: unknown) => ({ error }),
      );
    } catch (error) {
      return Promise.resolve({ error });
    }
  }

  #finish(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#subscription?.cancel();
    this.#hold.cancel();
    this.#task.onEnd?.();
    this.#resolve();
  }

  /** `#stopped`, read through a call: it changes while a worker awaits. */
  #halted(): boolean {
    return this.#stopped;
  }

  #fill(): void {
    if (this.#filling) return;
    this.#filling = true;
    while (
      !this.#stopped &&
      !this.#exhausted &&
      this.#workers < this.#task.concurrency &&
      (this.#sync || this.#pending === undefined)
    ) {
      this.#workers++;
      // #work handles every failure it expects; anything else stops the pool rather than
      // becoming an unhandled rejection.
      this.#work().then(undefined, this.#crash);
    }
    this.#filling = false;
  }

  async #pull(): Promise<IteratorResult<T>> {
    const iterator = this.#iterator as AsyncIterator<T>;
    while (this.#pending !== undefined) await this.#pending;
    if (this.#stopped || this.#exhausted) return DONE;
    const next = Promise.resolve(iterator.next());
    this.#pending = next.then(noop, noop);
    try {
      return await next;
    } finally {
      this.#pending = undefined;
    }
  }

  async #work(): Promise<void> {
    const task = this.#task;
    const signal = this.#controller.signal;
    try {
      for (;;) {
        if (task.wait !== undefined) {
          for (let gate = task.wait(); gate !== undefined; gate = task.wait()) await gate;
        }
        // Once the input said `done`, nobody asks it again.
        if (this.#halted() || this.#exhausted) return;
        let item: T;
        try {
          const array = this.#array;
          if (array !== undefined) {
            if (this.#nextIndex >= array.length) {
              this.#exhausted = true;
              return;
            }
            item = array[this.#nextIndex] as T;
          } else {
            let step: IteratorResult<T>;
            if (this.#sync) {
              step = (this.#iterator as Iterator<T>).next();
            } else {
              this.#pulling++;
              try {
                step = await this.#pull();
              } finally {
                this.#pulling--;
              }
            }
            if (typeof step !== "object" || (step as unknown) === null) {
              throw new TypeError("Iterator result is not an object");
            }
            if (step.done === true) {
              this.#exhausted = true;
              return;
            }
            // Inside the try: a throwing `value` getter is the input failing, not the item.
            item = step.value;
          }
        } catch (error) {
          this.#exhausted = true;
          void this.stop(error, false);
          return;
        }
        if (this.#halted()) return;
        const index = this.#nextIndex++;
        this.#inFlight++;
        this.#fill();
        let ok = true;
        let outcome: unknown;
        try {
          outcome = task.run(item, signal);
          if (isThenable(outcome)) outcome = await outcome;
        } catch (error) {
          ok = false;
          outcome = error;
        }
        this.#inFlight--;
        if (this.#halted()) return;
        const failFast = task.settle(index, ok, outcome);
        task.onSettled?.(ok);
        if (failFast) {
          // The other items are aborted with an AbortError, not with this item's error, so
          // that their hooks and handlers do not report another item's failure as their own.
          void this.stop(outcome, true, failedElsewhere());
          return;
        }
      }
    } finally {
      this.#workers--;
      if (this.#workers === 0 && (this.#exhausted || this.#stopped)) this.#finish();
      else this.#fill();
    }
  }
}
