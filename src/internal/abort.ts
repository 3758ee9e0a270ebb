/**
 * Throws `signal.reason` when `signal` has aborted: how every loop honours cancellation
 * ("no further attempt, stage or item starts"). A function, not an inline check, because
 * `aborted` changes between awaits.
 */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted === true) throw signal.reason;
}
