import {
  gaugeOf,
  isDynamicLimit,
  type AttemptObserver,
  type DynamicLimit,
  type LimitGauge,
} from "../internal/limits.js";
import { WAIT, type Admission, type AdmissionHost, type Waiting } from "../internal/pool.js";
import { Queue } from "../internal/queue.js";
import { noop } from "../internal/thenable.js";

/**
 * One key's items in one batch (without `perKey`, every item of the batch): how many run, which
 * wait, and the key's gauge when its limit is adaptive. The key the pool gets back for each
 * item, and the observer of the item's attempts: it tells the batch's gauge and the key's.
 */
class Entry<T> implements AttemptObserver {
  readonly key: unknown;
  /** The key's gauge (an adaptive `perKey.concurrency`), held while the entry exists. */
  readonly gauge: LimitGauge | undefined;
  /** The batch's gauge (an adaptive `concurrency`), told of failed attempts too. */
  readonly batch: LimitGauge | undefined;
  /** Given to the key's gauge to wait for a place. */
  readonly wake: () => void;
  /** Items of the key running in this batch. */
  running = 0;
  /** Items of the key taken and waiting, in input order. */
  waiting: Queue<Waiting<T>> | undefined = undefined;
  /** In the admission's queue of entries with a key place for their next item. */
  ready = false;
  /** Its `wake` is with the key's gauge. */
  waitingForKey = false;
  /** Dropped by the admission (an entry left behind in the ready queue is skipped). */
  gone = false;

  constructor(
    key: unknown,
    gauge: LimitGauge | undefined,
    batch: LimitGauge | undefined,
    wake: (entry: Entry<T>) => void,
  ) {
    this.key = key;
    this.gauge = gauge;
    this.batch = batch;
    this.wake =
      gauge === undefined
        ? noop
        : () => {
            wake(this);
          };
  }

  /** Items of the key waiting in this batch. */
  get queued(): number {
    return this.waiting === undefined ? 0 : this.waiting.length;
  }

  attemptFailed(error: unknown, retryAfter: number | undefined): void {
    this.batch?.attemptFailed(error, retryAfter);
    this.gauge?.attemptFailed(error, retryAfter);
  }
}

/** What {@link AdaptiveAdmission} is built from: the batch's options, validated. */
export interface AdaptiveLimits<T> {
  /** The batch's `concurrency`: a number, or a controller. */
  readonly concurrency: number | DynamicLimit;
  /** `perKey`, when given: the key of an item, and the limit of each key. */
  readonly perKey:
    | {
        readonly key: (item: T, index: number) => unknown;
        readonly concurrency: number | DynamicLimit;
      }
    | undefined;
  /** At most this many items wait for a place at once: the pool takes no more meanwhile. */
  readonly maxWaiting: number;
}

/**
 * The admission of a batch with an adaptive limit (its `concurrency`, its `perKey.concurrency`,
 * or both): it holds every item's places itself, the batch's and the key's, as the contract of
 * src/internal/limits.ts says. An item runs while both have room; otherwise it waits in its
 * key's queue (FIFO, without holding anything) while the pool goes on to other items.
 *
 * - A key's queue whose next item finds no place for the key waits on the key's gauge; once a
 *   place for the key is there, the key is "ready" and waits, with the others, for a place in
 *   the batch (ready keys are served in turn, one item each).
 * - When no place is free in the batch, `full` says so and the admission waits on the batch's
 *   gauge: the pool takes nothing from its input until a place frees (another batch's item
 *   finished, or the limit rose), then ready keys come first, then the input.
 * - Places free within `leave`: the item's own, handed to the next ready item (which the
 *   same worker runs), and any others (the limit rose) run in workers of their own.
 *
 * Without `perKey`, every item is of one entry that never waits for a key: items wait only
 * in the rare case that an async input's pull ended after another batch took the last place.
 */
export class AdaptiveAdmission<T> implements Admission<T> {
  readonly #batch: LimitGauge | undefined;
  /** The batch's fixed concurrency, when it is not adaptive (else Infinity). */
  readonly #batchLimit: number;
  readonly #keyOf: ((item: T, index: number) => unknown) | undefined;
  /** The keys' controller, when their limit is adaptive. */
  readonly #keyLimits: DynamicLimit | undefined;
  /** The keys' fixed limit (Infinity without `perKey`). */
  readonly #perKey: number;
  readonly #maxWaiting: number;
  readonly #keys = new Map<unknown, Entry<T>>();
  /** The one entry of a batch without `perKey`. */
  readonly #single: Entry<T> | undefined;
  /** Entries with a place for their key's next item, waiting for a place in the batch. */
  readonly #ready = new Queue<Entry<T>>();
  readonly #keyWoken = (entry: Entry<T>): void => {
    this.#wokenForKey(entry);
  };
  readonly #batchWake = (): void => {
    this.#batchWaiting = false;
    // Within this batch's own `leave`, whose end looks for room anyway.
    if (this.#closed || this.#leaving) return;
    this.#drain();
    if (this.#batchRoom()) this.#host?.resume();
  };
  #host: AdmissionHost<T> | undefined = undefined;
  /** Items of this batch running. */
  #running = 0;
  /** Items of this batch waiting. */
  #waiting = 0;
  #batchWaiting = false;
  /** Inside `leave`, while its gauges are told: wakes are left to its end. */
  #leaving = false;
  #closed = false;
  #released = false;

  constructor(limits: AdaptiveLimits<T>) {
    const { concurrency, perKey } = limits;
    // One gauge per batch, held until the batch's last item is done.
    this.#batch = isDynamicLimit(concurrency) ? concurrency[gaugeOf](false, undefined) : undefined;
    this.#batchLimit = typeof concurrency === "number" ? concurrency : Infinity;
    this.#keyOf = perKey?.key;
    const keyLimit = perKey?.concurrency ?? Infinity;
    this.#keyLimits = isDynamicLimit(keyLimit) ? keyLimit : undefined;
    this.#perKey = typeof keyLimit === "number" ? keyLimit : Infinity;
    this.#maxWaiting = limits.maxWaiting;
    this.#single =
      perKey === undefined ? new Entry<T>(undefined, undefined, this.#batch, noop) : undefined;
  }

  /** The batch's limit now: its gauge's, or its fixed concurrency. */
  get limit(): number {
    return this.#batch === undefined ? this.#batchLimit : this.#batch.limit;
  }

  get full(): boolean {
    if (this.#waiting >= this.#maxWaiting) return true;
    if (this.#batchRoom()) return false;
    this.#waitForBatch();
    return true;
  }

  bind(host: AdmissionHost<T>): void {
    this.#host = host;
  }

  enter(item: T, index: number): unknown {
    const entry = this.#entryFor(item, index);
    if (entry.queued === 0 && this.#keyRoom(entry) && this.#batchRoom()) {
      this.#start(entry);
      return entry;
    }
    (entry.waiting ??= new Queue()).push({ item, index, key: entry });
    this.#waiting++;
    this.#place(entry);
    if (this.#ready.length > 0) this.#waitForBatch();
    return WAIT;
  }

  leave(key: unknown): Waiting<T> | undefined {
    const entry = key as Entry<T>;
    const batch = this.#batch;
    const before = batch === undefined ? 0 : batch.limit;
    // Telling the gauges may wake this batch's own waits: their work is done below.
    this.#leaving = true;
    entry.running--;
    entry.gauge?.finished();
    this.#running--;
    batch?.finished();
    this.#leaving = false;
    if (this.#closed) {
      this.#forget(entry);
      this.#releaseWhenDone();
      return undefined;
    }
    if (entry.queued > 0) this.#place(entry);
    const next = this.#nextReady();
    this.#drain();
    // The limit rose: more items may start than this worker's next one.
    if (batch !== undefined && batch.limit > before) this.#host?.resume();
    this.#forget(entry);
    return next;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#batchWaiting) {
      this.#batchWaiting = false;
      this.#batch?.cancelWait(this.#batchWake);
    }
    this.#waiting = 0;
    while (this.#ready.length > 0) (this.#ready.shift() as Entry<T>).ready = false;
    const entries = this.#single === undefined ? [...this.#keys.values()] : [this.#single];
    for (const entry of entries) {
      entry.waiting = undefined;
      if (entry.waitingForKey) {
        entry.waitingForKey = false;
        entry.gauge?.cancelWait(entry.wake);
      }
      this.#forget(entry);
    }
    this.#releaseWhenDone();
  }

  #entryFor(item: T, index: number): Entry<T> {
    const keyOf = this.#keyOf;
    if (keyOf === undefined) return this.#single as Entry<T>;
    // Throws what `key` throws: the item is refused, and nothing is made for it.
    const key = keyOf(item, index);
    let entry = this.#keys.get(key);
    if (entry === undefined) {
      const gauge = this.#keyLimits?.[gaugeOf](true, key);
      entry = new Entry<T>(key, gauge, this.#batch, this.#keyWoken);
      this.#keys.set(key, entry);
    }
    return entry;
  }

  #batchRoom(): boolean {
    const batch = this.#batch;
    return batch === undefined ? this.#running < this.#batchLimit : batch.inFlight < batch.limit;
  }

  #keyRoom(entry: Entry<T>): boolean {
    const { gauge } = entry;
    return gauge === undefined ? entry.running < this.#perKey : gauge.inFlight < gauge.limit;
  }

  /** The item takes its places: its key's and the batch's. */
  #start(entry: Entry<T>): void {
    entry.running++;
    entry.gauge?.started();
    this.#running++;
    this.#batch?.started();
  }

  /**
   * An entry with items waiting: ready when its key has room, else waiting for its key's
   * gauge (a fixed limit per key frees only when an item of the key leaves, which places the
   * entry again).
   */
  #place(entry: Entry<T>): void {
    if (entry.ready || entry.waitingForKey) return;
    if (this.#keyRoom(entry)) {
      entry.ready = true;
      this.#ready.push(entry);
    } else if (entry.gauge !== undefined) {
      entry.waitingForKey = true;
      entry.gauge.wait(entry.wake);
    }
  }

  /** The next ready entry's next item, its places taken, while the batch has room. */
  #nextReady(): Waiting<T> | undefined {
    const ready = this.#ready;
    while (ready.length > 0 && this.#batchRoom()) {
      const entry = ready.shift() as Entry<T>;
      entry.ready = false;
      if (entry.gone || entry.queued === 0) continue;
      if (!this.#keyRoom(entry)) {
        // Another batch took the key's place meanwhile.
        this.#place(entry);
        continue;
      }
      const next = (entry.waiting as Queue<Waiting<T>>).shift() as Waiting<T>;
      this.#waiting--;
      this.#start(entry);
      // Its next item waits for its turn behind the other ready keys.
      if (entry.queued > 0) this.#place(entry);
      return next;
    }
    return undefined;
  }

  /** Runs ready items in workers of their own while the batch has room; then waits for room. */
  #drain(): void {
    while (!this.#closed) {
      const next = this.#nextReady();
      if (next === undefined) break;
      this.#host?.runWaiting(next);
    }
    if (this.#ready.length > 0) this.#waitForBatch();
  }

  #waitForBatch(): void {
    const batch = this.#batch;
    if (batch === undefined || this.#batchWaiting || this.#closed) return;
    this.#batchWaiting = true;
    batch.wait(this.#batchWake);
  }

  /** The key's gauge has a place for `entry`'s next item. */
  #wokenForKey(entry: Entry<T>): void {
    entry.waitingForKey = false;
    if (this.#closed || entry.gone || entry.queued === 0) return;
    if (!entry.ready) {
      entry.ready = true;
      this.#ready.push(entry);
    }
    if (!this.#leaving) this.#drain();
  }

  /** Drops an entry with nothing running or waiting, and gives its key's gauge back. */
  #forget(entry: Entry<T>): void {
    if (entry === this.#single || entry.gone || entry.running > 0 || entry.queued > 0) return;
    entry.gone = true;
    this.#keys.delete(entry.key);
    const { gauge } = entry;
    if (gauge === undefined) return;
    if (entry.waitingForKey) {
      entry.waitingForKey = false;
      gauge.cancelWait(entry.wake);
    }
    gauge.release();
  }

  /** Once closed and its last item has left: the batch's gauge is given back. */
  #releaseWhenDone(): void {
    if (this.#released || this.#running > 0) return;
    this.#released = true;
    this.#batch?.release();
  }
}
