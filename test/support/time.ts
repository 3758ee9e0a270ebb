/** Helpers that wait, on real or fake timers, shared by the test files. */

/** The real `setImmediate`, captured before any test installs fake timers. */
const realSetImmediate = globalThis.setImmediate;

/** Resolves after `ms` on the current `setTimeout` (fake timers, when a test installed them). */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => {
    setTimeout(resolve, ms);
  });
}

/** Lets every pending microtask run, and one real macrotask turn. Works under fake timers. */
export function flush(): Promise<void> {
  return new Promise((resolve) => realSetImmediate(resolve));
}
