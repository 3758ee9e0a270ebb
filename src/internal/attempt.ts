import { TimeoutError } from "../errors/TimeoutError.js";
import { whenAborted, type Subscription } from "./abort.js";
import type { AttemptCall } from "./call.js";
import { isThenable } from "./thenable.js";
import { startTimer, stopTimer, type TimerHandle } from "./timers.js";

/**
 * Guards one attempt's `result` (what the handler returned) with a timeout and/or a race
 * against the caller's signal.
 *
 * - A synchronous result is returned as is: it is never timed out.
 * - A promise result is raced against the timer (rejecting with {@link TimeoutError}) when
 *   `timeout` is set, and against `signal` (rejecting with its reason) when `race` is true or
 *   a timer is set (so that the timer goes when the run or batch is cancelled). The signal is
 *   watched through the signal registry: no listener of its own per attempt.
 * - `call`, the attempt's {@link AttemptCall} when the handler got one, is ended when the
 *   attempt settles, or aborted with the reason it lost to.
 * - The losing promise is abandoned with a rejection handler attached, and the timer and the
 *   subscription are removed whichever way the attempt settles. The returned promise settles
 *   once.
 *
 * Callers come here only with something to guard (a timeout, or a signal to race): the plain
 * call is theirs to make, so that it allocates nothing.
 */
export function guardAttempt<T>(
  result: T | PromiseLike<T>,
  name: string,
  timeout: number | undefined,
  signal: AbortSignal | undefined,
  race: boolean,
  call: AttemptCall | undefined,
): T | Promise<T> {
  if (!isThenable(result)) {
    call?.end();
    return result;
  }
  return new Promise<T>((resolve, reject) => {
    let settled = false;
    let timer: TimerHandle | undefined;
    let subscription: Subscription | undefined;
    const finish = (): boolean => {
      if (settled) return false;
      settled = true;
      if (timer !== undefined) stopTimer(timer);
      subscription?.cancel();
      return true;
    };
    const lose = (reason: unknown): void => {
      if (!finish()) return;
      call?.abort(reason);
      reject(reason);
    };
    if (timeout !== undefined) {
      timer = startTimer(timeout, () => {
        lose(new TimeoutError(name, timeout));
      });
    }
    // Subscribed before an already-aborted signal is acted on, so that the work's rejection is
    // handled whatever wins the race. A thenable that settles inside `then` clears the timer
    // through `finish`.
    try {
      result.then(
        (value) => {
          if (!finish()) return;
          call?.end();
          resolve(value);
        },
        (error: unknown) => {
          if (!finish()) return;
          call?.end();
          reject(error);
        },
      );
    } catch (error) {
      if (finish()) {
        call?.end();
        reject(error);
      }
    }
    // Also without `race`: an abandoned attempt (its batch stopped) must clear its timer.
    // `settled` is set already when a thenable settled inside `then`.
    // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition
    if (signal !== undefined && (race || timer !== undefined) && !settled) {
      subscription = whenAborted(signal, () => {
        lose(signal.reason);
      });
    }
  });
}
