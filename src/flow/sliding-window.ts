import { chargeAmount, unusedLimiter, type AttemptGrant } from "../internal/gates.js";
import { now as clock } from "../internal/clock.js";
import { startTimer, stopTimer, type TimerHandle } from "../internal/timers.js";
import { Fifo, type FifoNode } from "./fifo.js";
import type { KeyedState } from "./keyed.js";

/**
 * A turn waiting in one or more windows (one per limiter of a `rateLimit` array): what a window
 * asks of the turn at the front of its queue. Implemented by `Turn`; a method, not a private
 * field, so that windows and turns made by different builds of the package work together.
 */
export interface QueuedTurn {
  /**
   * Takes the turn's cost in every window if it is at the front of each queue and each window
   * has room for it now, and lets it go; else leaves everything as it is and returns `false`
   * (having asked the window short of room for a timer, see {@link SlidingWindow.block}).
   */
  tryGrant(): boolean;
}

/** One entry of a window's queue: the turn, and what it asks of this window. */
export interface Queued {
  readonly turn: QueuedTurn;
  readonly cost: number;
}

/** How many attempts wait in any window of one limiter: shared by the limiter's windows. */
export interface WaitCount {
  waiting: number;
}

/**
 * One sliding window of a {@link RateLimiter} (its only one, or one key's): the starts of the
 * last `interval` ms with their costs, the cost reserved by grants not started yet, and the
 * turns waiting for room, in order.
 *
 * An attempt fits when what the window holds, plus what is reserved, plus its cost is at most
 * `limit`. A granted attempt reserves its cost at once and is stamped into the window, at the
 * clock's time, when it starts ({@link SlidingWindow.start}): so whatever happens between the
 * grant and the handler's call (a busy event loop), the starts of any `interval` ms, as the
 * handler sees them, never hold more than `limit`.
 *
 * Windows are driven by the turns at the front of their queues ({@link QueuedTurn.tryGrant})
 * through public methods, so that the limiters of one array may come from different builds.
 * The time is the monotonic clock ({@link clock}); a timer (the global `setTimeout`, looked up
 * when used) is set only while a turn waits for room here, and cleared when nobody waits.
 * @internal
 */
export class SlidingWindow implements KeyedState {
  /** The limiter this window belongs to: what `call.charge` names. */
  readonly limiter: object;
  /** The key whose window this is (`undefined` for a limiter without `key`). */
  readonly key: unknown;
  /** For the table of a keyed limiter: made or used since its sweep last looked. */
  recent = true;
  readonly limit: number;
  readonly interval: number;
  /** The grant of an attempt of cost 1 here: holds no state of its own, so it is shared. */
  readonly unit: AttemptGrant;
  readonly #count: WaitCount;
  // The starts in the window, oldest first: a ring of start times and costs, its capacity a
  // power of two that doubles when full. `#first` is the sequence number of the oldest entry;
  // entries are numbered in start order, so a number finds its entry while it is held.
  #times = new Float64Array(8);
  #costs = new Float64Array(8);
  #head = 0;
  #size = 0;
  #first = 0;
  /** The sum of `#costs` (exactly 0 when the window is empty). */
  #used = 0;
  /** The cost reserved by grants not started or released yet, and how many they are. */
  #reserved = 0;
  #reservations = 0;
  readonly #queue = new Fifo<Queued>();
  #timer: TimerHandle | undefined;
  /** When `#timer` fires. */
  #due = 0;
  #pumping = false;
  #again = false;

  constructor(limiter: object, key: unknown, limit: number, interval: number, count: WaitCount) {
    this.limiter = limiter;
    this.key = key;
    this.limit = limit;
    this.interval = interval;
    this.#count = count;
    this.unit = new SingleGrant(this, 1);
  }

  /** Turns waiting here now. */
  get waiting(): number {
    return this.#queue.size;
  }

  /**
   * Whether the window holds nothing worth keeping: no start of the last `interval`, nothing
   * reserved, nobody waiting (so no timer either).
   */
  get idle(): boolean {
    if (this.#reservations !== 0 || this.#queue.size !== 0) return false;
    if (this.#size !== 0) this.#expire(clock());
    return this.#size === 0;
  }

  /**
   * Whether `cost` fits now (the queue aside: the caller checks its place in it). Entries that
   * have left the window are dropped only when the window looks full: while it has room
   * anyway, no clock is read.
   */
  fits(cost: number): boolean {
    const need = this.#reserved + cost;
    if (this.#used + need <= this.limit) return true;
    if (this.#size === 0) return false;
    this.#expire(clock());
    return this.#used + need <= this.limit;
  }

  /** Whether nobody waits here: a new attempt may go at once if it fits. */
  get open(): boolean {
    return this.#queue.size === 0;
  }

  /** Reserves `cost` for a granted attempt (it fits: the caller checked). */
  reserve(cost: number): void {
    this.#reserved += cost;
    this.#reservations++;
  }

  /** A granted attempt starts: its reservation becomes an entry stamped `now`. Returns its number. */
  start(cost: number, now: number): number {
    this.#unreserve(cost);
    const number = this.#stamp(cost, now);
    // The entry will leave the window at a time now known: a turn that waited for the
    // reservation to go can have a timer.
    if (this.#queue.size > 0) this.pump();
    return number;
  }

  /** A granted attempt will not start: its reservation goes, and waiting turns may go. */
  release(cost: number): void {
    this.#unreserve(cost);
    if (this.#queue.size > 0) this.pump();
  }

  /**
   * Replaces the cost of the entry numbered `number` by `actual`, if it is still in the
   * window; a refund lets waiting turns go.
   */
  recharge(number: number, actual: number): void {
    const offset = number - this.#first;
    if (offset < 0 || offset >= this.#size) return;
    const index = (this.#head + offset) & (this.#times.length - 1);
    const before = this.#costs[index] as number;
    this.#costs[index] = actual;
    this.#used += actual - before;
    if (actual < before && this.#queue.size > 0) this.pump();
  }

  /** Queues `turn`, asking `cost` here. The caller then calls {@link QueuedTurn.tryGrant} or waits. */
  enqueue(turn: QueuedTurn, cost: number): FifoNode<Queued> {
    this.#count.waiting++;
    return this.#queue.push({ turn, cost });
  }

  /** Whether `node` is at the front of the queue. */
  isFirst(node: FifoNode<Queued>): boolean {
    return this.#queue.first === node;
  }

  /** The turn of `node` was granted: it leaves the queue and reserves its cost. */
  grant(node: FifoNode<Queued>): void {
    this.#dequeue(node);
    this.reserve(node.value.cost);
  }

  /** The turn of `node` gave up (its signal aborted): it leaves, and the next may go. */
  leave(node: FifoNode<Queued>): void {
    const wasFirst = this.#queue.first === node;
    this.#dequeue(node);
    if (wasFirst) this.pump();
  }

  /**
   * The turn at the front found too little room here (just now: {@link SlidingWindow.fits}
   * said so): sets the timer for when enough of the window will have expired, unless one is set
   * for then or earlier. Sets none when only a reservation stands in the way (its start or
   * release will pump the queue).
   */
  block(cost: number): void {
    const due = this.#dueFor(cost);
    if (due === undefined) return;
    const now = clock();
    if (this.#timer !== undefined) {
      if (this.#due <= due) return;
      stopTimer(this.#timer);
    }
    this.#due = due;
    // Whole milliseconds, never less than 1: a timer may fire a little before the clock says it
    // is due, and then the front turn sets it again rather than starting early.
    this.#timer = startTimer(Math.max(Math.ceil(due - now), 1), () => {
      this.#timer = undefined;
      this.pump();
    });
  }

  /**
   * Lets the turns at the front go while they can; clears the timer when nobody waits. Safe to
   * call from inside itself (a granted turn pumps each of its windows): the outer call then
   * looks at the queue again.
   */
  pump(): void {
    if (this.#pumping) {
      this.#again = true;
      return;
    }
    this.#pumping = true;
    do {
      this.#again = false;
      while (this.#queue.first?.value.turn.tryGrant() === true) {
        // Granted: the next one may go too.
      }
    } while (this.#pumpAgain());
    this.#pumping = false;
    if (this.#queue.size === 0 && this.#timer !== undefined) {
      stopTimer(this.#timer);
      this.#timer = undefined;
    }
  }

  /** `#again`, read through a call: a nested {@link SlidingWindow.pump} sets it. */
  #pumpAgain(): boolean {
    return this.#again;
  }

  #dequeue(node: FifoNode<Queued>): void {
    this.#queue.remove(node);
    this.#count.waiting--;
  }

  #unreserve(cost: number): void {
    this.#reservations--;
    // Exactly 0 once nothing is reserved: sums of fractional costs do not come back to 0.
    this.#reserved = this.#reservations === 0 ? 0 : this.#reserved - cost;
  }

  #stamp(cost: number, now: number): number {
    if (this.#size === this.#times.length) {
      // Full: drop what has left the window before making the ring larger.
      this.#expire(now);
      if (this.#size === this.#times.length) this.#grow();
    }
    const index = (this.#head + this.#size) & (this.#times.length - 1);
    this.#times[index] = now;
    this.#costs[index] = cost;
    this.#size++;
    this.#used += cost;
    return this.#first + this.#size - 1;
  }

  /** Drops the entries that have left the window: those stamped `interval` ms ago or more. */
  #expire(now: number): void {
    const mask = this.#times.length - 1;
    while (this.#size > 0 && (this.#times[this.#head] as number) + this.interval <= now) {
      this.#used -= this.#costs[this.#head] as number;
      this.#head = (this.#head + 1) & mask;
      this.#size--;
      this.#first++;
    }
    if (this.#size === 0) this.#used = 0;
  }

  /**
   * When `cost` will fit, counting only expiries: the time the oldest entries that must go
   * for it have gone. `undefined` when the reservations alone leave no room for it.
   */
  #dueFor(cost: number): number | undefined {
    if (this.#reserved + cost > this.limit) return undefined;
    let excess = this.#used + this.#reserved + cost - this.limit;
    const mask = this.#times.length - 1;
    let due = 0;
    for (let offset = 0; offset < this.#size; offset++) {
      const index = (this.#head + offset) & mask;
      due = (this.#times[index] as number) + this.interval;
      excess -= this.#costs[index] as number;
      if (excess <= 0) break;
    }
    // Rounding aside, the loop ends at the entry whose expiry makes room; at worst at the
    // newest, once the window is empty.
    return due;
  }

  #grow(): void {
    const capacity = this.#times.length;
    const times = new Float64Array(capacity * 2);
    const costs = new Float64Array(capacity * 2);
    for (let offset = 0; offset < this.#size; offset++) {
      const index = (this.#head + offset) & (capacity - 1);
      times[offset] = this.#times[index] as number;
      costs[offset] = this.#costs[index] as number;
    }
    this.#times = times;
    this.#costs = costs;
    this.#head = 0;
  }
}

/**
 * The grant of an attempt in one window, given at once (nothing waited): its cost is reserved.
 * `start` returns the entry's number, the receipt `charge` needs.
 * @internal
 */
export class SingleGrant implements AttemptGrant {
  readonly #window: SlidingWindow;
  readonly #cost: number;

  constructor(window: SlidingWindow, cost: number) {
    this.#window = window;
    this.#cost = cost;
  }

  start(): number {
    return this.#window.start(this.#cost, clock());
  }

  release(): void {
    this.#window.release(this.#cost);
  }

  charge(receipt: unknown, limiter: unknown, actual: unknown): void {
    if (limiter !== this.#window.limiter) throw unusedLimiter(limiter);
    this.#window.recharge(receipt as number, chargeAmount(actual));
  }
}
