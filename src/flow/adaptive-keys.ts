import {
  gaugeOf,
  type AttemptObserver,
  type DynamicLimit,
  type LimitGauge,
} from "../internal/limits.js";
import { WAIT, type Admission, type AdmissionHost, type Waiting } from "../internal/pool.js";
import { Queue } from "../internal/queue.js";

/**
 * One key's items in one batch: how many run, which wait, and the key's gauge, held while the
 * entry exists. It is the key the pool gets back for each of its items, and the observer of
 * their attempts, which tells the key's gauge and the batch's.
 */
class Entry<T> implements AttemptObserver {
  readonly key: unknown;
  readonly gauge: LimitGauge;
  /** The batch's gauge, under an adaptive `concurrency` too. */
  readonly batch: LimitGauge | undefined;
  /** Given to the key's gauge to wait for a place. */
  readonly wake: () => void;
  /** Items of the key running in this batch (parked ones included: they hold the place). */
  running = 0;
  /** Items of the key taken and waiting for a place, in input order. */
  waiting: Queue<Waiting<T>> | undefined = undefined;
  /** Its `wake` is with the key's gauge. */
  waitingForKey = false;
  /** Dropped by the admission: a key seen again gets a new entry. */
  gone = false;

  constructor(
    key: unknown,
    gauge: LimitGauge,
    batch: LimitGauge | undefined,
    woken: (entry: Entry<T>) => void,
  ) {
    this.key = key;
    this.gauge = gauge;
    this.batch = batch;
    this.wake = () => {
      woken(this);
    };
  }

  /** Items of the key waiting in this batch. */
  get queued(): number {
    return this.waiting === undefined ? 0 : this.waiting.length;
  }

  /** Whether the key has a place for one more item, in every batch that shares its gauge. */
  get free(): boolean {
    return this.gauge.inFlight < this.gauge.limit;
  }

  attemptFailed(error: unknown, retryAfter: number | undefined): void {
    this.batch?.attemptFailed(error, retryAfter);
    this.gauge.attemptFailed(error, retryAfter);
  }
}

/** What {@link AdaptiveKeys} is built from: the batch's options, validated. */
export interface AdaptiveKeysOptions<T> {
  /** `perKey.key`. */
  readonly key: (item: T, index: number) => unknown;
  /** `perKey.concurrency`: one limit per key. */
  readonly concurrency: DynamicLimit;
  /** At most this many items wait for their keys at once: the pool takes no more meanwhile. */
  readonly maxWaiting: number;
}

/**
 * Per-key admission under an adaptive `perKey.concurrency`: the contract of
 * src/internal/limits.ts for the keys' gauges, as {@link KeyedAdmission} (per-key.ts) is for a
 * fixed limit per key. An item runs when its key's gauge has room (every batch's items of the
 * key count); otherwise it waits in its key's queue (FIFO) while the pool goes on to other
 * items, and its key's entry waits on the gauge.
 *
 * A place for the key frees when an item of the key finishes: in this batch, `leave` hands the
 * key's next item to the same worker; in another batch sharing the controller (or when the
 * key's limit rose there), the gauge wakes the entry, which runs its next items through the
 * pool's {@link AdmissionHost.runWaiting} (the pool parks them until it has a place of its own).
 * An entry is made when its key's first item is taken and dropped (its gauge given back) when
 * nothing of the key runs or waits in the batch.
 */
export class AdaptiveKeys<T> implements Admission<T> {
  readonly #key: (item: T, index: number) => unknown;
  readonly #limits: DynamicLimit;
  readonly #maxWaiting: number;
  readonly #keys = new Map<unknown, Entry<T>>();
  readonly #woken = (entry: Entry<T>): void => {
    this.#wokenForKey(entry);
  };
  #host: AdmissionHost<T> | undefined = undefined;
  #waiting = 0;
  /** The entry whose item is leaving, while its gauge is told: its wake is left to `leave`. */
  #leaving: Entry<T> | undefined = undefined;
  #closed = false;

  constructor(options: AdaptiveKeysOptions<T>) {
    this.#key = options.key;
    this.#limits = options.concurrency;
    this.#maxWaiting = options.maxWaiting;
  }

  /** Whether as many items wait as allowed: the pool takes no new item until one runs. */
  get full(): boolean {
    return this.#waiting >= this.#maxWaiting;
  }

  bind(host: AdmissionHost<T>): void {
    this.#host = host;
  }

  enter(item: T, index: number): unknown {
    // Throws what `key` throws: the item is refused, and nothing is made for it.
    const key = this.#key(item, index);
    let entry = this.#keys.get(key);
    if (entry === undefined) {
      entry = new Entry<T>(key, this.#limits[gaugeOf](true, key), this.#host?.gauge, this.#woken);
      this.#keys.set(key, entry);
    }
    if (entry.queued === 0 && entry.free) {
      this.#start(entry);
      return entry;
    }
    (entry.waiting ??= new Queue()).push({ item, index, key: entry });
    this.#waiting++;
    this.#waitForKey(entry);
    return WAIT;
  }

  leave(key: unknown): Waiting<T> | undefined {
    const entry = key as Entry<T>;
    entry.running--;
    this.#leaving = entry;
    entry.gauge.finished();
    this.#leaving = undefined;
    let next: Waiting<T> | undefined;
    if (!this.#closed && entry.queued > 0) {
      // The key's next item takes the place in this worker; more places (the key's limit
      // rose) run in workers of their own.
      if (entry.free) next = this.#next(entry);
      this.#runWaiting(entry);
    }
    this.#forget(entry);
    return next;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#waiting = 0;
    for (const entry of [...this.#keys.values()]) {
      entry.waiting = undefined;
      this.#forget(entry);
    }
  }

  /** The item takes a place for its key. */
  #start(entry: Entry<T>): void {
    entry.running++;
    entry.gauge.started();
  }

  /** The entry's next waiting item, its key's place taken. */
  #next(entry: Entry<T>): Waiting<T> {
    const next = (entry.waiting as Queue<Waiting<T>>).shift() as Waiting<T>;
    this.#waiting--;
    this.#start(entry);
    return next;
  }

  /** Runs the entry's waiting items while its key has room; then waits for a place if any are left. */
  #runWaiting(entry: Entry<T>): void {
    while (!this.#closed && entry.queued > 0 && entry.free) {
      this.#host?.runWaiting(this.#next(entry));
    }
    if (!this.#closed && entry.queued > 0) this.#waitForKey(entry);
  }

  #waitForKey(entry: Entry<T>): void {
    if (entry.waitingForKey) return;
    entry.waitingForKey = true;
    entry.gauge.wait(entry.wake);
  }

  /** The key's gauge has a place: for a wake within `leave`, `leave` itself looks. */
  #wokenForKey(entry: Entry<T>): void {
    entry.waitingForKey = false;
    if (this.#closed || entry.gone || this.#leaving === entry) return;
    this.#runWaiting(entry);
  }

  /** Drops an entry with nothing running or waiting, and gives its key's gauge back. */
  #forget(entry: Entry<T>): void {
    if (entry.gone || entry.running > 0 || entry.queued > 0) {
      // Closed: nothing will run that waits, so nothing needs waking.
      if (this.#closed && entry.waitingForKey) {
        entry.waitingForKey = false;
        entry.gauge.cancelWait(entry.wake);
      }
      return;
    }
    entry.gone = true;
    this.#keys.delete(entry.key);
    if (entry.waitingForKey) {
      entry.waitingForKey = false;
      entry.gauge.cancelWait(entry.wake);
    }
    entry.gauge.release();
  }
}
