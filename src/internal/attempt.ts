import { TimeoutError } from "../errors/TimeoutError.js";
import { isThenable } from "./thenable.js";
import { startTimer, stopTimer, type TimerHandle } from "./timers.js";

/**
 * Runs one attempt under a timeout and/or the caller's signal.
 *
 * - `invoke` gets the signal the work should watch: a fresh controller's signal when a timeout
 *   is set and `deriveSignal` is true (it aborts on timeout or when `signal` aborts), else
 *   `signal` itself. `invoke` may throw: nothing is set up before it returns.
 * - A synchronous result is returned as is: it is never timed out.
 * - A promise result is raced against the timer (rejecting with {@link TimeoutError}) and,
 *   when `race` is true or a timeout is set, against `signal` (rejecting with its reason).
 * - The losing promise is abandoned with a rejection handler attached, and the timer and the
 *   listener are removed whichever way the attempt settles.
 *
 * Callers come here only with something to guard (a timeout, or a signal to race): the plain
 * call is theirs to make, so that it allocates nothing.
 */
export function guardAttempt<T>(
  invoke: (signal: AbortSignal | undefined) => T | PromiseLike<T>,
  name: string,
  timeout: number | undefined,
  signal: AbortSignal | undefined,
  race: boolean,
  deriveSignal: boolean,
): T | Promise<T> {
  const controller = timeout !== undefined && deriveSignal ? new AbortController() : undefined;
  const result = invoke(controller === undefined ? signal : controller.signal);
  if (!isThenable(result)) return result;
  const watchSignal = signal !== undefined && (race || timeout !== undefined);

  return new Promise<T>((resolve, reject) => {
    let settled = false;
    let timer: TimerHandle | undefined;
    const finish = (): boolean => {
      if (settled) return false;
      settled = true;
      if (timer !== undefined) stopTimer(timer);
      if (watchSignal) signal.removeEventListener("abort", onAbort);
      return true;
    };
    // One listener does both jobs: abort the attempt's own signal and lose the race.
    const onAbort = (): void => {
      if (!finish()) return;
      const reason: unknown = signal?.reason;
      controller?.abort(reason);
      reject(reason);
    };
    if (timeout !== undefined) {
      timer = startTimer(timeout, () => {
        if (!finish()) return;
        const error = new TimeoutError(name, timeout);
        controller?.abort(error);
        reject(error);
      });
    }
    if (watchSignal && !signal.aborted) signal.addEventListener("abort", onAbort, { once: true });
    // Subscribed before an already-aborted signal is acted on, so that the work's rejection is
    // handled whatever wins the race. A thenable that settles inside `then` clears the timer
    // and the listener through `finish`.
    try {
      result.then(
        (value) => {
          if (finish()) resolve(value);
        },
        (error: unknown) => {
          if (finish()) reject(error);
        },
      );
    } catch (error) {
      if (finish()) reject(error);
    }
    if (watchSignal && signal.aborted) onAbort();
  });
}
