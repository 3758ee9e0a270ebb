/**
 * The clock the library measures intervals on: milliseconds that never go back.
 *
 * `Date.now()` follows the wall clock, which NTP, a user or a restored VM may step back or
 * forward: an interval measured on it can come out negative or hours too long. `performance.now()`
 * is monotonic, and fake timers (vitest, jest, sinon) drive it as they drive `setTimeout`. It is
 * read through `globalThis` at each call, never captured at import, so that fake timers installed
 * after import are seen.
 */

/** Milliseconds on a monotonic clock (`performance.now()`): only differences mean anything. */
export function now(): number {
  return globalThis.performance.now();
}
