import { whenAborted } from "./abort.js";
import { startTimer, stopTimer } from "./timers.js";

/**
 * Waits `ms` milliseconds, or rejects with `signal.reason` as soon as `signal` aborts (at once
 * when it already has). Leaves no timer and no subscription behind either way. `ms` must be
 * greater than 0: a zero delay is the caller's to skip, so that it sets no timer at all.
 */
export function delay(ms: number, signal: AbortSignal | undefined): Promise<void> {
  if (signal?.aborted === true) return Promise.reject(signal.reason as Error);
  return new Promise<void>((resolve, reject) => {
    const timer = startTimer(ms, () => {
      subscription?.cancel();
      resolve();
    });
    const subscription =
      signal === undefined
        ? undefined
        : whenAborted(signal, () => {
            stopTimer(timer);
            reject(signal.reason as Error);
          });
  });
}
