import { untilAborted, whenAborted, type Subscription } from "./abort.js";
import { WAIT, type KeyedAdmission, type Waiting } from "../flow/per-key.js";
import type { CloseOutcome } from "./result-stream.js";
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
   * Maps a rejection of the promise `run` returned into the item's failure (what `settle`
   * gets); `undefined` to take the rejection as it is. A synchronous throw is never mapped.
   */
  readonly mapRejection: ((error: unknown) => unknown) | undefined;
  /**
   * Receives one item's outcome (its output, or what it threw), in completion order.
   * Returning `true` stops the pool with `outcome` as the reason: this is how fail-fast works.
   */
  settle(index: number, ok: boolean, outcome: unknown): boolean;
  /**
   * Optional backpressure: while it returns `false`, no item is taken. Workers that find no
   * room end; call {@link Pool.resume} once there may be room again to start them anew.
   */
  readonly room?: (() => boolean) | undefined;
  /** Optional: told after each item settles (`ok` false for a failure), before any stop. */
  readonly onSettled?: ((ok: boolean) => void) | undefined;
  /** Optional: told once when the pool ends, whichever way, before `done` settles. */
  readonly onEnd?: (() => void) | undefined;
  /**
   * Optional per-key admission (`perKey`): an item whose key is busy waits in it while the
   * workers go on to other items, and runs when an item of its key finishes; no item is taken
   * while it is full (the worker that hands a waiting item over starts the others again).
   */
  readonly admission?: KeyedAdmission<T> | undefined;
}

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
 * Nothing waits for room: a worker that finds none (the task's `room`, or a full per-key
 * admission) ends, and workers start again through {@link Pool.resume} or when a waiting
 * item is handed over. So a worker's only await is its item's promise (and, for an async
 * input, the pull), and the loop stays one short path per item.
 *
 * When the pool stops early (fail-fast, the caller's signal, or {@link Pool.stop}) it starts
 * nothing new, aborts the batch's signal (which every item's stages and `call.signal`s watch),
 * and closes the input with `return()`, awaiting it before `done` settles.
 */
export class Pool<T> {
  /**
   * An idle pool that never starts, kept for the life of the module so that V8 keeps the
   * class's hidden classes ("maps"). V8 collects them once no instance is alive, which a full
   * GC between two batches achieves; the next batch builds new ones, and the hot functions,
   * whose inline caches remember the classes they saw, turn megamorphic after a few batches.
   * Measured with a GC between batches of 1,000,000 items: `map` and `stream` ran 3 to 5 times
   * slower from the seventh batch on without it.
   */
  // eslint-disable-next-line no-unused-private-class-members -- held, never read (see above)
  static readonly #idle: unknown = new Pool<never>({
    source: [],
    concurrency: 1,
    signal: undefined,
    run: noop,
    mapRejection: undefined,
    settle: () => false,
  });

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

  /** Starts workers again, up to the limit, after the task's `room` may have become true. */
  resume(): void {
    this.#fill();
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
    // The workers finish the pool: the last one out, once the input has ended.
    this.#fill();
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

  /** Whether an item may be taken now: the task's `room` and the per-key admission agree. */
  #canTake(): boolean {
    const { room, admission } = this.#task;
    return (room === undefined || room()) && admission?.full !== true;
  }

  /** Starts workers while there are items to take, room for them, and places under the limit. */
  #fill(): void {
    // The common case first: every worker is busy.
    if (this.#filling || this.#workers >= this.#task.concurrency) return;
    this.#filling = true;
    while (
      !this.#stopped &&
      !this.#exhausted &&
      this.#workers < this.#task.concurrency &&
      (this.#sync || this.#pending === undefined) &&
      this.#canTake()
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
    const { admission } = task;
    const signal = this.#controller.signal;
    /** With `admission`: an item handed over when this worker's last one finished, and its key. */
    let handedOver: Waiting<T> | undefined;
    let key: unknown;
    try {
      for (;;) {
        let item: T;
        let index: number;
        let ok = true;
        /** `run` returned: a failure from here is its promise's, for `mapRejection`. */
        let returned = false;
        let outcome: unknown;
        if (handedOver !== undefined) {
          ({ item, index } = handedOver);
          handedOver = undefined;
          if (this.#halted()) return;
          this.#fill();
        } else {
          // Once the input said `done`, nobody asks it again. With no room (a stream's
          // read-ahead window is full, or enough items wait for their keys) this worker ends.
          if (this.#halted() || this.#exhausted || !this.#canTake()) return;
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
          index = this.#nextIndex++;
          this.#inFlight++;
          if (admission !== undefined) {
            let entered: unknown;
            try {
              entered = admission.enter(item, index);
            } catch (error) {
              // A throwing `key` fails its item like a stage failure; it holds no place.
              ok = false;
              outcome = error;
            }
            // The item waits for its key: go on to the next one.
            if (entered === WAIT) continue;
            key = entered;
          }
          this.#fill();
        }
        if (ok) {
          try {
            outcome = task.run(item, signal);
            returned = true;
            // Inside the try: reading `then` is the returned value's code (a getter may throw).
            if (isThenable(outcome)) outcome = await outcome;
          } catch (error) {
            ok = false;
            const { mapRejection } = task;
            outcome = returned && mapRejection !== undefined ? mapRejection(error) : error;
          }
          if (admission !== undefined) handedOver = admission.leave(key);
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
