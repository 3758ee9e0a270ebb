import { admitAttempt, type AttemptGate, type AttemptGrant } from "../internal/gates.js";
import { show } from "../internal/validate.js";
import {
  costOf,
  isRateLimiter,
  rateLimiterOption,
  windowOf,
  type RateLimiter,
} from "./rate-limiter.js";
import type { SlidingWindow } from "./sliding-window.js";
import { Turn } from "./turn.js";

/**
 * `rateLimit: [a, b, …]`: several limiters acting as one gate. An attempt starts once every
 * one of them has room for it and it is at the front of each one's queue; it then takes its
 * cost in all of them at once, and holds nothing in any while it waits (see `Turn`). The
 * limiters may come from different builds of the package: they are driven through registered
 * symbols and their windows' methods.
 */
export class LimiterSet implements AttemptGate {
  readonly #limiters: readonly RateLimiter[];

  /** @param limiters - two or more distinct limiters */
  constructor(limiters: readonly RateLimiter[]) {
    this.#limiters = limiters;
  }

  /** See {@link admitAttempt}. */
  [admitAttempt](
    value: unknown,
    context: unknown,
    signal: AbortSignal | undefined,
  ): AttemptGrant | Promise<AttemptGrant> {
    const limiters = this.#limiters;
    const windows: SlidingWindow[] = [];
    const costs: number[] = [];
    for (const limiter of limiters) {
      windows.push(limiter[windowOf](value, context));
      costs.push(limiter[costOf](value, context));
    }
    const turn = new Turn(windows, costs);
    const free = windows.every(
      (window, index) => window.open && window.fits(costs[index] as number),
    );
    return free ? turn.take() : turn.wait(signal);
  }
}

/**
 * The `rateLimit` stage option, validated, as the gate the stage's attempts pass: a
 * {@link RateLimiter} (of any build of the package), its options (a limiter of the stage's
 * own), or an array of limiters (one gate; a single one is itself; an empty array is no limit:
 * `undefined`). Messages name `rateLimit` and the bad index.
 */
export function attemptGateOption(value: unknown): AttemptGate | undefined {
  if (!Array.isArray(value)) return rateLimiterOption(value);
  const limiters: RateLimiter[] = [];
  for (let index = 0; index < value.length; index++) {
    const entry: unknown = value[index];
    if (!isRateLimiter(entry)) {
      const got = entry === undefined && !(index in value) ? "a hole" : show(entry);
      throw new TypeError(`rateLimit[${String(index)}] must be a RateLimiter, got ${got}`);
    }
    const earlier = limiters.indexOf(entry);
    if (earlier !== -1) {
      throw new TypeError(
        `rateLimit[${String(index)}] is the same limiter as rateLimit[${String(earlier)}]: give each limiter once`,
      );
    }
    limiters.push(entry);
  }
  if (limiters.length === 0) return undefined;
  return limiters.length === 1 ? limiters[0] : new LimiterSet(limiters);
}
