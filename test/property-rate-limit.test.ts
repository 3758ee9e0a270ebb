/**
 * Property-based tests of the rate limiter, on the class through its gate, in fake time: random
 * attempts (costs, keys, arrival times, a lag between grant and start, grants released instead
 * of started, aborts while waiting, refunds through `charge`) against one limiter, and against
 * an array of two. Whatever happens, measured where attempts start, no window of `interval` ms
 * holds more than `limit` (in cost, after refunds); each queue is FIFO; every attempt that
 * neither aborted nor was released starts; nothing waits and no timer is left at the end.
 */
import fc from "fast-check";
import { afterEach, describe, expect, it, vi } from "vitest";
import { RateLimiter } from "../src/index.js";
import { attemptGateOption } from "../src/flow/limiter-set.js";
import { admitAttempt, type AttemptGate, type AttemptGrant } from "../src/internal/gates.js";
import { isThenable } from "../src/internal/thenable.js";
import { NUM_RUNS, TIMEOUT } from "./support/property.js";
import { busiestWindow } from "./support/windows.js";

afterEach(() => {
  vi.useRealTimers();
});

interface Plan {
  /** When the attempt asks, in ms. */
  readonly at: number;
  readonly cost: number;
  readonly key: number;
  /** ms between the grant and the start (or the release). */
  readonly lag: number;
  readonly fate: "start" | "release" | "abort";
  /** ms after asking that an "abort" attempt aborts (it may have been granted by then). */
  readonly abortAfter: number;
  /** What the attempt really cost, charged when it starts (at most its cost): a refund. */
  readonly actual: number | null;
}

const planArbitrary = fc.record({
  at: fc.integer({ min: 0, max: 400 }),
  cost: fc.integer({ min: 0, max: 6 }),
  key: fc.integer({ min: 0, max: 2 }),
  lag: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 150 })),
  fate: fc.constantFrom<Plan["fate"]>("start", "start", "start", "release", "abort"),
  abortAfter: fc.integer({ min: 0, max: 300 }),
  actual: fc.option(fc.integer({ min: 0, max: 6 })),
});

interface Outcome {
  grantedAt: number | undefined;
  /** Order of the grant among all grants. */
  grantOrder: number | undefined;
  startedAt: number | undefined;
  /** The cost recorded in the end (the refund, when there was one). */
  spent: number;
  rejected: unknown;
  abortedAt: number | undefined;
}

/** Runs the plans against `gate` in fake time and returns what happened to each. */
async function play(
  gate: AttemptGate,
  plans: readonly Plan[],
  costOf: (plan: Plan) => number,
  charged: readonly RateLimiter[],
): Promise<Outcome[]> {
  vi.useFakeTimers();
  let grants = 0;
  const outcomes = plans.map((plan): Outcome => {
    const outcome: Outcome = {
      grantedAt: undefined,
      grantOrder: undefined,
      startedAt: undefined,
      spent: costOf(plan),
      rejected: undefined,
      abortedAt: undefined,
    };
    setTimeout(() => {
      const controller = new AbortController();
      const granted = (grant: AttemptGrant): void => {
        outcome.grantedAt = performance.now();
        outcome.grantOrder = grants++;
        setTimeout(() => {
          if (plan.fate === "release") {
            grant.release();
            return;
          }
          outcome.startedAt = performance.now();
          const receipt = grant.start();
          if (plan.actual !== null) {
            const actual = Math.min(plan.actual, outcome.spent);
            for (const limiter of charged) grant.charge(receipt, limiter, actual);
            if (charged.length > 0) outcome.spent = actual;
          }
        }, plan.lag);
      };
      const answer = gate[admitAttempt](plan, {}, controller.signal);
      if (isThenable(answer)) {
        answer.then(granted, (error: unknown) => {
          outcome.rejected = error;
        });
      } else {
        granted(answer);
      }
      if (plan.fate === "abort") {
        setTimeout(() => {
          outcome.abortedAt = performance.now();
          controller.abort(new Error("abort"));
        }, plan.abortAfter);
      }
    }, plan.at);
    return outcome;
  });
  // Long enough for every attempt: at most 30 attempts, each waiting at most a few intervals.
  await vi.advanceTimersByTimeAsync(100_000);
  return outcomes;
}

/** The common checks: liveness, the outcome of aborts, FIFO among `same` groups, nothing left. */
function checkOutcomes(
  plans: readonly Plan[],
  outcomes: readonly Outcome[],
  group: (plan: Plan) => number,
): void {
  plans.forEach((plan, index) => {
    const outcome = outcomes[index] as Outcome;
    const abortedFirst =
      plan.fate === "abort" &&
      (outcome.grantedAt === undefined || (outcome.abortedAt as number) < outcome.grantedAt);
    if (abortedFirst) {
      expect(outcome.rejected, `attempt ${String(index)} aborted while waiting`).toEqual(
        new Error("abort"),
      );
      expect(outcome.grantedAt).toBeUndefined();
    } else {
      expect(outcome.grantedAt, `attempt ${String(index)} is granted`).toBeDefined();
      if (plan.fate !== "release") expect(outcome.startedAt).toBeDefined();
    }
  });
  // FIFO: within a queue, attempts are granted in the order they asked (ties in time asked:
  // in the order of the plan, which is the order their timers were set).
  const asked = plans
    .map((plan, index) => ({ plan, index, outcome: outcomes[index] as Outcome }))
    .filter(({ outcome }) => outcome.grantOrder !== undefined)
    .sort((a, b) => a.plan.at - b.plan.at || a.index - b.index);
  for (let i = 0; i < asked.length; i++) {
    for (let j = i + 1; j < asked.length; j++) {
      const a = asked[i] as (typeof asked)[number];
      const b = asked[j] as (typeof asked)[number];
      if (group(a.plan) !== group(b.plan)) continue;
      expect(
        a.outcome.grantOrder as number,
        `attempt ${String(a.index)} asked before ${String(b.index)} and is granted first`,
      ).toBeLessThan(b.outcome.grantOrder as number);
    }
  }
  expect(vi.getTimerCount(), "no timer is left").toBe(0);
}

describe("property: RateLimiter", () => {
  it(
    "one limiter with cost and key: within the limit where attempts start, FIFO per key, all served",
    async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.integer({ min: 1, max: 6 }),
          fc.integer({ min: 5, max: 200 }),
          fc.array(planArbitrary, { maxLength: 30 }),
          async (limit, interval, plans) => {
            const costOf = (plan: Plan): number => Math.min(plan.cost, limit);
            const limiter = new RateLimiter({
              limit,
              interval,
              cost: costOf,
              key: (plan: Plan) => plan.key,
            });
            try {
              const outcomes = await play(limiter, plans, costOf, [limiter]);
              for (const key of [0, 1, 2]) {
                const starts = plans.flatMap((plan, index) => {
                  const outcome = outcomes[index] as Outcome;
                  return plan.key === key && outcome.startedAt !== undefined
                    ? [{ at: outcome.startedAt, cost: outcome.spent }]
                    : [];
                });
                expect(busiestWindow(starts, interval), `key ${String(key)}`).toBeLessThanOrEqual(
                  limit,
                );
              }
              checkOutcomes(plans, outcomes, (plan) => plan.key);
              expect(limiter.waiting).toBe(0);
            } finally {
              vi.useRealTimers();
            }
          },
        ),
        { numRuns: NUM_RUNS },
      );
    },
    TIMEOUT,
  );

  it(
    "an array of two limiters: within each one's limit where attempts start, FIFO, all served",
    async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.integer({ min: 1, max: 4 }),
          fc.integer({ min: 5, max: 200 }),
          fc.integer({ min: 2, max: 8 }),
          fc.integer({ min: 5, max: 300 }),
          fc.array(planArbitrary, { maxLength: 30 }),
          async (requestLimit, requestInterval, tokenLimit, tokenInterval, plans) => {
            const costOf = (plan: Plan): number => Math.min(plan.cost, tokenLimit);
            const requests = new RateLimiter({ limit: requestLimit, interval: requestInterval });
            const tokens = new RateLimiter({
              limit: tokenLimit,
              interval: tokenInterval,
              cost: costOf,
            });
            const gate = attemptGateOption([requests, tokens]) as AttemptGate;
            try {
              const outcomes = await play(gate, plans, costOf, [tokens]);
              const started = outcomes.filter((outcome) => outcome.startedAt !== undefined);
              const requestStarts = started.map((outcome) => ({
                at: outcome.startedAt as number,
                cost: 1,
              }));
              const tokenStarts = started.map((outcome) => ({
                at: outcome.startedAt as number,
                cost: outcome.spent,
              }));
              expect(busiestWindow(requestStarts, requestInterval)).toBeLessThanOrEqual(
                requestLimit,
              );
              expect(busiestWindow(tokenStarts, tokenInterval)).toBeLessThanOrEqual(tokenLimit);
              checkOutcomes(plans, outcomes, () => 0);
              expect([requests.waiting, tokens.waiting]).toEqual([0, 0]);
            } finally {
              vi.useRealTimers();
            }
          },
        ),
        { numRuns: NUM_RUNS },
      );
    },
    TIMEOUT,
  );
});
