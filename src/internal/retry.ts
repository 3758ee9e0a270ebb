import type { OnRetry, ShouldRetry } from "../types.js";
import type { DelayPolicy } from "./backoff.js";
import {
  nonNegativeDuration,
  nonNegativeInteger,
  oneOf,
  optionalBoolean,
  optionalFunction,
} from "./validate.js";

/**
 * After a failed attempt that will be retried, the wait before the next one in ms, or
 * `undefined` for the backoff: the `retryAfter` option (validated where it is used).
 */
export type RetryAfterFunction = (error: unknown, attempt: number) => unknown;

/** Everything the retry loop needs, validated. Shared by `Stage` and `retryMiddleware`. */
export interface RetryPolicy extends DelayPolicy {
  readonly retries: number;
  readonly shouldRetry: ShouldRetry | undefined;
  readonly onRetry: OnRetry | undefined;
  readonly retryAfter: RetryAfterFunction | undefined;
}

/** Raw retry settings, as the user gave them, under the names `Stage` uses. */
export interface RetrySettings {
  retries?: unknown;
  retryDelay?: unknown;
  backoff?: unknown;
  maxRetryDelay?: unknown;
  jitter?: unknown;
  shouldRetry?: unknown;
  onRetry?: unknown;
  retryAfter?: unknown;
}

/**
 * Validates retry settings into a frozen policy, with defaults. `labels` renames options in
 * error messages for an API that spells them differently (`retryMiddleware`'s `delay`).
 */
export function retryPolicy(
  settings: RetrySettings,
  labels: Partial<Record<keyof RetrySettings, string>> = {},
): RetryPolicy {
  const label = (key: keyof RetrySettings): string => labels[key] ?? key;
  const { retries, retryDelay, maxRetryDelay } = settings;
  return Object.freeze({
    retries: retries === undefined ? 0 : nonNegativeInteger(label("retries"), retries),
    retryDelay: retryDelay === undefined ? 0 : nonNegativeDuration(label("retryDelay"), retryDelay),
    backoff: oneOf(label("backoff"), settings.backoff, ["fixed", "exponential"], "fixed"),
    maxRetryDelay:
      maxRetryDelay === undefined
        ? undefined
        : nonNegativeDuration(label("maxRetryDelay"), maxRetryDelay),
    jitter: optionalBoolean(label("jitter"), settings.jitter, false),
    shouldRetry: optionalFunction(label("shouldRetry"), settings.shouldRetry as ShouldRetry),
    onRetry: optionalFunction(label("onRetry"), settings.onRetry as OnRetry),
    retryAfter: optionalFunction(label("retryAfter"), settings.retryAfter as RetryAfterFunction),
  });
}
