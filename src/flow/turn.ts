import { whenAborted, type Subscription } from "../internal/abort.js";
import { now as clock } from "../internal/clock.js";
import { chargeAmount, unusedLimiter, type AttemptGrant } from "../internal/gates.js";
import type { FifoNode } from "./fifo.js";
import type { Queued, QueuedTurn, SlidingWindow } from "./sliding-window.js";

/**
 * One attempt's turn in one or more sliding windows (one per limiter of a `rateLimit` array):
 * first a waiter in each window's queue, then, once every window has room for it and it is at
 * the front of every queue, the grant (all or nothing: it holds nothing while it waits for any
 * of them). Each window is FIFO, so a turn is never overtaken by a later one that would fit
 * where it does not. A turn made for a grant given at once (several limiters with room) skips
 * the waiting.
 *
 * Turns join the queues of all their windows at once, so every queue orders them the same way:
 * the oldest turn is at the front of each of its queues, and nothing can deadlock.
 * @internal
 */
export class Turn implements AttemptGrant, QueuedTurn {
  readonly #windows: readonly SlidingWindow[];
  readonly #costs: readonly number[];
  #nodes: FifoNode<Queued>[] | undefined;
  #resolve: ((grant: AttemptGrant) => void) | undefined;
  #subscription: Subscription | undefined;

  /** `costs[i]` is asked of `windows[i]`; a turn made so is granted (see {@link Turn.wait}). */
  constructor(windows: readonly SlidingWindow[], costs: readonly number[]) {
    this.#windows = windows;
    this.#costs = costs;
  }

  /**
   * Reserves the costs in every window, which all have room and nobody waiting (the caller
   * checked), and returns the granted turn.
   */
  take(): this {
    for (let index = 0; index < this.#windows.length; index++) {
      (this.#windows[index] as SlidingWindow).reserve(this.#costs[index] as number);
    }
    return this;
  }

  /**
   * Queues the turn in every window and resolves with it once granted; rejects with
   * `signal.reason` (leaving every queue, having taken nothing) when `signal` aborts first.
   */
  wait(signal: AbortSignal | undefined): Promise<AttemptGrant> {
    if (signal?.aborted === true) return Promise.reject(signal.reason as Error);
    return new Promise<AttemptGrant>((resolve, reject) => {
      this.#resolve = resolve;
      this.#nodes = this.#windows.map((window, index) =>
        window.enqueue(this, this.#costs[index] as number),
      );
      if (signal !== undefined) {
        // Through the library's signal registry: one listener per signal, however many wait.
        // Cancelled when the turn is granted: the callback runs only for a waiting turn.
        this.#subscription = whenAborted(signal, () => {
          const nodes = this.#nodes as FifoNode<Queued>[];
          this.#windows.forEach((window, index) => {
            window.leave(nodes[index] as FifoNode<Queued>);
          });
          reject(signal.reason);
        });
      }
      this.tryGrant();
    });
  }

  /** Called only while the turn waits: by {@link Turn.wait}, then by the windows it waits in. */
  tryGrant(): boolean {
    const windows = this.#windows;
    const nodes = this.#nodes as FifoNode<Queued>[];
    for (let index = 0; index < windows.length; index++) {
      const window = windows[index] as SlidingWindow;
      // Not at the front: the turn ahead has its own way forward, and pumps this queue when it
      // goes.
      if (!window.isFirst(nodes[index] as FifoNode<Queued>)) return false;
      const cost = this.#costs[index] as number;
      if (!window.fits(cost)) {
        window.block(cost);
        return false;
      }
    }
    this.#subscription?.cancel();
    for (let index = 0; index < windows.length; index++) {
      (windows[index] as SlidingWindow).grant(nodes[index] as FifoNode<Queued>);
    }
    this.#nodes = undefined;
    (this.#resolve as (grant: AttemptGrant) => void)(this);
    // Each queue has a new front, which may go now.
    for (const window of windows) window.pump();
    return true;
  }

  /** See {@link AttemptGrant.start}: the entry's number (one window), or one per window. */
  start(): number | number[] {
    const now = clock();
    const windows = this.#windows;
    if (windows.length === 1) {
      return (windows[0] as SlidingWindow).start(this.#costs[0] as number, now);
    }
    return windows.map((window, index) => window.start(this.#costs[index] as number, now));
  }

  release(): void {
    this.#windows.forEach((window, index) => {
      window.release(this.#costs[index] as number);
    });
  }

  charge(receipt: unknown, limiter: unknown, actual: unknown): void {
    const windows = this.#windows;
    const index = windows.findIndex((window) => window.limiter === limiter);
    if (index === -1) throw unusedLimiter(limiter);
    const amount = chargeAmount(actual);
    const number = windows.length === 1 ? receipt : (receipt as number[])[index];
    (windows[index] as SlidingWindow).recharge(number as number, amount);
  }
}
