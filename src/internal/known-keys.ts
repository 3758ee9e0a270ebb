/**
 * Unknown option keys: `new Stage(name, handler, { retry: 3 })` is a typo that JavaScript (and a
 * cast in TypeScript) would otherwise let through silently. Each options type keeps the list of
 * its keys next to it, as an {@link OptionKeys} record that TypeScript checks against the type,
 * so that adding an option is one line there, and forgetting that line fails the typecheck.
 * What a message may suggest beyond the close known keys ({@link KeyHints}: aliases, sibling
 * forms, the path of a nested object) is data the caller passes; option-hints.ts holds the
 * aliases of each form.
 */

/**
 * Every key of the options type `T`, each mapped to `true`. Written as
 * `{ timeout: true, … } satisfies OptionKeys<StageOptions>`, it must name every option of
 * `T` and nothing else.
 */
export type OptionKeys<T> = { readonly [K in keyof Required<T>]: true };

/**
 * What the message for an unknown key may suggest, beyond the known keys that are close to it.
 * Every field is optional, and none costs anything until a key is unknown.
 *
 * @example
 * ```ts
 * rejectUnknownKeys(options, mapOptionKeys, {
 *   form: "map",
 *   aliases: { limit: "concurrency" },
 *   siblings: { stream: streamOptionKeys },
 * });
 * // { ordered: false } → unknown option "ordered" ("ordered" is an option of stream, not map)
 * ```
 */
export interface KeyHints {
  /**
   * The name of the form whose options these are (`"map"`, `"Stage"`), said after a sibling's
   * name: `"ordered" is an option of stream, not map`.
   * @default none: `"ordered" is an option of stream`
   */
  readonly form?: string | undefined;
  /**
   * The option path of a nested options object, with its dot (`"perKey."`, `"rateLimit."`):
   * the message names the key with it, and so does the suggestion
   * (`unknown option "perKey.max" (did you mean "perKey.concurrency"?)`).
   * @default ""
   */
  readonly prefix?: string | undefined;
  /**
   * Names users bring from elsewhere (another library, a former name), each mapped to the known
   * key it means: `{ delay: "retryDelay" }`. Matched ignoring case; an alias whose target
   * `known` does not list is ignored.
   * @default {}
   */
  readonly aliases?: Readonly<Record<string, string>> | undefined;
  /**
   * Related forms that take options of their own, by name, each with its key record:
   * `{ stream: streamOptionKeys }`. A key that one of them lists (or nearly: a typo of it) is
   * said to be that form's option.
   * @default {}
   */
  readonly siblings?: Readonly<Record<string, object>> | undefined;
}

const NO_HINTS: KeyHints = {};

/**
 * Throws a `TypeError` for the first own enumerable string key of `options` that `known` does
 * not list: `unknown option "retry" (did you mean "retries"?)`, with the suggestion
 * {@link unknownKeyMessage} finds. Without `hints`, the suggestion is a known key close enough
 * to be the one meant.
 */
export function rejectUnknownKeys(
  options: object,
  known: object,
  hints: KeyHints = NO_HINTS,
): void {
  // for…in rather than Object.keys: no array allocated per call (run options are checked on
  // every run).
  for (const key in options) {
    if (!Object.hasOwn(options, key) || Object.hasOwn(known, key)) continue;
    throw new TypeError(unknownKeyMessage(key, known, hints));
  }
}

/**
 * The message for the unknown key `key`, named with `hints.prefix`. The suggestion is the first
 * of: the known key that `key` is an alias of; the sibling form that takes `key`; the known key
 * that `key` most likely misspells ({@link closest}); the sibling form's key that it most likely
 * misspells; none.
 */
export function unknownKeyMessage(key: string, known: object, hints: KeyHints = NO_HINTS): string {
  const prefix = hints.prefix ?? "";
  return `unknown option ${JSON.stringify(prefix + key)}${suggestion(key, known, hints, prefix)}`;
}

function suggestion(key: string, known: object, hints: KeyHints, prefix: string): string {
  const meant = (target: string): string => ` (did you mean ${JSON.stringify(prefix + target)}?)`;
  const alias = aliasOf(key, known, hints.aliases);
  if (alias !== undefined) return meant(alias);
  const siblings = Object.entries(hints.siblings ?? {});
  const not = hints.form === undefined ? "" : `, not ${hints.form}`;
  for (const [form, keys] of siblings) {
    if (Object.hasOwn(keys, key)) return ` (${JSON.stringify(key)} is an option of ${form}${not})`;
  }
  const near = closest(key, Object.keys(known));
  if (near !== undefined) return meant(near);
  for (const [form, keys] of siblings) {
    const theirs = closest(
      key,
      Object.keys(keys).filter((candidate) => !Object.hasOwn(known, candidate)),
    );
    if (theirs !== undefined) {
      const quoted = JSON.stringify(theirs);
      return ` (did you mean ${quoted}? ${quoted} is an option of ${form}${not})`;
    }
  }
  return "";
}

/** The known key that `key` is an alias of (ignoring case), if any. */
function aliasOf(
  key: string,
  known: object,
  aliases: Readonly<Record<string, string>> | undefined,
): string | undefined {
  if (aliases === undefined) return undefined;
  const lower = key.toLowerCase();
  for (const [alias, target] of Object.entries(aliases)) {
    if (alias.toLowerCase() === lower && Object.hasOwn(known, target)) return target;
  }
  return undefined;
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
