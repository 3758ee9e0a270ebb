/**
 * Virtual time outside vitest, for the bench's simulations (vitest's fake timers work only in
 * a vitest run): installs a `setTimeout`, `clearTimeout`, `performance.now()` and `Date.now()`
 * of its own on the global object, and {@link VirtualClock.advance} runs the due timers in
 * order, letting promise reactions settle after each one as vitest's `advanceTimersByTimeAsync`
 * does. Timers due at the same time run in the order they were set, and a delay counts in
 * whole ms, as there, so a simulation gives the same figures in a test and in the bench.
 */

interface Timer {
  readonly id: number;
  readonly at: number;
  readonly callback: () => void;
}

/** The real `setImmediate`, taken before anything is replaced. */
const realSetImmediate = globalThis.setImmediate;

function nextMacrotask(): Promise<void> {
  return new Promise((resolve) => realSetImmediate(resolve));
}

export class VirtualClock {
  #now = 0;
  #nextId = 1;
  readonly #timers = new Map<number, Timer>();
  #restore: (() => void) | undefined;

  /** The virtual time, ms. */
  get now(): number {
    return this.#now;
  }

  /** Replaces the global timers and clocks with this clock's until {@link uninstall}. */
  install(): void {
    if (this.#restore !== undefined) return;
    const { setTimeout, clearTimeout } = globalThis;
    const dateNow = Date.now;
    const performance = globalThis.performance;
    const setTimeoutVirtual = (callback: () => void, delay?: number): number => {
      const id = this.#nextId++;
      const ms = Math.max(0, Math.floor(Number(delay) || 0));
      this.#timers.set(id, { id, at: this.#now + ms, callback });
      return id;
    };
    const clearTimeoutVirtual = (id: unknown): void => {
      this.#timers.delete(id as number);
    };
    globalThis.setTimeout = setTimeoutVirtual as unknown as typeof setTimeout;
    globalThis.clearTimeout = clearTimeoutVirtual;
    Date.now = () => this.#now;
    Object.defineProperty(performance, "now", { value: () => this.#now, configurable: true });
    this.#restore = () => {
      globalThis.setTimeout = setTimeout;
      globalThis.clearTimeout = clearTimeout;
      Date.now = dateNow;
      delete (performance as { now?: unknown }).now;
    };
  }

  /** Puts the real timers and clocks back. */
  uninstall(): void {
    this.#restore?.();
    this.#restore = undefined;
  }

  /** Runs every timer due within `ms` from now, in order, then moves the clock to that time. */
  async advance(ms: number): Promise<void> {
    const end = this.#now + ms;
    await nextMacrotask();
    for (;;) {
      const timer = this.#first(end);
      if (timer === undefined) break;
      this.#timers.delete(timer.id);
      this.#now = timer.at;
      timer.callback();
      await nextMacrotask();
    }
    this.#now = end;
  }

  /** The earliest timer due by `end`: a scan, fine for the few timers a simulation keeps. */
  #first(end: number): Timer | undefined {
    let first: Timer | undefined;
    for (const timer of this.#timers.values()) {
      if (timer.at > end) continue;
      if (
        first === undefined ||
        timer.at < first.at ||
        (timer.at === first.at && timer.id < first.id)
      ) {
        first = timer;
      }
    }
    return first;
  }
}
