/**
 * Timers that work for any duration and that a user's fake timers can drive.
 *
 * `setTimeout` clamps a delay above 2^31 − 1 ms to 1 ms (it would fire at once), so a longer
 * duration is served as a chain of maximal timers. The global `setTimeout`/`clearTimeout` are
 * looked up on every call, never captured at import, so vitest, jest or sinon fake timers
 * installed after import drive them.
 */

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
