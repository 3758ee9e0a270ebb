import { untilAborted, whenAborted, type Subscription } from "./abort.js";
import { gaugeOf, type AttemptObserver, type DynamicLimit, type LimitGauge } from "./limits.js";
import { Queue } from "./queue.js";
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
   * `observer`: told of the item's failed attempts when the item runs under adaptive limits
   * (see src/internal/limits.ts); `undefined` otherwise.
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
   * The key to give back to `leave` once it ran. Without it, the item takes the place of an
   * item of its key and runs under that item's key: an admission with `bind` always says it.
   */
  readonly key?: unknown;
}

/** What a pool offers an admission that binds to it ({@link Admission.bind}). */
export interface AdmissionHost<T> {
  /** The batch's gauge, when its `concurrency` is adaptive: told of attempts too. */
  readonly gauge: LimitGauge | undefined;
  /**
   * Runs `waiting` (its key's place taken) in a worker of its own, or, when the batch has no
   * place for it now, as soon as it has one.
   */
  runWaiting(waiting: Waiting<T>): void;
}

/**
 * Per-key admission (`perKey`), as the pool sees it: an item whose key is busy waits in it
 * while the workers go on to other items, and runs when an item of its key finishes.
 */
export interface Admission<T> {
  /** Whether as many items wait as allowed: the pool takes no new item until one is handed over. */
  readonly full: boolean;
  /**
   * The item's key when it may run now (given back to `leave` when it finishes), or
   * {@link WAIT} when it was queued. Throws when its key cannot be found: the item fails.
   */
  enter(item: T, index: number): unknown;
  /** An item of `key` finished: the key's next waiting item, which runs now, or `undefined`. */
  leave(key: unknown): Waiting<T> | undefined;
  /**
   * An admission under limits that change (an adaptive `perKey.concurrency`) has `bind` and
   * `close`. The pool's constructor binds it, once: it may then run a waiting item whose key's
   * place freed outside this batch (through `host.runWaiting`), and the keys it gives out (from
   * `enter`, and as {@link Waiting.key}) are the items' {@link AttemptObserver}s.
   */
  bind?(host: AdmissionHost<T>): void;
  /**
   * The batch stopped or ended: nothing more is handed over or run, items waiting are dropped,
   * and the places of items still running are given back as they `leave`. Called once.
   */
  close?(): void;
}

/** A recorded outcome that takes the place of running an item: see {@link PoolJournal.take}. */
export interface RecordedOutcome {
  readonly ok: boolean;
  /** The output (`ok`), or the failure. */
  readonly outcome: unknown;
}

/**
 * A checkpoint's journal, as the pool sees it (`CheckpointJournal` implements it): told of
 * each item as it is taken, and of each outcome of an item that ran. The batch opens it before
 * the pool starts and closes it after the pool ended.
 */
export interface PoolJournal<T> {
  /**
   * An item was taken (before admission, before any user code sees it): its recorded outcome
   * (or a promise of it, for a lazy read from an asynchronous store) when it must not run,
   * else a ticket to hand back to `record` when it settles. Throws (a duplicate `itemKey`, …)
   * to stop the batch with that error.
   */
  take(item: T, index: number): RecordedOutcome | PromiseLike<RecordedOutcome> | string | number;
  /**
   * An item that ran settled (before the task's `settle`, so that progress counts it once it
   * is recorded): records it. Returns the failure to settle it with instead (its output could
   * not be recorded), or `undefined`. Throws (the store failed) to stop the batch.
   */
  record(index: number, ticket: string | number, ok: boolean, outcome: unknown): unknown;
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
  /**
   * An adaptive `concurrency` (`concurrency` is then Infinity): the pool holds a place under
   * its gauge for each item it runs, as src/internal/limits.ts says.
   */
  readonly dynamic: DynamicLimit | undefined;
  /** Per-key admission: see {@link Admission}. */
  readonly admission: Admission<T> | undefined;
  /**
   * The checkpoint's journal: see {@link PoolJournal}. A restored item settles with its
   * recorded outcome without running, holding no worker (unless its outcome must be fetched),
   * no per-key place and no place under `concurrency`.
   */
  readonly journal: PoolJournal<T> | undefined;
}

/** The reason in-flight items' signals abort with when another item failed (fail-fast). */
function failedElsewhere(): DOMException {
  return new DOMException("Stopped because another item of the batch failed", "AbortError");
}

/** What {@link Pool.#record} returns when the journal failed and the pool stopped. */
const STOPPED: unique symbol = Symbol("stopped");

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
 *
 * Under an adaptive `concurrency` (the task's `dynamic`), an item takes a place under the
 * batch's gauge when it starts and leaves it when it settles, and the pool takes an item only
 * while the gauge has room. A worker takes its place before it takes an item (the input's
 * code, and a pull from an async input, run in it), keeps its item's place for its next item
 * when the gauge allows it (`LimitGauge.keep`: below the limit, nobody waiting), so that an
 * item under a gauge costs one call to it, and gives it back when it ends. With no room, the
 * pool waits on the gauge (which wakes it when a place frees in any batch sharing it, or the
 * limit rises) unless one of its own items finishing will look again. Items the admission
 * let in that find no place are parked, and run first when one frees.
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
  /** The task has a `room`, an admission or a gauge to ask before each take. */
  readonly #gated: boolean;
  /**
   * The task has a `room` or an admission, asked before every take; the gauge is not asked
   * by a worker that holds a place ({@link Slot.placed}).
   */
  readonly #asks: boolean;
  /** The batch's gauge, under an adaptive `concurrency`. */
  readonly #gauge: LimitGauge | undefined;
  /** The admission has `bind`: the keys it gives out are the items' attempt observers. */
  readonly #observed: boolean;
  /**
   * Items pass through more than the worker on their way in and out: a journal or a per-key
   * admission (see {@link Pool.#admitThrough}, {@link Pool.#settleThrough}). Else taking and
   * settling an item are a few field writes, small enough for V8 to inline into the worker's
   * loop; under a gauge alone, a worker that keeps its place adds one call per item, to
   * {@link Pool.#settleThrough}, which hands the place on (see {@link Pool.#leavePlace}).
   */
  readonly #admits: boolean;
  /** Items let in by the admission that wait for a place under the gauge (or for a worker). */
  #parked: Queue<Waiting<T>> | undefined = undefined;
  /**
   * Places this batch holds under the gauge: its items', and those its workers kept for their
   * next items ({@link Slot.placed}).
   */
  #placed = 0;
  /** The pool's `#wake` is with the gauge. */
  #blocked = false;
  /**
   * Within this pool's own `gauge.finished()` or `keep()`: a wake then is left to the worker
   * that finished.
   */
  #finishing = false;
  /**
   * A wake came within this pool's own finish: the worker that finished takes that place, and
   * once it has, the pool looks for more (or waits again) while other batches hold places, so
   * that a batch that wanted more places than that one stays among the gauge's waiters.
   */
  #rewait = false;
  #released = false;
  #filling = false;
  #pending: Promise<void> | undefined = undefined;
  #exhausted = false;
  #stopped = false;
  #nextIndex = 0;
  /** Items settled so far. */
  #settled = 0;
  /** The slots (with their runners) of workers that ended, for the next workers to take. */
  readonly #spare: Slot<T>[] = [];
  /** Items restored from the checkpoint so far (settled without running). */
  #restored = 0;
  /**
   * With a journal and an admission or a gauge: the tickets of the items that wait (for their
   * key, or for a place), by index.
   */
  readonly #tickets: Map<number, string | number> | undefined;
  #pulling = 0;
  #subscription: Subscription | undefined = undefined;
  readonly #hold: Subscription;
  #resolve: () => void = noop;
  #reject: (error: unknown) => void = noop;
  readonly #crash = (error: unknown): void => {
    void this.stop(error, true);
  };
  /** Given to the gauge to wait for a place: runs parked items, then takes from the input. */
  readonly #wake = (): void => {
    this.#blocked = false;
    if (this.#stopped) return;
    if (this.#finishing) {
      this.#rewait = true;
      return;
    }
    this.#runParked(0);
    this.#fill();
  };

  /** Settles when every item has settled, or rejects with the reason the pool stopped. */
  readonly done: Promise<void>;

  /**
   * One idle pool, never started, kept for the module's life: it keeps the pool's hidden class
   * alive between batches. Without it, a full GC between batches collects that class with the
   * last pool; every batch then builds a new one and the ICs of the worker loop relearn it,
   * until from about the seventh batch they give up (megamorphic). Measured with the bench's
   * repeated-batches case (12 batches of 1,000,000 items, a GC before each, 2026-12-07): `map`
   * went from 160 ms to 470–830 ms per batch from the seventh batch on and `stream` from 0.7 s
   * to 2.3–4 s (slowest ÷ fastest 4.5× and 5.2×); with this pool alive both stay flat. The
   * per-batch objects already have one shape each; this is the one warm instance the figures
   * still prove needed.
   */
  // eslint-disable-next-line no-unused-private-class-members -- held, never read: see above
  static readonly #warm: Pool<unknown> = new Pool<unknown>({
    source: [],
    concurrency: 1,
    signal: undefined,
    runner: () => {
      throw new Error("the idle pool never runs");
    },
    settle: () => false,
    room: undefined,
    onEnd: undefined,
    admission: undefined,
    journal: undefined,
    dynamic: undefined,
  });

  constructor(task: PoolTask<T>) {
    this.#task = task;
    this.#limit = task.concurrency;
    // One gauge per batch, held until the batch's last item has left its place.
    this.#gauge = task.dynamic?.[gaugeOf](false, undefined);
    this.#asks = task.room !== undefined || task.admission !== undefined;
    this.#gated = this.#asks || this.#gauge !== undefined;
    this.#observed = task.admission?.bind !== undefined;
    this.#admits = task.journal !== undefined || task.admission !== undefined;
    this.#tickets =
      task.journal !== undefined && (task.admission !== undefined || this.#gauge !== undefined)
        ? new Map()
        : undefined;
    // Held for the pool's life: the batch signal's registry entry (and its one listener)
    // stays while attempts subscribe and leave one at a time, instead of coming and going.
    this.#hold = whenAborted(this.#controller.signal, noop);
    this.done = new Promise<void>((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
    task.admission?.bind?.(this);
  }

  /** Items restored from the checkpoint so far: settled with their recorded outcomes. */
  get restored(): number {
    return this.#restored;
  }

  /** See {@link AdmissionHost.gauge}. */
  get gauge(): LimitGauge | undefined {
    return this.#gauge;
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

  /** See {@link AdmissionHost.runWaiting}: the admission's key wake calls it. */
  runWaiting(waiting: Waiting<T>): void {
    if (this.#stopped) {
      this.#giveBack(waiting);
      return;
    }
    // A fixed concurrency: the item needs a worker of its own. Under a gauge, the worker looks
    // for a place (and parks the item when there is none).
    if (this.#gauge === undefined && this.#workers >= this.#limit) {
      this.#park(waiting);
      return;
    }
    this.#workers++;
    void this.#work(waiting);
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
    this.#dropParked();
    if (this.#gauge !== undefined) this.#stopPlaces(this.#gauge);
    this.#subscription?.cancel();
    this.#controller.abort(abortReason);
    const closing =
      closeSource && !this.#exhausted ? this.#close() : Promise.resolve<CloseOutcome>(undefined);
    // With a pull under way the close waits for it; so does the batch, unless the caller's
    // signal aborts (or has): cancellation never waits for an input that may not answer, and
    // wins over the reason the batch was stopping with (`closing` itself never rejects).
    const settleAfter =
      this.#pending === undefined ? closing : untilAborted(closing, this.#task.signal);
    void settleAfter.then(this.#settleStopped(reason), (cancelled: unknown) => {
      this.#settleStopped(cancelled)();
    });
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
    if (this.#gauge !== undefined) this.#stopPlaces(this.#gauge);
    this.#task.onEnd?.();
    this.#resolve();
  }

  /**
   * Whether an item may be taken now: the task's `room`, the per-key admission and the gauge
   * agree. Under a gauge, the worker in `slot` takes its place before it takes the item (the
   * input's code runs in it; a pull under way holds it), unless it kept one; without `slot`
   * (a worker to start, which takes its place at once), whether there is a place.
   */
  #canTake(slot: Slot<T> | undefined): boolean {
    const { room, admission } = this.#task;
    if ((room !== undefined && !room()) || admission?.full === true) return false;
    const gauge = this.#gauge;
    if (gauge === undefined || slot?.placed === true) return true;
    if (gauge.inFlight >= gauge.limit) {
      this.#waitForPlace(gauge);
      return false;
    }
    if (slot !== undefined) this.#seat(gauge, slot);
    return true;
  }

  /**
   * Starts workers (at most `count`) while there are items to take, room for them, and
   * places under the limit.
   */
  #fill(count = Infinity): void {
    // The common case first: every worker is busy.
    if (this.#workers >= this.#limit || this.#filling) return;
    this.#filling = true;
    let started = 0;
    while (
      started < count &&
      !this.#stopped &&
      !this.#exhausted &&
      this.#workers < this.#limit &&
      (this.#sync || this.#pending === undefined) &&
      (!this.#gated || this.#canTake(undefined))
    ) {
      started++;
      this.#workers++;
      void this.#work();
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
    const slot = this.#spare.pop() ?? new Slot<T>(this.#task.runner(this.#controller.signal));
    const { runner } = slot;
    slot.handedOver = first;
    // The batch's gauge hears of every item's failed attempts (under an admission with
    // `bind`, the item's key tells it, with the key's gauge).
    slot.observer = this.#gauge;
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
            if (runner.pending) {
              // The first step awaited outside the loop of the later ones: V8 resumes an
              // await through the jump table of every loop around it, and an item of a
              // one-stage pipeline then costs about 89 fewer instructions (callgrind,
              // batches 6 to 10 of a process: 1,078 to 989 for `map` at concurrency 16).
              pending = true;
              outcome = await outcome;
              pending = false;
              outcome = runner.resume(outcome);
              // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition -- resume() sets it
              while (runner.pending) {
                pending = true;
                outcome = await outcome;
                pending = false;
                outcome = runner.resume(outcome);
              }
            }
          } catch (error) {
            ok = false;
            outcome = pending ? runner.failure(error) : error;
          }
        }
        if (!this.#settleItem(slot, ok, outcome)) return;
      }
    } catch (error) {
      // #work handles every failure it expects; anything else stops the pool. It never
      // rejects, so that starting a worker chains nothing to its promise.
      this.#crash(error);
    } finally {
      try {
        this.#ended(slot);
      } catch (error) {
        this.#crash(error);
      }
    }
  }

  /** A worker ended: the last one out finishes the pool, else others may start. */
  #ended(slot: Slot<T>): void {
    this.#workers--;
    // Under backpressure or admission, workers end and start again mid-batch (a stream's
    // whenever its read-ahead window is full): the next one takes this one's slot and runner.
    if (this.#gated && !this.#stopped) {
      slot.item = undefined as T;
      this.#spare.push(slot);
    }
    if (slot.placed) this.#vacate(this.#gauge as LimitGauge, slot);
    // Items taken and not settled may be parked, or wait in the admission for a place that
    // frees in another batch.
    if (
      this.#workers === 0 &&
      ((this.#exhausted && this.#settled === this.#nextIndex) || this.#stopped)
    ) {
      this.#finish();
    } else this.#fill();
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
    if (handedOver !== undefined) return this.#takeHandedOver(slot, handedOver);
    if (!this.#sync) return this.#takeAsync(slot);
    for (;;) {
      // Once the input said `done`, nobody asks it again. With no room (a stream's read-ahead
      // window is full, or enough items wait for their keys) the worker ends.
      if (
        this.#stopped ||
        this.#exhausted ||
        (this.#gated && (this.#asks || !slot.placed) && !this.#canTake(slot))
      ) {
        return false;
      }
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
      const admitted = this.#admit(slot, item);
      if (admitted !== false) return admitted;
    }
  }

  /** {@link Pool.#take} of an item handed over to this worker (by its key, or parked). */
  #takeHandedOver(slot: Slot<T>, handedOver: Waiting<T>): boolean {
    slot.handedOver = undefined;
    slot.item = handedOver.item;
    slot.index = handedOver.index;
    // It was let in by the admission: whatever the slot's last item was (refused, perhaps),
    // this one runs.
    slot.refused = false;
    slot.error = undefined;
    if ("key" in handedOver) slot.key = handedOver.key;
    if (this.#tickets !== undefined) slot.ticket = this.#ticketOf(handedOver.index);
    if (this.#observed) slot.observer = slot.key as AttemptObserver;
    if (this.#stopped) {
      this.#giveBack(handedOver);
      return false;
    }
    if (this.#gauge !== undefined && !this.#place(this.#gauge, slot)) return false;
    this.#fill();
    return true;
  }

  /** {@link Pool.#take} from an async input: pulls are serialised. */
  async #takeAsync(slot: Slot<T>): Promise<boolean> {
    for (;;) {
      if (this.#stopped || this.#exhausted || (this.#gated && !this.#canTake(slot))) return false;
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
      const admitted = this.#admit(slot, item);
      if (admitted !== false) return admitted;
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
   * Counts a taken item in, into `slot`, through the journal, the per-key admission and the
   * gauge: `false` when it does not run in this worker now: it was restored from the
   * checkpoint, it waits for its key (it runs when an item of its key hands it over), or for a
   * place (parked). An item whose key throws is in the slot as refused, with the error: it fails
   * like a stage failure, holding no place. A promise when its recorded outcome must be fetched
   * first: then of what {@link Pool.#take} gives next.
   */
  #admit(slot: Slot<T>, item: T): boolean | Promise<boolean> {
    // The input's code ran: it may have stopped the pool.
    if (this.#stopped) return false;
    const index = this.#nextIndex++;
    slot.item = item;
    slot.index = index;
    if (this.#admits) return this.#admitThrough(slot, item, index);
    // Another worker may take the next item now (a synchronous input was offered to every
    // free worker when the pool filled; an async one is pulled by one worker at a time).
    if (!this.#sync) this.#fill();
    return true;
  }

  /** {@link Pool.#admit} through the journal, the per-key admission and the gauge. */
  #admitThrough(slot: Slot<T>, item: T, index: number): boolean | Promise<boolean> {
    const { admission, journal } = this.#task;
    if (journal !== undefined) {
      const taken = this.#journalTake(journal, slot, item, index);
      if (taken !== true) return taken;
    }
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
      if (entered === WAIT) {
        this.#tickets?.set(index, slot.ticket);
        return false;
      }
      slot.key = entered;
      if (this.#observed) slot.observer = entered as AttemptObserver | undefined;
    }
    // Under a gauge, it runs in the place its worker took before taking it (see #canTake).
    // Another worker may take the next item now (a synchronous input was offered to every
    // free worker when the pool filled; an async one is pulled by one worker at a time).
    if (!this.#sync) this.#fill();
    return true;
  }

  /**
   * The item in `slot` settled: reports the outcome, stops the pool on a fail-fast, leaves its
   * place under the gauge, and hands its key over to the key's next waiting item (or a parked
   * one), which this worker runs next. The outcome comes first: places that free may start
   * other items, and none may start after a failure that stops the batch. `false` when the
   * worker ends.
   */
  #settleItem(slot: Slot<T>, ok: boolean, outcome: unknown): boolean {
    this.#settled++;
    if (this.#admits || slot.placed) return this.#settleThrough(slot, ok, outcome);
    if (this.#stopped) return false;
    if (!this.#task.settle(slot.index, ok, outcome)) return true;
    // The other items are aborted with an AbortError, not with this item's error, so that
    // their hooks and handlers do not report another item's failure as their own.
    void this.stop(outcome, true, failedElsewhere());
    return false;
  }

  /**
   * {@link Pool.#settleItem} through the journal (which records the outcome before the batch
   * hears of it), then out of the gauge's place and the key's.
   */
  #settleThrough(slot: Slot<T>, ok: boolean, outcome: unknown): boolean {
    const task = this.#task;
    let going = !this.#stopped;
    if (going && task.journal !== undefined) {
      const failure = this.#record(task.journal, slot, ok, outcome);
      if (failure === STOPPED) going = false;
      else if (failure !== undefined) {
        ok = false;
        outcome = failure;
      }
    }
    if (going && task.settle(slot.index, ok, outcome)) {
      void this.stop(outcome, true, failedElsewhere());
      going = false;
    }
    const gauge = this.#gauge;
    if (gauge !== undefined && !slot.refused) this.#leavePlace(gauge, slot);
    if (task.admission !== undefined && !slot.refused) {
      slot.handedOver = task.admission.leave(slot.key);
    }
    slot.handedOver ??= this.#nextParked(slot);
    // Parked items left: those the gauge has places for beyond this worker's next item (in
    // the place it kept, or in one it takes) run now; the others wait for a place (a wake
    // this pool's own finish consumed is gone).
    if (going && gauge !== undefined && this.#parked !== undefined && this.#parked.length > 0) {
      this.#runParked(slot.placed ? 0 : 1);
      if (this.#parked.length > 0) this.#waitForPlace(gauge);
    }
    return going;
  }

  /**
   * A parked item, when there is one and a place for it (the place the worker in `slot` kept,
   * or a free one: the worker that asks is one).
   */
  #nextParked(slot: Slot<T>): Waiting<T> | undefined {
    const parked = this.#parked;
    if (parked === undefined || parked.length === 0 || this.#stopped) return undefined;
    const gauge = this.#gauge;
    return gauge === undefined || slot.placed || gauge.inFlight < gauge.limit
      ? parked.shift()
      : undefined;
  }

  /**
   * Takes a place under `gauge` for the item handed over into `slot`, when its worker kept
   * none and there is one; else parks the item (its key's place kept) and waits for one.
   */
  #place(gauge: LimitGauge, slot: Slot<T>): boolean {
    if (slot.placed) return true;
    if (gauge.inFlight < gauge.limit) {
      this.#seat(gauge, slot);
      return true;
    }
    this.#tickets?.set(slot.index, slot.ticket);
    this.#park({ item: slot.item, index: slot.index, key: slot.key });
    return false;
  }

  /** The worker in `slot` takes a place under `gauge`. */
  #seat(gauge: LimitGauge, slot: Slot<T>): void {
    gauge.started();
    this.#placed++;
    slot.placed = true;
    // Only while other batches hold places this pool could use: one that holds every place
    // under the limit already has all it can get (a limit that rises wakes it in #leavePlace),
    // and waiting would only make its own next finish give a place up to itself.
    if (this.#rewait) {
      this.#rewait = false;
      if (this.#placed < gauge.limit) this.#fill();
    }
  }

  #waitForPlace(gauge: LimitGauge): void {
    if (this.#blocked || this.#stopped) return;
    this.#blocked = true;
    gauge.wait(this.#wake);
  }

  /** An item let in by the admission waits for a place in the batch (a gauge's, or a worker). */
  #park(waiting: Waiting<T>): void {
    (this.#parked ??= new Queue()).push(waiting);
    if (this.#gauge !== undefined) this.#waitForPlace(this.#gauge);
  }

  /**
   * Runs parked items in workers of their own while the gauge has more than `reserved` places
   * free (a fixed concurrency's parked items run as workers finish, see `#settleItem`).
   */
  #runParked(reserved: number): void {
    const gauge = this.#gauge as LimitGauge;
    const parked = this.#parked;
    while (parked !== undefined && parked.length > 0 && gauge.inFlight + reserved < gauge.limit) {
      this.runWaiting(parked.shift() as Waiting<T>);
    }
  }

  /**
   * The item in `slot` leaves its place under `gauge`. While the batch goes on, its worker,
   * which goes on at once to take its next item, keeps the place for it when the gauge allows
   * ({@link LimitGauge.keep}); else the place is given up. A wake the gauge gives this pool
   * meanwhile is left to the worker, which takes a place with its next item; when the limit
   * rose, other workers take the places beyond that one.
   */
  #leavePlace(gauge: LimitGauge, slot: Slot<T>): void {
    this.#finishing = true;
    if (this.#stopped) {
      slot.placed = false;
      this.#placed--;
      gauge.finished();
      this.#finishing = false;
      this.#releaseWhenIdle(gauge);
      return;
    }
    const before = gauge.limit;
    const kept = gauge.keep();
    this.#finishing = false;
    if (!kept) {
      slot.placed = false;
      this.#placed--;
    }
    if (gauge.limit > before) {
      const reserved = kept ? 0 : 1;
      this.#runParked(reserved);
      this.#fill(gauge.limit - gauge.inFlight - reserved);
    }
  }

  /** The worker in `slot` kept a place it will not use (it ends, or waits): given back. */
  #vacate(gauge: LimitGauge, slot: Slot<T>): void {
    slot.placed = false;
    this.#placed--;
    gauge.giveBack();
    if (this.#stopped) this.#releaseWhenIdle(gauge);
  }

  /** The batch stopped or ended: it waits no more, and gives its parked items' keys back. */
  #stopPlaces(gauge: LimitGauge): void {
    if (this.#blocked) {
      this.#blocked = false;
      gauge.cancelWait(this.#wake);
    }
    this.#releaseWhenIdle(gauge);
  }

  /** Once stopped or ended, and its last item has left its place: the gauge is given back. */
  #releaseWhenIdle(gauge: LimitGauge): void {
    if (this.#released || this.#placed > 0) return;
    this.#released = true;
    gauge.release();
  }

  /**
   * A stopped pool was handed an item that holds its key's place: an admission with `bind`
   * (closed, so nothing follows) takes the place back.
   */
  #giveBack(waiting: Waiting<T>): void {
    if (this.#observed) this.#task.admission?.leave(waiting.key);
  }

  /** The pool stopped: its parked items will not run. */
  #dropParked(): void {
    const parked = this.#parked;
    while (parked !== undefined && parked.length > 0) this.#giveBack(parked.shift() as Waiting<T>);
  }

  // ---- The checkpoint's journal: nothing below runs for a batch without one ----

  /**
   * Asks the journal about the item just taken into `slot`: `true` when it runs (its ticket
   * in the slot), `false` when it was restored or the journal stopped the pool, a promise of
   * what {@link Pool.#take} gives next when its recorded outcome must be fetched first.
   */
  #journalTake(
    journal: PoolJournal<T>,
    slot: Slot<T>,
    item: T,
    index: number,
  ): boolean | Promise<boolean> {
    let taken: RecordedOutcome | PromiseLike<RecordedOutcome> | string | number;
    try {
      taken = journal.take(item, index);
    } catch (error) {
      // Not the item's failure (a duplicate itemKey, …): the batch's.
      this.#settled++;
      void this.stop(error, true);
      return false;
    }
    if (typeof taken !== "object") {
      slot.ticket = taken;
      return true;
    }
    if (!isThenable(taken)) {
      this.#settleRestored(index, taken);
      return false;
    }
    // Nothing runs in this worker until the outcome is read: a place it kept is given back.
    if (slot.placed) this.#vacate(this.#gauge as LimitGauge, slot);
    return this.#restoreLater(slot, index, taken);
  }

  /** The recorded outcome of the item at `index` is being fetched: settles it, takes on. */
  async #restoreLater(
    slot: Slot<T>,
    index: number,
    fetching: PromiseLike<RecordedOutcome>,
  ): Promise<boolean> {
    let restored: RecordedOutcome;
    try {
      restored = await fetching;
    } catch (error) {
      this.#settled++;
      void this.stop(error, true);
      return false;
    }
    this.#settleRestored(index, restored);
    return this.#take(slot);
  }

  /** A restored item settles with its recorded outcome, as if it had run. */
  #settleRestored(index: number, restored: RecordedOutcome): void {
    this.#settled++;
    if (this.#stopped) return;
    this.#restored++;
    const { ok, outcome } = restored;
    if (this.#task.settle(index, ok, outcome)) void this.stop(outcome, true, failedElsewhere());
  }

  /**
   * Records the outcome of the item in `slot` in the journal: the failure to settle it with
   * instead, or `undefined`; {@link STOPPED} when the journal threw (the pool stops with that).
   */
  #record(journal: PoolJournal<T>, slot: Slot<T>, ok: boolean, outcome: unknown): unknown {
    try {
      return journal.record(slot.index, slot.ticket, ok, outcome);
    } catch (error) {
      void this.stop(error, true);
      return STOPPED;
    }
  }

  /** The ticket of the item at `index`, which waited (for its key, or for a place). */
  #ticketOf(index: number): string | number {
    const tickets = this.#tickets as Map<number, string | number>;
    const ticket = tickets.get(index) as string | number;
    tickets.delete(index);
    return ticket;
  }
}

/**
 * A worker's current item, reused from item to item: what the worker needs of it across the
 * awaits of its run, kept out of the worker's own frame; and the worker's runner. A worker that
 * ends mid-batch leaves both to the next one.
 */
class Slot<T> {
  /** The worker's runner, which runs the slot's items one after another. */
  readonly runner: ItemRunner<T>;
  item: T = undefined as T;
  index = 0;
  /** Its key under per-key admission, given back when it finishes. */
  key: unknown = undefined;
  /** Told of its failed attempts, under adaptive limits. */
  observer: AttemptObserver | undefined = undefined;
  /** Its key could not be found (`key` threw): it fails with `error` without running. */
  refused = false;
  /**
   * The worker holds a place under the batch's gauge: its item's, or, between items, the one
   * it kept for its next item (see `LimitGauge.keep`).
   */
  placed = false;
  error: unknown = undefined;
  /** The next item of its key, handed over to this worker when it finished. */
  handedOver: Waiting<T> | undefined = undefined;
  /** With a checkpoint: its ticket from the journal, handed back when it settles. */
  ticket: string | number = 0;

  constructor(runner: ItemRunner<T>) {
    this.runner = runner;
  }
}
