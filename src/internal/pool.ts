import { untilAborted, whenAborted, type Subscription } from "./abort.js";
import type { AttemptObserver } from "./limits.js";
import type { CloseOutcome } from "./result-stream.js";
import { isThenable, noop } from "./thenable.js";

/**
 * Runs one worker's items, one after another: `start` runs an item until its first pending
 * step and hands out that step's thenable (`pending`), or returns the output, or throws the
 * failure; the worker awaits the thenable and gives its value to `resume` (or its error to
 * `failure`), which goes on, until the item settles. A pipeline's `RunLoop` is one.
 */
export interface ItemRunner<T> {
  /** Whether the last `start` or `resume` handed out a thenable to await (else: the output). */
  readonly pending: boolean;
  /**
   * `observer`: told of the item's failed attempts, for an item under adaptive limits (the
   * admission's key for it, see {@link Admission.bind}); `undefined` otherwise.
   */
  start(item: T, observer: AttemptObserver | undefined): unknown;
  /** The thenable handed out last fulfilled with `value`: goes on. */
  resume(value: unknown): unknown;
  /** The thenable handed out last rejected with `error`: what the item fails with. */
  failure(error: unknown): unknown;
}

/** Returned by {@link Admission.enter} for an item that must wait for its key. */
export const WAIT: unique symbol = Symbol("wait for the key");

/** An item that waits for admission, with what it needs to run later. */
export interface Waiting<T> {
  readonly item: T;
  readonly index: number;
  /**
   * An admission with {@link Admission.bind} says here the key it runs under (given back to
   * `leave`); without, it is the key of the item whose place it takes.
   */
  readonly key?: unknown;
}

/** What a pool offers an admission that binds to it ({@link Admission.bind}). */
export interface AdmissionHost<T> {
  /** Runs `waiting`, whose places the admission has taken, in a worker of its own, now. */
  runWaiting(waiting: Waiting<T>): void;
  /** Items may be taken again: starts workers, as {@link Pool.resume} does. */
  resume(): void;
}

/**
 * Per-key admission (`perKey`), as the pool sees it: an item whose key is busy waits in it
 * while the workers go on to other items, and runs when an item of its key finishes.
 *
 * An admission under limits that change (adaptive concurrency, src/internal/limits.ts) also
 * has `bind` and `close`: it takes each item's places (the batch's and its key's) itself, so
 * that `full` is also "no place under the batch's limit", it may run a waiting item when a
 * place frees outside this batch (through the {@link AdmissionHost} it was bound to), and the
 * keys it gives out are the items' {@link AttemptObserver}s.
 */
export interface Admission<T> {
  /**
   * Whether the pool may take no new item now: as many items wait as allowed (until one is
   * handed over), or, for an admission with `bind`, no place is free (it then wakes the pool
   * through its host when one frees).
   */
  readonly full: boolean;
  /**
   * The item's key when it may run now (given back to `leave` when it finishes), or
   * {@link WAIT} when it was queued. Throws when its key cannot be found: the item fails.
   */
  enter(item: T, index: number): unknown;
  /** An item of `key` finished: the key's next waiting item, which runs now, or `undefined`. */
  leave(key: unknown): Waiting<T> | undefined;
  /**
   * Called once, by the pool's constructor: the host through which the admission runs items
   * whose places free outside `leave`. Its presence makes the keys `enter` returns (and
   * {@link Waiting.key}) the items' attempt observers.
   */
  bind?(host: AdmissionHost<T>): void;
  /**
   * The batch stopped or ended: nothing more is handed over or run, items waiting are dropped,
   * and the places of items still running are given back as they `leave`. Called once.
   */
  close?(): void;
}

/**
 * What the pool does with each item and each outcome. Every field is always there
 * (`undefined` when unused), so that every task has one shape.
 */
export interface PoolTask<T> {
  /** The input, consumed lazily. */
  readonly source: Iterable<T> | AsyncIterable<T>;
  /** At most this many items are taken and not yet finished (an integer ≥ 1 or Infinity). */
  readonly concurrency: number;
  /** The caller's signal: aborting it stops the pool with its reason. */
  readonly signal: AbortSignal | undefined;
  /**
   * A runner for one worker, which runs that worker's items one after another under
   * `signal`, the batch's (see {@link Pool.signal}).
   */
  readonly runner: (signal: AbortSignal) => ItemRunner<T>;
  /**
   * Receives one item's outcome (its output, or its failure), in completion order: the batch
   * records it and reports progress. Returning `true` stops the pool with `outcome` as the
   * reason: this is how fail-fast works.
   */
  readonly settle: (index: number, ok: boolean, outcome: unknown) => boolean;
  /**
   * Backpressure: while it returns `false`, no item is taken. Workers that find no room end;
   * call {@link Pool.resume} once there may be room again to start them anew.
   */
  readonly room: (() => boolean) | undefined;
  /** Told once when the pool ends, whichever way, before `done` settles. */
  readonly onEnd: (() => void) | undefined;
  /** Per-key admission: see {@link Admission}. */
  readonly admission: Admission<T> | undefined;
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
  readonly #task: PoolTask<T>;
  /** The batch's signal: aborts when the pool stops early. One controller per batch. */
  readonly #controller = new AbortController();
  /** The input when it is a plain array: read by index, no iterator result per item. */
  #array: readonly T[] | undefined = undefined;
  #iterator: Iterator<T> | AsyncIterator<T> | undefined = undefined;
  #sync = true;
  #workers = 0;
  /** The task's concurrency: at most this many workers. */
  readonly #limit: number;
  /** The task has a `room` or an admission to ask before each take. */
  readonly #gated: boolean;
  /** The admission has `bind`: its keys are the items' attempt observers. */
  readonly #observed: boolean;
  #filling = false;
  #pending: Promise<void> | undefined = undefined;
  #exhausted = false;
  #stopped = false;
  #nextIndex = 0;
  /** Items settled so far. */
  #settled = 0;
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
    this.#limit = task.concurrency;
    this.#gated = task.room !== undefined || task.admission !== undefined;
    this.#observed = task.admission?.bind !== undefined;
    // Held for the pool's life: the batch signal's registry entry (and its one listener)
    // stays while attempts subscribe and leave one at a time, instead of coming and going.
    this.#hold = whenAborted(this.#controller.signal, noop);
    this.done = new Promise<void>((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
    task.admission?.bind?.(this);
  }

  /** Items taken from the input and not yet settled. */
  get inFlight(): number {
    return this.#nextIndex - this.#settled;
  }

  /** Items taken from the input so far, plus pulls from an async input under way. */
  get reserved(): number {
    return this.#nextIndex + this.#pulling;
  }

  /** Starts workers again, up to the limit, after the task's `room` may have become true. */
  resume(): void {
    this.#fill();
  }

  /**
   * Runs `waiting` in a worker of its own: an item the admission ({@link Admission.bind}) let
   * in, its places taken, when a place freed outside this batch's own `leave`.
   */
  runWaiting(waiting: Waiting<T>): void {
    this.#workers++;
    this.#work(waiting).then(undefined, this.#crash);
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
    this.#task.admission?.close?.();
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
    this.#task.admission?.close?.();
    this.#task.onEnd?.();
    this.#resolve();
  }

  /** Whether an item may be taken now: the task's `room` and the per-key admission agree. */
  #canTake(): boolean {
    const { room, admission } = this.#task;
    return (room === undefined || room()) && admission?.full !== true;
  }

  /** Starts workers while there are items to take, room for them, and places under the limit. */
  #fill(): void {
    // The common case first: every worker is busy.
    if (this.#workers >= this.#limit || this.#filling) return;
    this.#filling = true;
    while (
      !this.#stopped &&
      !this.#exhausted &&
      this.#workers < this.#limit &&
      (this.#sync || this.#pending === undefined) &&
      (!this.#gated || this.#canTake())
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

  /**
   * One worker: takes an item, runs it step by step, settles it, and takes the next, until
   * there is nothing to take or no room. An item's pending steps are awaited here and their
   * outcomes given back to the runner, so that an item costs no promise of its own. The loop
   * keeps little state across its awaits (what an `await` saves and restores): the item is in
   * the worker's {@link Slot}.
   */
  async #work(first?: Waiting<T>): Promise<void> {
    const runner = this.#task.runner(this.#controller.signal);
    const slot = new Slot<T>();
    slot.handedOver = first;
    try {
      for (;;) {
        const taken = this.#take(slot);
        if (taken !== true && (taken === false || !(await taken))) return;
        let ok = !slot.refused;
        let outcome = slot.error;
        if (ok) {
          let pending = false;
          try {
            outcome = runner.start(slot.item, slot.observer);
            while (runner.pending) {
              pending = true;
              outcome = await outcome;
              pending = false;
              outcome = runner.resume(outcome);
            }
          } catch (error) {
            ok = false;
            outcome = pending ? runner.failure(error) : error;
          }
        }
        if (!this.#settleItem(slot, ok, outcome)) return;
      }
    } finally {
      this.#workers--;
      // Items taken and not settled may wait in the admission for a place that frees elsewhere.
      if (
        this.#workers === 0 &&
        ((this.#exhausted && this.#settled === this.#nextIndex) || this.#stopped)
      ) {
        this.#finish();
      } else this.#fill();
    }
  }

  /**
   * Takes the next item into `slot`: an item of its key handed over when the worker's last one
   * finished, else the next of the input (items that must wait for their key are left with the
   * admission, and the one after is taken). `true` when the slot holds an item to run, `false`
   * when the worker ends (the input is done, there is no room, or the pool stopped); a promise
   * of either for an async input.
   */
  #take(slot: Slot<T>): boolean | Promise<boolean> {
    const handedOver = slot.handedOver;
    if (handedOver !== undefined) {
      slot.handedOver = undefined;
      slot.item = handedOver.item;
      slot.index = handedOver.index;
      if (this.#observed) {
        slot.key = handedOver.key;
        slot.observer = handedOver.key as AttemptObserver;
        // It holds its places: give them back (the admission is closed, so nothing follows).
        if (this.#stopped) this.#task.admission?.leave(slot.key);
      }
      if (this.#stopped) return false;
      this.#fill();
      return true;
    }
    if (!this.#sync) return this.#takeAsync(slot);
    for (;;) {
      // Once the input said `done`, nobody asks it again. With no room (a stream's read-ahead
      // window is full, or enough items wait for their keys) the worker ends.
      if (this.#stopped || this.#exhausted || (this.#gated && !this.#canTake())) return false;
      let item: T;
      try {
        const array = this.#array;
        if (array !== undefined) {
          if (this.#nextIndex >= array.length) {
            this.#exhausted = true;
            return false;
          }
          item = array[this.#nextIndex] as T;
        } else {
          const step = (this.#iterator as Iterator<T>).next();
          if (this.#end(step)) return false;
          // Inside the try: a throwing `value` getter is the input failing, not the item.
          item = step.value as T;
        }
      } catch (error) {
        return this.#inputFailed(error);
      }
      if (this.#admit(slot, item)) return true;
    }
  }

  /** {@link Pool.#take} from an async input: pulls are serialised. */
  async #takeAsync(slot: Slot<T>): Promise<boolean> {
    for (;;) {
      if (this.#stopped || this.#exhausted || (this.#gated && !this.#canTake())) return false;
      let item: T;
      try {
        let step: IteratorResult<T>;
        this.#pulling++;
        try {
          step = await this.#pull();
        } finally {
          this.#pulling--;
        }
        if (this.#end(step)) return false;
        item = step.value as T;
      } catch (error) {
        return this.#inputFailed(error);
      }
      if (this.#admit(slot, item)) return true;
    }
  }

  /** The input threw (or gave a malformed result): the pool stops with that error. */
  #inputFailed(error: unknown): false {
    this.#exhausted = true;
    void this.stop(error, false);
    return false;
  }

  /** Whether an iterator result ends the input (marking it exhausted); throws for a non-object. */
  #end(step: IteratorResult<T>): boolean {
    if (typeof step !== "object" || (step as unknown) === null) {
      throw new TypeError("Iterator result is not an object");
    }
    if (step.done !== true) return false;
    this.#exhausted = true;
    return true;
  }

  /**
   * Counts a taken item in, into `slot`, through the per-key admission: `false` when it waits
   * for its key (it runs when an item of its key hands it over). An item whose key throws is
   * in the slot as refused, with the error: it fails like a stage failure, holding no place.
   */
  #admit(slot: Slot<T>, item: T): boolean {
    // The input's code ran: it may have stopped the pool.
    if (this.#stopped) return false;
    const index = this.#nextIndex++;
    slot.item = item;
    slot.index = index;
    const { admission } = this.#task;
    if (admission !== undefined) {
      slot.refused = false;
      slot.error = undefined;
      let entered: unknown;
      try {
        entered = admission.enter(item, index);
      } catch (error) {
        slot.refused = true;
        slot.error = error;
      }
      // The item waits for its key: go on to the next one.
      if (entered === WAIT) return false;
      slot.key = entered;
      if (this.#observed) slot.observer = entered as AttemptObserver | undefined;
    }
    // Another worker may take the next item now (a synchronous input was offered to every
    // free worker when the pool filled; an async one is pulled by one worker at a time).
    if (!this.#sync) this.#fill();
    return true;
  }

  /**
   * The item in `slot` settled: reports the outcome, stops the pool on a fail-fast, and hands
   * its key over to the key's next waiting item (which this worker runs next). The outcome
   * comes first: an admission under adaptive limits may start other items as places free, and
   * none may start after a failure that stops the batch. `false` when the worker ends.
   */
  #settleItem(slot: Slot<T>, ok: boolean, outcome: unknown): boolean {
    const task = this.#task;
    this.#settled++;
    let going = !this.#stopped;
    if (going && task.settle(slot.index, ok, outcome)) {
      // The other items are aborted with an AbortError, not with this item's error, so that
      // their hooks and handlers do not report another item's failure as their own.
      void this.stop(outcome, true, failedElsewhere());
      going = false;
    }
    if (task.admission !== undefined && !slot.refused) {
      slot.handedOver = task.admission.leave(slot.key);
    }
    return going;
  }
}

/**
 * A worker's current item, reused from item to item: what the worker needs of it across the
 * awaits of its run, kept out of the worker's own frame.
 */
class Slot<T> {
  item: T = undefined as T;
  index = 0;
  /** Its key under per-key admission, given back when it finishes. */
  key: unknown = undefined;
  /** Told of its failed attempts, under adaptive limits (its key, then). */
  observer: AttemptObserver | undefined = undefined;
  /** Its key could not be found (`key` threw): it fails with `error` without running. */
  refused = false;
  error: unknown = undefined;
  /** The next item of its key, handed over to this worker when it finished. */
  handedOver: Waiting<T> | undefined = undefined;
}
