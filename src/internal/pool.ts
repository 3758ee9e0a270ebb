import { WAIT, type KeyedAdmission, type Waiting } from "../flow/per-key.js";
import { isThenable, noop, handled } from "./thenable.js";

/** What the pool does with each item and each outcome. */
export interface PoolTask<T> {
  /** The input, consumed lazily. */
  readonly source: Iterable<T> | AsyncIterable<T>;
  /** At most this many items are taken and not yet finished (an integer ≥ 1 or Infinity). */
  readonly concurrency: number;
  /** The caller's signal: aborting it stops the pool with its reason. */
  readonly signal: AbortSignal | undefined;
  /**
   * Give each worker a signal of its own, aborted when the pool stops, for the items it runs.
   * Needed when the pool can stop for a reason other than the caller's signal (fail-fast).
   */
  readonly itemSignals: boolean;
  /** Runs one item; may return a promise. `signal` is the worker's, else the caller's. */
  run(item: T, index: number, signal: AbortSignal | undefined): unknown;
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
  /**
   * Optional per-key admission (`perKey`): an item whose key is busy waits in it while the
   * workers go on to other items, and runs when an item of its key finishes; no item is taken
   * while it is full.
   */
  readonly admission?: KeyedAdmission<T> | undefined;
}

/** The reason in-flight items' signals abort with when another item failed (fail-fast). */
function failedElsewhere(): DOMException {
  return new DOMException("Stopped because another item of the batch failed", "AbortError");
}

const DONE: IteratorReturnResult<undefined> = Object.freeze({ done: true, value: undefined });

/**
 * A pool of at most `concurrency` workers pulling items from one iterator: the engine behind
 * `map`, `mapSettled` and `stream`. Workers start one per item taken, up to the limit, so a
 * short input starts few. Pulls from an async iterator are serialised. When the pool stops
 * early (fail-fast, the caller's signal, or {@link Pool.stop}) it starts nothing new, aborts
 * the workers' signals, and closes the iterator with `return()`.
 */
export class Pool<T> {
  readonly #task: PoolTask<T>;
  #iterator: Iterator<T> | AsyncIterator<T> | undefined;
  #sync = true;
  #workers = 0;
  #filling = false;
  #pending: Promise<void> | undefined;
  #exhausted = false;
  #stopped = false;
  #nextIndex = 0;
  #inFlight = 0;
  #pulling = 0;
  readonly #controllers: Set<AbortController> | undefined;
  #resolve: () => void = noop;
  #reject: (error: unknown) => void = noop;
  readonly #crash = (error: unknown): void => {
    this.stop(error, true);
  };
  readonly #onAbort = (): void => {
    this.stop(this.#task.signal?.reason, true);
  };

  /** Settles when every item has settled, or rejects with the reason the pool stopped. */
  readonly done: Promise<void>;

  constructor(task: PoolTask<T>) {
    this.#task = task;
    this.#controllers = task.itemSignals ? new Set() : undefined;
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
      this.stop(signal.reason, false);
      return;
    }
    try {
      const asyncFactory = (source as Partial<AsyncIterable<T>>)[Symbol.asyncIterator];
      if (typeof asyncFactory === "function") {
        this.#sync = false;
        this.#iterator = asyncFactory.call(source);
      } else {
        this.#iterator = (source as Iterable<T>)[Symbol.iterator]();
      }
    } catch (error) {
      this.stop(error, false);
      return;
    }
    signal?.addEventListener("abort", this.#onAbort, { once: true });
    this.#fill();
    if (this.#workers === 0) this.#finish();
  }

  /**
   * Stops early with `reason`: nothing new starts, workers' signals abort (with `abortReason`,
   * by default `reason`), the input is closed (when `closeSource`), and `done` rejects with
   * `reason`. Later calls do nothing.
   */
  stop(reason: unknown, closeSource: boolean, abortReason: unknown = reason): void {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#task.signal?.removeEventListener("abort", this.#onAbort);
    if (this.#controllers !== undefined) {
      for (const controller of this.#controllers) controller.abort(abortReason);
    }
    if (closeSource && !this.#exhausted) this.#close();
    this.#task.admission?.wakeAll();
    this.#task.onEnd?.();
    this.#reject(reason);
  }

  #close(): void {
    const iterator = this.#iterator;
    if (iterator?.return === undefined) return;
    try {
      handled(iterator.return());
    } catch {
      // A failing return() cannot change the outcome the caller already has.
    }
  }

  #finish(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#task.signal?.removeEventListener("abort", this.#onAbort);
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
      (this.#sync || this.#pending === undefined) &&
      this.#task.admission?.full !== true
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
    const controller = this.#controllers === undefined ? undefined : new AbortController();
    if (controller !== undefined) this.#controllers?.add(controller);
    const signal = controller === undefined ? task.signal : controller.signal;
    /** With `admission`: an item handed over when this worker's last one finished, and its key. */
    let handedOver: Waiting<T> | undefined;
    let key: unknown;
    try {
      for (;;) {
        let item: T;
        let index: number;
        let ok = true;
        let outcome: unknown;
        if (handedOver === undefined) {
          // Enough items wait for their keys: take no more until one of them is handed over
          // to the worker that ran an item of its key.
          if (admission?.full === true && !this.#stopped && !this.#exhausted) {
            await admission.room();
            continue;
          }
          if (task.wait !== undefined) {
            for (let gate = task.wait(); gate !== undefined; gate = task.wait()) await gate;
          }
          if (this.#halted()) return;
          let step: IteratorResult<T>;
          try {
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
          } catch (error) {
            this.#exhausted = true;
            this.stop(error, false);
            return;
          }
          if (step.done === true) {
            this.#exhausted = true;
            admission?.wakeAll();
            return;
          }
          if (this.#halted()) return;
          item = step.value;
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
            // The item waits for its key: go on to the next one (the check below stops this
            // worker when enough items wait).
            if (entered === WAIT) continue;
            key = entered;
          }
          this.#fill();
        } else {
          ({ item, index } = handedOver);
          handedOver = undefined;
          if (this.#halted()) return;
          this.#fill();
        }
        if (ok) {
          try {
            outcome = task.run(item, index, signal);
            if (isThenable(outcome)) outcome = await outcome;
          } catch (error) {
            ok = false;
            outcome = error;
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
          this.stop(outcome, true, failedElsewhere());
          return;
        }
      }
    } finally {
      if (controller !== undefined) this.#controllers?.delete(controller);
      this.#workers--;
      if (this.#workers === 0 && (this.#exhausted || this.#stopped)) this.#finish();
      else this.#fill();
    }
  }
}
