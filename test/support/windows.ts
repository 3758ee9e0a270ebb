/** Helpers about sliding windows of starts, shared by the rate limiter's test files. */

/** One start, as a test saw it: when (ms), and what it cost. */
export interface Start {
  readonly at: number;
  readonly cost: number;
}

/**
 * The most cost started within any window of `interval` ms (half-open, as the limiter counts:
 * a start `interval` ms after another is in a new window).
 */
export function busiestWindow(starts: readonly Start[], interval: number): number {
  let most = 0;
  for (const first of starts) {
    let sum = 0;
    for (const other of starts) {
      if (other.at >= first.at && other.at < first.at + interval) sum += other.cost;
    }
    most = Math.max(most, sum);
  }
  return most;
}
