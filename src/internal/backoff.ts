import type { Backoff } from "../types.js";
import { show } from "./validate.js";

/** The delay settings shared by a stage's retries and `retryMiddleware`. */
export interface DelayPolicy {
  readonly retryDelay: number;
  readonly backoff: Backoff;
  readonly maxRetryDelay: number | undefined;
  readonly jitter: boolean;
}

/**
 * The wait after failure number `failure` (1 for the first): the base delay, doubled per
 * earlier failure when exponential, capped by `maxRetryDelay`, then drawn uniformly from
 * [0, capped] when `jitter` is on ("full jitter").
 */
export function retryDelayFor(policy: DelayPolicy, failure: number): number {
  if (policy.retryDelay === 0) return 0;
  let wait =
    policy.backoff === "exponential" ? policy.retryDelay * 2 ** (failure - 1) : policy.retryDelay;
  if (policy.maxRetryDelay !== undefined && wait > policy.maxRetryDelay)
    wait = policy.maxRetryDelay;
  return policy.jitter ? Math.random() * wait : wait;
}

/**
 * The wait after failed attempt `attempt`: what `retryAfter` says (capped by
 * `maxRetryDelay`, never jittered), or the backoff when it says `undefined`. A number ≥ 0 is
 * used as it is, `Infinity` included when `maxRetryDelay` caps it. When `retryAfter` throws or
 * returns anything else (a negative number, `NaN`, `Infinity` with no cap, not a number),
 * throws `fail(problem, attempt)`, the problem a `TypeError` or `RangeError` whose `cause` is
 * what `retryAfter` threw, or else the attempt's error. With `told`, tells whether
 * `retryAfter` returned a number: `told.said` is set to it (before the cap); it is left alone
 * otherwise. Adaptive limits count that as an overload.
 */
export function retryAfterWait(
  retryAfter: (error: unknown, attempt: number) => unknown,
  policy: DelayPolicy,
  error: unknown,
  attempt: number,
  fail: (error: unknown, attempts: number) => unknown,
  told?: { said: number | undefined },
): number {
  let wait: unknown;
  try {
    wait = retryAfter(error, attempt);
  } catch (thrown) {
    throw fail(new TypeError(`retryAfter threw: ${describe(thrown)}`, { cause: thrown }), attempt);
  }
  if (wait === undefined) return retryDelayFor(policy, attempt);
  if (typeof wait !== "number") {
    throw fail(
      new TypeError(`retryAfter must return a number of ms or undefined, got ${show(wait)}`, {
        cause: error,
      }),
      attempt,
    );
  }
  const cap = policy.maxRetryDelay;
  if (!(wait >= 0)) {
    throw fail(
      new RangeError(`retryAfter must return a number ≥ 0 or undefined, got ${show(wait)}`, {
        cause: error,
      }),
      attempt,
    );
  }
  if (wait === Infinity && cap === undefined) {
    throw fail(
      new RangeError(
        "retryAfter returned Infinity and there is no maxRetryDelay to cap it: set maxRetryDelay, or return a finite number",
        { cause: error },
      ),
      attempt,
    );
  }
  if (told !== undefined) told.said = wait;
  return cap !== undefined && wait > cap ? cap : wait;
}

function describe(thrown: unknown): string {
  try {
    return thrown instanceof Error ? thrown.message : String(thrown);
  } catch {
    return "(a value that cannot be described)";
  }
}
