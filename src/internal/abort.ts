/**
 * Throws `signal.reason` when `signal` has aborted: how every loop honours cancellation
 * ("no further attempt, stage or item starts"). A function, not an inline check, because
 * `aborted` changes between awaits.
 */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted === true) throw signal.reason;
}

/**
 * `promise`, or a rejection with `signal.reason` as soon as `signal` aborts first. The
 * listener is removed when `promise` settles, and `promise`'s own rejection is handled even
 * when it loses the race.
 */
export function untilAborted<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (signal === undefined) return promise;
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => {
      reject(signal.reason);
    };
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener("abort", onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(error);
      },
    );
  });
}
