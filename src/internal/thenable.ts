/** True when `value` has a callable `then`: a promise or any other thenable. */
export function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    value !== null &&
    (typeof value === "object" || typeof value === "function") &&
    typeof (value as { then?: unknown }).then === "function"
  );
}

/** Does nothing; used to mark a promise's rejection as handled. */
export function noop(): void {
  // Intentionally empty.
}

/**
 * For a thenable `result`, a promise that settles when it does and never rejects (its
 * rejection handled); `undefined` for any other value, so that the caller awaits nothing.
 */
export function handled(result: unknown): PromiseLike<unknown> | undefined {
  return isThenable(result) ? Promise.resolve(result).then(noop, noop) : undefined;
}

/**
 * Calls `callback`, ignoring whatever it throws or rejects with. Returns the callback's
 * promise (already guarded) when it returned one, so the caller can await it.
 */
export function callIgnoringErrors(callback: () => unknown): PromiseLike<unknown> | undefined {
  try {
    return handled(callback());
  } catch {
    return undefined; // A callback's failure is documented as ignored.
  }
}
