import type { Backoff } from "../types.js";

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
