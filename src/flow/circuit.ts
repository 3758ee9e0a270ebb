import { whenAborted, type Subscription } from "../internal/abort.js";
import { now as clock } from "../internal/clock.js";
import { callIgnoringErrors } from "../internal/thenable.js";
import { startTimer, stopTimer, type TimerHandle } from "../internal/timers.js";
import { Fifo, type FifoNode } from "./fifo.js";
import type { KeyedState } from "./keyed.js";

/**
 * The state of a {@link CircuitBreaker}'s circuit: `"closed"` lets executions through, `"open"`
 * refuses them (or makes them wait, with `whenOpen: "wait"`), `"half-open"` lets one trial
 * execution through after the cooldown.
 *
 * @default "closed"
 * @example
 * ```ts
 * import type { CircuitState } from "async-pipeline";
 *
 * const healthy = (state: CircuitState): boolean => state === "closed";
 * ```
 */
export type CircuitState = "closed" | "open" | "half-open";

/** The breaker's settings, shared by all its circuits. */
export interface CircuitSettings {
  readonly threshold: number;
  readonly cooldown: number;
  readonly onStateChange: ((state: CircuitState, key: unknown) => unknown) | undefined;
  /** `whenOpen: "wait"`. */
  readonly wait: boolean;
  readonly maxWait: number;
}

/**
 * What {@link Circuit.admit} answers when the execution may not run now: the breaker refuses
 * it (`whenOpen: "fail"`) or queues it ({@link Circuit.wait}). Any other answer is a ticket:
 * a closed period's number (≥ 0), or a trial's number, negated (< 0).
 */
export const BLOCKED = Infinity;

/** What {@link Circuit.wait} resolves with for an execution that waited `maxWait` in vain. */
export const EXPIRED = -Infinity;

/**
 * What {@link Circuit.hold} resolves with when a held failure stands after all: the streak
 * was broken, nothing else runs, or it was held `maxWait`. Not an integer, so never a ticket.
 */
export const RELEASED = 0.5;

/**
 * What {@link Circuit.report} says the execution must do now: `"done"`, its outcome stands
 * (a success is returned, a failure thrown); `"again"`, wait for the circuit to close and run
 * again ({@link Circuit.wait}); `"hold"`, a failure whose verdict waits on the executions still
 * running ({@link Circuit.hold}). Only wait mode ever says `"again"` or `"hold"`.
 */
export type Verdict = "done" | "again" | "hold";

interface Waiter {
  readonly resolve: (ticket: number) => void;
  /** When it has waited `maxWait`, on the monotonic clock. */
  readonly deadline: number;
  subscription: Subscription | undefined;
  /** Its place in `#held` (while `held`) or in `#waiters`. */
  node: FifoNode<Waiter> | undefined;
  held: boolean;
}

/**
 * One circuit of a {@link CircuitBreaker}: its only one, or one key's. Counts consecutive
 * failed executions while closed, opens at `threshold`, lets one trial through after
 * `cooldown`, and, with `whenOpen: "wait"`, holds the executions that must wait, in order.
 *
 * Tickets make stale outcomes harmless: an execution admitted while closed carries the closed
 * period's number (`#epoch`, counted up each time the circuit closes), a trial its own number;
 * an outcome whose ticket is not the current period's, or not the running trial's, moves
 * nothing. Every change of state is complete (the trial marked running, the waiters released)
 * before `onStateChange` hears of it, so that a listener that starts an execution at once sees
 * the new state as it is: in `"half-open"` with its trial running, the listener's execution is
 * refused (or waits), never a second trial.
 *
 * Wait mode also holds the verdict on a failure that does not open the circuit (`#held`):
 * while other executions of the circuit run, one of them may yet bring the streak to
 * `threshold`, and then the held failures wait for the close and run again, like the failure
 * that opened it. A success (the streak is broken), the last running execution settling
 * without opening it (nothing can tip the verdict any more), or `maxWait` releases them as the
 * failures they are. Held failures exist only while the circuit is closed.
 *
 * Times are read on the monotonic clock. A timer is set only in wait mode, only while
 * executions wait: for the end of the cooldown (the first waiter becomes the trial) or the
 * first waiter's (or held failure's) `maxWait`, whichever is first; it is cleared when nobody
 * waits.
 * @internal
 */
export class Circuit implements KeyedState {
  readonly key: unknown;
  /** For the table of a keyed breaker: made or used since its sweep last looked. */
  recent = true;
  readonly #settings: CircuitSettings;
  #state: CircuitState = "closed";
  /** Consecutive failures while closed. */
  #failures = 0;
  /** The closed period's number: a ticket from an earlier one is stale. */
  #epoch = 0;
  /** The running trial's number (0: none), and the last number given. */
  #trial = 0;
  #trials = 0;
  #openedAt = 0;
  /** The failure that last opened the circuit (the `cause` of a `BrokenCircuitError`). */
  #lastFailure: unknown;
  /** Admitted executions not reported yet. */
  #running = 0;
  readonly #waiters = new Fifo<Waiter>();
  /** Wait mode: failures whose verdict is held, in the order they failed. */
  readonly #held = new Fifo<Waiter>();
  #timer: TimerHandle | undefined;
  #due = 0;

  constructor(key: unknown, settings: CircuitSettings) {
    this.key = key;
    this.#settings = settings;
  }

  get state(): CircuitState {
    return this.#state;
  }

  get lastFailure(): unknown {
    return this.#lastFailure;
  }

  /** Whether the circuit holds nothing worth keeping: closed, clean, nothing running or waiting. */
  get idle(): boolean {
    return (
      this.#state === "closed" &&
      this.#failures === 0 &&
      this.#running === 0 &&
      this.#waiters.size === 0 &&
      this.#held.size === 0
    );
  }

  /**
   * A ticket for an execution that may run now (counted as running until it is reported), or
   * {@link BLOCKED}. In wait mode, an execution arriving behind waiters is blocked too: it joins
   * them.
   */
  admit(): number {
    if (this.#state === "closed") {
      this.#running++;
      return this.#epoch;
    }
    if (this.#trial !== 0 || this.#waiters.size > 0) return BLOCKED;
    if (this.#state === "open") {
      if (clock() - this.#openedAt < this.#settings.cooldown) return BLOCKED;
      this.#state = "half-open";
      const ticket = this.#startTrial();
      this.#notify();
      return ticket;
    }
    // Half-open, its trial cancelled: this execution is the next trial.
    return this.#startTrial();
  }

  /**
   * The outcome of the execution holding `ticket`: a success, a failure (`error`), or neither
   * (`cancelled`); and what the execution must do now (see {@link Verdict}). In wait mode a
   * failure whose failure opened the circuit, one while it was open, and a failed trial run
   * again; a failure that does not open it is held while other executions run.
   */
  report(ticket: number, ok: boolean, error: unknown, cancelled: boolean): Verdict {
    this.#running--;
    if (ticket < 0) return this.#reportTrial(ok, error, cancelled);
    if (cancelled || (ok && (ticket !== this.#epoch || this.#state !== "closed"))) {
      return this.#settled();
    }
    if (ok) {
      // The streak is broken: what was held fails as it came.
      this.#failures = 0;
      this.#releaseHeld();
      return "done";
    }
    if (this.#state !== "closed") {
      // Admitted before the circuit opened: not counted; in wait mode, it waits for the close.
      return this.#settings.wait ? "again" : "done";
    }
    // Admitted in a closed period that has ended: not counted, but it may be held all the same.
    if (ticket !== this.#epoch) return this.#holdOrDone();
    this.#failures++;
    if (this.#failures < this.#settings.threshold) return this.#holdOrDone();
    this.#open(error);
    return this.#settings.wait ? "again" : "done";
  }

  /**
   * Wait mode: queues an execution until it may run. Resolves with its ticket (a trial's, or
   * the closed period's once the circuit closes), or {@link EXPIRED} after `maxWait`; rejects
   * with `signal.reason` when `signal` aborts first, having taken nothing.
   */
  wait(signal: AbortSignal | undefined): Promise<number> {
    return this.#enqueue(false, signal);
  }

  /**
   * Wait mode, right after {@link Circuit.report} said `"hold"`: holds the failed execution's
   * verdict. Resolves with {@link RELEASED} when the failure stands (a success broke the
   * streak, nothing else runs, or `maxWait` passed); if the circuit opens first, the execution
   * waits as {@link Circuit.wait}'s do, at the front (it failed first), and resolves as they do.
   * Rejects with `signal.reason` when `signal` aborts first.
   */
  hold(signal: AbortSignal | undefined): Promise<number> {
    return this.#enqueue(true, signal);
  }

  #enqueue(held: boolean, signal: AbortSignal | undefined): Promise<number> {
    return new Promise<number>((resolve, reject) => {
      const now = clock();
      const waiter: Waiter = {
        resolve,
        deadline: now + this.#settings.maxWait,
        subscription: undefined,
        node: undefined,
        held,
      };
      waiter.node = (held ? this.#held : this.#waiters).push(waiter);
      if (signal !== undefined) {
        waiter.subscription = whenAborted(signal, () => {
          this.#leave(waiter);
          reject(signal.reason);
        });
      }
      if (held) this.#arm(now);
      else this.#pump(now);
    });
  }

  /**
   * The running trial's outcome. There is one trial at a time, and while it runs nothing else
   * moves the state (the other executions' outcomes are stale, see {@link Circuit.report}):
   * so the trial's outcome moves the state it was admitted in, and no other.
   */
  #reportTrial(ok: boolean, error: unknown, cancelled: boolean): Verdict {
    this.#trial = 0;
    if (cancelled) {
      // The next execution is the trial: a waiting one at once.
      this.#pump(clock());
      return "done";
    }
    if (ok) {
      this.#close();
      return "done";
    }
    this.#open(error);
    return this.#settings.wait ? "again" : "done";
  }

  /**
   * A failure that does not open the circuit: in wait mode, held while other executions run
   * (one of them may yet open it); else it stands.
   */
  #holdOrDone(): Verdict {
    return this.#settings.wait && this.#running > 0 ? "hold" : this.#settled();
  }

  /** An outcome that stands. Once nothing runs, nothing can open the circuit: held failures stand too. */
  #settled(): Verdict {
    if (this.#running === 0 && this.#held.size > 0) this.#releaseHeld();
    return "done";
  }

  #releaseHeld(): void {
    const held = this.#held;
    if (held.size === 0) return;
    for (let first = held.first; first !== undefined; first = held.first) {
      this.#settle(first.value, RELEASED);
    }
    this.#arm(clock());
  }

  #startTrial(): number {
    this.#trial = ++this.#trials;
    this.#running++;
    return -this.#trial;
  }

  #open(error: unknown): void {
    this.#state = "open";
    this.#openedAt = clock();
    this.#lastFailure = error;
    // The held failures wait for the close and run again, first in the queue (it is empty
    // while the circuit is closed): they failed before the one that opened it.
    const held = this.#held;
    for (let first = held.first; first !== undefined; first = held.first) {
      const waiter = first.value;
      held.remove(first);
      waiter.held = false;
      waiter.node = this.#waiters.push(waiter);
    }
    this.#pump(this.#openedAt);
    this.#notify();
  }

  #close(): void {
    this.#state = "closed";
    this.#failures = 0;
    this.#epoch++;
    this.#lastFailure = undefined;
    this.#pump(clock()); // every waiter runs now, in the new closed period
    this.#notify();
  }

  /**
   * Wait mode: lets every waiter run when the circuit is closed; else fails the waiters whose
   * `maxWait` is up, lets the first one through as the trial when the circuit is due for one,
   * and sets the timer for what comes next (or clears it). Held failures whose `maxWait` is up
   * stand.
   */
  #pump(now: number): void {
    const waiters = this.#waiters;
    if (this.#state === "closed") {
      for (let first = waiters.first; first !== undefined; first = waiters.first) {
        this.#running++;
        this.#settle(first.value, this.#epoch);
      }
    }
    for (let first = waiters.first; first !== undefined && first.value.deadline <= now;) {
      this.#settle(first.value, EXPIRED);
      first = waiters.first;
    }
    const held = this.#held;
    for (let first = held.first; first !== undefined && first.value.deadline <= now;) {
      this.#settle(first.value, RELEASED);
      first = held.first;
    }
    const first = waiters.first;
    if (first !== undefined && this.#trial === 0) {
      const opened = this.#state === "open";
      if (!opened || now - this.#openedAt >= this.#settings.cooldown) {
        this.#state = "half-open";
        this.#settle(first.value, this.#startTrial());
        this.#arm(now);
        if (opened) this.#notify();
        return;
      }
    }
    this.#arm(now);
  }

  /** Takes `waiter` out of its queue and lets it go with `ticket`. */
  #settle(waiter: Waiter, ticket: number): void {
    this.#remove(waiter);
    waiter.subscription?.cancel();
    waiter.resolve(ticket);
  }

  #remove(waiter: Waiter): void {
    (waiter.held ? this.#held : this.#waiters).remove(waiter.node as FifoNode<Waiter>);
  }

  /**
   * Sets the timer for the end of the cooldown or the first waiter's or held failure's
   * `maxWait`, if any.
   */
  #arm(now: number): void {
    const first = this.#waiters.first;
    let due = this.#held.first?.value.deadline ?? Infinity;
    if (first !== undefined) {
      due = Math.min(due, first.value.deadline);
      if (this.#state === "open") due = Math.min(due, this.#openedAt + this.#settings.cooldown);
    }
    if (this.#timer !== undefined) {
      if (this.#due === due) return;
      stopTimer(this.#timer);
      this.#timer = undefined;
    }
    if (due === Infinity) return;
    this.#due = due;
    // Whole milliseconds, at least 1: a timer that fires a little before the clock says it is
    // due finds nothing to do and is set again.
    this.#timer = startTimer(Math.max(Math.ceil(due - now), 1), () => {
      this.#timer = undefined;
      this.#pump(clock());
    });
  }

  #leave(waiter: Waiter): void {
    this.#remove(waiter);
    this.#arm(clock());
  }

  /**
   * Tells `onStateChange` of the state the circuit just moved to, once everything else is set:
   * always the last step of a change, so that a listener that starts an execution sees the
   * circuit as it is.
   */
  #notify(): void {
    const listener = this.#settings.onStateChange;
    if (listener === undefined) return;
    const state = this.#state;
    callIgnoringErrors(() => listener(state, this.key));
  }
}
