/**
 * The library's clock for intervals: milliseconds from `performance.now()`, which never goes
 * back when the wall clock is stepped (NTP, a restored VM), unlike `Date.now()`. Looked up on
 * every call, never captured at import, so fake timers installed later (vitest's drive
 * `performance.now()` too) drive it.
 */
export function now(): number {
  return globalThis.performance.now();
}
