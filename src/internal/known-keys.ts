/**
 * Unknown option keys: `new Stage(name, handler, { retry: 3 })` is a typo that JavaScript (and a
 * cast in TypeScript) would otherwise let through silently. Each options type keeps the list of
 * its keys next to it, as an {@link OptionKeys} record that TypeScript checks against the type,
 * so that adding an option is one line there, and forgetting that line fails the typecheck.
 */

/**
 * Every key of the options type `T`, each mapped to `true`. Written as
 * `{ timeout: true, … } satisfies OptionKeys<StageOptions>`, it must name every option of
 * `T` and nothing else.
 */
export type OptionKeys<T> = { readonly [K in keyof Required<T>]: true };

/**
 * Throws a `TypeError` for the first own enumerable string key of `options` that `known` does
 * not list: `unknown option "retry" (did you mean "retries"?)`, the suggestion given when a
 * known key is close enough to be the one meant.
 */
export function rejectUnknownKeys(options: object, known: object): void {
  // for…in rather than Object.keys: no array allocated per call (run options are checked on
  // every run).
  for (const key in options) {
    if (!Object.hasOwn(options, key) || Object.hasOwn(known, key)) continue;
    const meant = closest(key, Object.keys(known));
    const hint = meant === undefined ? "" : ` (did you mean ${JSON.stringify(meant)}?)`;
    throw new TypeError(`unknown option ${JSON.stringify(key)}${hint}`);
  }
}

/**
 * The candidate that `word` most likely misspells, if any. Candidates within
 * `⌊0.4 × length⌋ + 1` edits of `word` (ignoring case) qualify; of those, the one that shares
 * the longest start with it wins (typos rarely hit the start of a word: `"retry"` means
 * `"retries"`, 3 edits away, rather than `"onRetry"`, 2 away), then the nearest, then the first.
 */
export function closest(word: string, candidates: readonly string[]): string | undefined {
  const lower = word.toLowerCase();
  const bound = Math.floor(word.length * 0.4) + 1;
  let best: string | undefined;
  let bestPrefix = -1;
  let bestDistance = Infinity;
  for (const candidate of candidates) {
    const other = candidate.toLowerCase();
    const distance = editDistance(lower, other);
    if (distance > bound) continue;
    const prefix = commonPrefix(lower, other);
    if (prefix > bestPrefix || (prefix === bestPrefix && distance < bestDistance)) {
      best = candidate;
      bestPrefix = prefix;
      bestDistance = distance;
    }
  }
  return best;
}

function commonPrefix(a: string, b: string): number {
  let length = 0;
  while (length < a.length && a[length] === b[length]) length++;
  return length;
}

/**
 * Edits (insert, delete, substitute, swap two neighbours) that turn `a` into `b`: the optimal
 * string alignment distance, so that `"reties"` is 1 from `"retries"` and `"retires"` 1 too.
 */
export function editDistance(a: string, b: string): number {
  // Three rows of the dynamic-programming table: two back (for a swap), one back, this one.
  let before: number[] = [];
  let previous = Array.from({ length: b.length + 1 }, (_, index) => index);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let distance = Math.min(
        (previous[j] as number) + 1,
        (current[j - 1] as number) + 1,
        (previous[j - 1] as number) + cost,
      );
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        distance = Math.min(distance, (before[j - 2] as number) + 1);
      }
      current.push(distance);
    }
    before = previous;
    previous = current;
  }
  return previous[b.length] as number;
}
