import { MAX_TIMER_DELAY } from "../internal/timers.js";

/**
 * The `retryAfter` stage option: after a failed attempt that will be retried, returns the
 * wait before the next attempt in ms (a number ≥ 0), in place of the backoff, or `undefined`
 * for the usual backoff. `attempt` is the attempt that failed, from 1. `Infinity` is capped by
 * `maxRetryDelay` when one is set, and is a `RangeError` without one.
 *
 * @default undefined (the backoff decides)
 * @example
 * ```ts
 * import { parseRetryAfter, type RetryAfter } from "async-pipeline";
 *
 * class HttpError extends Error {
 *   constructor(readonly response: Response) {
 *     super(`HTTP ${response.status}`);
 *   }
 * }
 * const fromHeader: RetryAfter = (error) =>
 *   error instanceof HttpError ? parseRetryAfter(error.response.headers.get("retry-after")) : undefined;
 * ```
 */
export type RetryAfter = (error: unknown, attempt: number) => number | undefined;

/** `Sun, 06 Nov 1994 08:49:37 GMT` (IMF-fixdate, the form servers send). */
const IMF_FIXDATE =
  /^(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT$/;
/** `Sunday, 06-Nov-94 08:49:37 GMT` (obsolete RFC 850 form). */
const RFC_850 =
  /^(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday), (\d{2})-([A-Z][a-z]{2})-(\d{2}) (\d{2}:\d{2}:\d{2}) GMT$/;
/** `Sun Nov  6 08:49:37 1994` (obsolete asctime form, always GMT). */
const ASCTIME =
  /^(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) ([A-Z][a-z]{2}) ([ \d]\d) (\d{2}:\d{2}:\d{2}) (\d{4})$/;

/**
 * Turns an HTTP `Retry-After` header value into milliseconds to wait: delay-seconds
 * (`"120"` → 120000) or an HTTP date (`"Wed, 21 Oct 2026 07:28:00 GMT"` → the time until
 * then, 0 when it has passed; the obsolete RFC 850 and asctime forms are read too). Returns
 * `undefined` for a missing header (`null`, `undefined`) and for anything it cannot read
 * (negative or fractional seconds, a malformed date), so that the result can be returned
 * from `retryAfter` as it is: `undefined` means "use the usual backoff".
 *
 * The result is never more than 2^31 − 1 ms (about 24.8 days, the longest `setTimeout`
 * delay): a header asking for longer, however absurd (`"9".repeat(400)` seconds, a date in the
 * year 9999), gives that cap, never `Infinity`. A server that says "not for a very long time"
 * is taken at its word rather than retried at once; give the stage a `maxRetryDelay` to wait
 * less than the cap.
 *
 * @param value - the header's value, e.g. `response.headers.get("retry-after")`
 * @param now - the time to count from, in ms since the epoch
 * @default now: Date.now()
 * @returns milliseconds from 0 to 2^31 − 1, or `undefined`
 * @example
 * ```ts
 * import { parseRetryAfter } from "async-pipeline";
 *
 * parseRetryAfter("3"); // 3000
 * parseRetryAfter(new Date(Date.now() + 5_000).toUTCString()); // about 5000
 * parseRetryAfter("soon"); // undefined
 * parseRetryAfter("9".repeat(400)); // 2147483647: the cap
 * parseRetryAfter(null); // undefined
 * ```
 */
export function parseRetryAfter(
  value: string | null | undefined,
  now: number = Date.now(),
): number | undefined {
  if (typeof value !== "string") return undefined;
  const text = value.trim();
  if (/^\d+$/.test(text)) return capped(Number(text) * 1_000);
  const date = httpDate(text, now);
  if (date === undefined) return undefined;
  return capped(Math.max(0, date - now));
}

/** `ms`, at most {@link MAX_TIMER_DELAY} (`Infinity` included). */
function capped(ms: number): number {
  return ms > MAX_TIMER_DELAY ? MAX_TIMER_DELAY : ms;
}

/** The time an HTTP date stands for, in ms since the epoch, or `undefined`. */
function httpDate(text: string, now: number): number | undefined {
  let normalised: string | undefined;
  if (IMF_FIXDATE.test(text)) {
    normalised = text;
  } else {
    const rfc850 = RFC_850.exec(text);
    if (rfc850 !== null) {
      const [, day, month, year, time] = rfc850 as unknown as string[];
      // Two-digit years: RFC 9110 reads one more than 50 years ahead as the past century.
      const full = 2000 + Number(year);
      const thisYear = new Date(now).getUTCFullYear();
      const century = full > thisYear + 50 ? full - 100 : full;
      normalised = `${String(day)} ${String(month)} ${String(century)} ${String(time)} GMT`;
    } else {
      const asctime = ASCTIME.exec(text);
      if (asctime !== null) {
        const [, month, day, time, year] = asctime as unknown as string[];
        normalised = `${String(day).trim()} ${String(month)} ${String(year)} ${String(time)} GMT`;
      }
    }
  }
  if (normalised === undefined) return undefined;
  const ms = Date.parse(normalised);
  return Number.isNaN(ms) ? undefined : ms;
}
