import { throwIfAborted, untilAborted } from "./abort.js";
import type { RetryEvent } from "../types.js";
import { retryDelayFor, type DelayPolicy } from "./backoff.js";
import { delay } from "./delay.js";
import { retryAfterWait, type RetryAfter } from "./backoff.js";
import type { OptionKeys } from "./known-keys.js";
import { callIgnoringErrors } from "./thenable.js";
import {
  nonNegativeDuration,
  nonNegativeInteger,
  oneOf,
  optionalBoolean,
  optionalFunction,
} from "./validate.js";

/** Decides whether a failed attempt is retried; see `StageOptions.shouldRetry`. */
export type ShouldRetry = (error: unknown, attempt: number) => boolean | PromiseLike<boolean>;

/** Told about each retry before its wait; see `StageOptions.onRetry`. */
export type OnRetry = (event: RetryEvent) => unknown;

/** Everything the retry loop needs, validated. Shared by `Stage` and `retryMiddleware`. */
export interface RetryPolicy extends DelayPolicy {
  readonly retries: number;
  readonly shouldRetry: ShouldRetry | undefined;
  readonly onRetry: OnRetry | undefined;
  readonly retryAfter: RetryAfter | undefined;
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
 * The keys of {@link RetrySettings}, shared by the option-key lists of `Stage` and
 * `retryMiddleware`: a new retry option goes here, and both take it.
 */
export const retrySettingKeys = {
  retries: true,
  retryDelay: true,
  backoff: true,
  maxRetryDelay: true,
  jitter: true,
  shouldRetry: true,
  onRetry: true,
  retryAfter: true,
} as const satisfies OptionKeys<RetrySettings>;

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
    retryAfter: optionalFunction(label("retryAfter"), settings.retryAfter as RetryAfter),
  });
}

/**
 * Runs `attempt(n)` for n = 1, 2, … until one succeeds or the policy gives up.
 *
 * - When `signal` aborts, nothing further starts, a wait is cut short, and the loop rejects
 *   with `signal.reason` (cancellation is never retried nor wrapped).
 * - When the attempts are used up, or `shouldRetry` says no (or throws), the loop rejects with
 *   `fail(lastError, attemptsMade)`.
 * - `failedFirst`, when given (the caller ran attempt 1 itself, and it failed with
 *   `failedFirst.error`), skips attempt 1 and goes straight to deciding on a retry.
 */
export async function retry<T>(
  attempt: (attempt: number) => T | PromiseLike<T>,
  policy: RetryPolicy,
  stageName: string,
  signal: AbortSignal | undefined,
  fail: (error: unknown, attempts: number) => unknown,
  failedFirst?: { readonly error: unknown },
): Promise<T> {
  for (let number = 1; ; number++) {
    let error: unknown;
    if (number === 1 && failedFirst !== undefined) {
      error = failedFirst.error;
    } else {
      throwIfAborted(signal);
      try {
        return await attempt(number);
      } catch (caught) {
        error = caught;
      }
    }
    throwIfAborted(signal);
    let again = number <= policy.retries;
    if (again && policy.shouldRetry !== undefined) {
      // Only a verdict to wait for is raced against the signal: no shouldRetry, no race.
      again = await untilAborted(allowsRetry(policy.shouldRetry, error, number), signal);
      // Cancellation wins over the verdict: the signal may have aborted while it was awaited.
      throwIfAborted(signal);
    }
    if (!again) throw fail(error, number);
    const { retryAfter } = policy;
    const wait =
      retryAfter === undefined
        ? retryDelayFor(policy, number)
        : retryAfterWait(retryAfter, policy, error, number, fail);
    const { onRetry } = policy;
    if (onRetry !== undefined) {
      const event: RetryEvent = Object.freeze({ stageName, error, attempt: number, delay: wait });
      callIgnoringErrors(() => onRetry(event));
    }
    if (wait > 0) await delay(wait, signal);
  }
}

async function allowsRetry(
  shouldRetry: ShouldRetry,
  error: unknown,
  attempt: number,
): Promise<boolean> {
  try {
    const verdict: unknown = await shouldRetry(error, attempt);
    return verdict !== false;
  } catch {
    return false;
  }
}
