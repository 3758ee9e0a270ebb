/**
 * Timers that work for any duration and that a user's fake timers can drive.
 *
 * `setTimeout` clamps a delay above 2^31 − 1 ms to 1 ms (it would fire at once), so a longer
 * duration is served as a chain of maximal timers. The global `setTimeout`/`clearTimeout` are
 * looked up on every call, never captured at import, so vitest, jest or sinon fake timers
 * installed after import drive them.
 */
import { whenAborted, type Subscription } from "./abort.js";
import { now } from "./clock.js";

/** The longest delay `setTimeout` honours: 2^31 − 1 ms, about 24.8 days. */
export const MAX_TIMER_DELAY = 2_147_483_647;

type NativeHandle = ReturnType<typeof setTimeout>;

/** A running timer: a native handle, or a chain for durations past {@link MAX_TIMER_DELAY}. */
export type TimerHandle = NativeHandle | LongTimer;

class LongTimer {
  #handle: NativeHandle;
  #remaining: number;
  readonly #callback: () => void;

  constructor(ms: number, callback: () => void) {
    this.#callback = callback;
    this.#remaining = ms - MAX_TIMER_DELAY;
    this.#handle = globalThis.setTimeout(this.#step, MAX_TIMER_DELAY);
  }

  readonly #step = (): void => {
    if (this.#remaining <= 0) {
      this.#callback();
      return;
    }
    const next = Math.min(this.#remaining, MAX_TIMER_DELAY);
    this.#remaining -= next;
    this.#handle = globalThis.setTimeout(this.#step, next);
  };

  clear(): void {
    globalThis.clearTimeout(this.#handle);
  }
}

/** Calls `callback` after `ms` milliseconds (any finite or infinite duration, never early). */
export function startTimer(ms: number, callback: () => void): TimerHandle {
  return ms > MAX_TIMER_DELAY ? new LongTimer(ms, callback) : globalThis.setTimeout(callback, ms);
}

/** Stops a timer started by {@link startTimer}; harmless after it fired. */
export function stopTimer(handle: TimerHandle): void {
  if (handle instanceof LongTimer) handle.clear();
  else globalThis.clearTimeout(handle);
}

/**
 * One pending timeout of a {@link Deadlines} queue: `expire` is called once with `undefined`
 * when it is due, or with the signal's reason when the queue's signal aborts first, unless
 * {@link Deadlines.settle} came first.
 */
export interface Deadline {
  readonly at: number;
  live: boolean;
  readonly expire: (reason: unknown) => void;
}

/** Reused by queues for no signal, keyed by duration. */
const unsignalled = new Map<number, Deadlines>();
/** Queues of each signal, keyed by duration; forgotten with the signal. */
const bySignal = new WeakMap<AbortSignal, Map<number, Deadlines>>();

/**
 * The timeouts of one duration under one signal (or none): every attempt of a stage with a
 * `timeout` in one batch. They all last as long, so they fall due in the order they were set,
 * and one native timer serves them all: a queue of deadlines in that order, the timer armed
 * for the first live one. An attempt that settles marks its deadline dead in O(1); dead ones
 * leave the queue when they reach its head, or in one sweep once they outnumber the live
 * ones. The queue watches its signal once (through the registry), not once per attempt: when
 * the signal aborts, every live deadline expires with its reason.
 *
 * Never early: a deadline is due when the clock ({@link now}, which never goes back) has
 * passed it, or when the timer armed for it has fired (a timer never fires before its delay
 * on its own clock; this also keeps deadlines working under fake timers that leave
 * `performance.now()` alone). With nothing live, no timer is set and no listener is left on
 * the signal. Each timer is the global `setTimeout`, looked up when armed.
 */
export class Deadlines {
  readonly #ms: number;
  readonly #signal: AbortSignal | undefined;
  #entries: Deadline[] = [];
  #head = 0;
  #live = 0;
  #timer: TimerHandle | undefined = undefined;
  /** The deadline the timer was armed for. */
  #armedFor = 0;
  #subscription: Subscription | undefined = undefined;

  private constructor(ms: number, signal: AbortSignal | undefined) {
    this.#ms = ms;
    this.#signal = signal;
  }

  /** The queue of timeouts of `ms` under `signal`. */
  static for(ms: number, signal: AbortSignal | undefined): Deadlines {
    let queues: Map<number, Deadlines> | undefined;
    if (signal === undefined) {
      queues = unsignalled;
    } else {
      queues = bySignal.get(signal);
      if (queues === undefined) {
        queues = new Map();
        bySignal.set(signal, queues);
      }
    }
    let queue = queues.get(ms);
    if (queue === undefined) {
      queue = new Deadlines(ms, signal);
      queues.set(ms, queue);
    }
    return queue;
  }

  /**
   * A deadline `ms` from now. When the signal has aborted already, `expire` is called at once
   * with its reason (and the deadline is dead).
   */
  add(expire: (reason: unknown) => void): Deadline {
    const signal = this.#signal;
    const deadline: Deadline = { at: now() + this.#ms, live: true, expire };
    if (signal?.aborted === true) {
      deadline.live = false;
      expire(signal.reason);
      return deadline;
    }
    this.#entries.push(deadline);
    if (this.#live++ === 0 && signal !== undefined) {
      this.#subscription = whenAborted(signal, this.#abort);
    }
    if (this.#timer === undefined) this.#arm(deadline.at);
    return deadline;
  }

  /**
   * The work finished before its deadline: returns `true` and forgets the deadline, or
   * `false` when it had expired already (the work lost the race).
   */
  settle(deadline: Deadline): boolean {
    if (!deadline.live) return false;
    deadline.live = false;
    if (--this.#live === 0) {
      this.#reset();
      return true;
    }
    const entries = this.#entries;
    if (entries[this.#head] === deadline) {
      this.#dropDeadHead();
    } else if (entries.length - this.#head > 2 * this.#live + 1024) {
      // Dead deadlines behind a long-running live one: one sweep, amortised O(1) per deadline.
      this.#entries = entries.slice(this.#head).filter((entry) => entry.live);
      this.#head = 0;
    }
    return true;
  }

  #dropDeadHead(): void {
    const entries = this.#entries;
    let head = this.#head;
    while (head < entries.length && !(entries[head] as Deadline).live) head++;
    if (head >= 1024 && head * 2 >= entries.length) {
      this.#entries = entries.slice(head);
      head = 0;
    }
    this.#head = head;
  }

  #arm(at: number): void {
    this.#armedFor = at;
    this.#timer = startTimer(Math.max(Math.ceil(at - now()), 1), this.#fire);
  }

  readonly #fire = (): void => {
    this.#timer = undefined;
    // The timer has fired: at least the deadline it was armed for is due.
    const time = Math.max(now(), this.#armedFor);
    const entries = this.#entries;
    const due: Deadline[] = [];
    let head = this.#head;
    for (; head < entries.length; head++) {
      const deadline = entries[head] as Deadline;
      if (!deadline.live) continue;
      if (deadline.at > time) break;
      deadline.live = false;
      this.#live--;
      due.push(deadline);
    }
    this.#head = head;
    if (this.#live === 0) this.#reset();
    else this.#arm((entries[head] as Deadline).at);
    // Last, with the queue in order: an expiry may start or settle other attempts.
    for (const deadline of due) deadline.expire(undefined);
  };

  readonly #abort = (): void => {
    const reason: unknown = (this.#signal as AbortSignal).reason;
    const live = this.#entries.slice(this.#head).filter((deadline) => deadline.live);
    this.#reset();
    for (const deadline of live) {
      deadline.live = false;
      deadline.expire(reason);
    }
  };

  /** Nothing live: no timer, no subscription, an empty queue. */
  #reset(): void {
    if (this.#timer !== undefined) {
      stopTimer(this.#timer);
      this.#timer = undefined;
    }
    this.#subscription?.cancel();
    this.#subscription = undefined;
    this.#entries.length = 0;
    this.#head = 0;
    this.#live = 0;
  }
}
