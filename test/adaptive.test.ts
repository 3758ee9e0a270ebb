/**
 * `adaptiveConcurrency`: its options, its gauges as the pool will use them (the contract in
 * src/internal/limits.ts), and the rules of the algorithm one by one, on fake timers. The
 * goals against an unknown capacity are in adaptive-convergence.test.ts and
 * adaptive-shift.test.ts.
 */
import fc from "fast-check";
import { afterEach, beforeEach, describe, expect, expectTypeOf, it, vi } from "vitest";
import {
  adaptiveConcurrency,
  BrokenCircuitError,
  TimeoutError,
  type AdaptiveConcurrency,
  type AdaptiveConcurrencyOptions,
} from "../src/index.js";
import { isOverloadByDefault } from "../src/flow/adaptive.js";
import { gaugeOf, isDynamicLimit, type LimitGauge } from "../src/internal/limits.js";
import { NUM_RUNS, TIMEOUT } from "./support/property.js";
import { curves, SimulatedService, TooManyRequests } from "./support/simulator.js";
import { driveBatch, runToEnd } from "./support/simulator-batch.js";

beforeEach(() => {
  vi.useFakeTimers();
});

afterEach(() => {
  vi.useRealTimers();
});

const advance = (ms: number): Promise<unknown> => vi.advanceTimersByTimeAsync(ms);

/** The batch-level gauge of `options`' controller, and every change `onChange` was told. */
function gaugeWithChanges(options: AdaptiveConcurrencyOptions = {}): {
  gauge: LimitGauge;
  changes: number[];
} {
  const changes: number[] = [];
  const controller = adaptiveConcurrency({
    ...options,
    onChange: (limit) => {
      changes.push(limit);
    },
  });
  return { gauge: controller[gaugeOf](false, undefined), changes };
}

/**
 * `count` items through `gauge` as a busy pool runs them: as many in flight as the limit
 * allows, an item finishing every `latency(inFlight) / inFlight` ms (so that each takes
 * `latency` ms), and another starting in its place. Reads no clock itself.
 */
function runSteady(gauge: LimitGauge, count: number, latency: (inFlight: number) => number): void {
  while (gauge.inFlight < gauge.limit) gauge.started();
  for (let done = 0; done < count; done++) {
    vi.advanceTimersByTime(latency(gauge.inFlight) / gauge.inFlight);
    gauge.finished();
    while (gauge.inFlight < gauge.limit) gauge.started();
  }
}

/** A service as fast whatever the load. */
const constant = (ms: number) => (): number => ms;

describe("adaptiveConcurrency options", () => {
  it("defaults to min 1, max 1000, and a start at min", () => {
    const controller = adaptiveConcurrency();
    expect(controller.min).toBe(1);
    expect(controller.max).toBe(1_000);
    expect(controller.limit).toBe(1);
    expect(adaptiveConcurrency({ min: 3 }).limit).toBe(3);
    expect(adaptiveConcurrency({ min: 3, initial: 5 }).limit).toBe(5);
    expect(adaptiveConcurrency({ min: 1_000 }).max).toBe(1_000);
  });

  it.each([
    [{ min: 0 }, RangeError, "min must be at least 1, got 0"],
    [{ min: 1.5 }, RangeError, "min must be an integer, got 1.5"],
    [{ min: "2" }, TypeError, 'min must be a number, got "2"'],
    [{ min: Number.NaN }, RangeError, "min must be a number, got NaN"],
    [{ min: 1_001 }, RangeError, "min must be at most max (1000 by default), got 1001"],
    [{ max: 0 }, RangeError, "max must be at least 1, got 0"],
    [{ max: Infinity }, RangeError, "max must be an integer, got Infinity"],
    [{ max: 2.5 }, RangeError, "max must be an integer, got 2.5"],
    [{ min: 4, max: 3 }, RangeError, "max must be at least min (4), got 3"],
    [{ initial: 0 }, RangeError, "initial must be at least 1, got 0"],
    [{ min: 2, initial: 1 }, RangeError, "initial must be within [min, max] = [2, 1000], got 1"],
    [{ max: 8, initial: 9 }, RangeError, "initial must be within [min, max] = [1, 8], got 9"],
    [{ initial: 1.5 }, RangeError, "initial must be an integer, got 1.5"],
    [{ isOverload: true }, TypeError, "isOverload must be a function, got true"],
    [{ onChange: "log" }, TypeError, 'onChange must be a function, got "log"'],
    [{ maxx: 8 }, TypeError, 'unknown option "maxx" (did you mean "max"?)'],
  ])("rejects %o when called", (options, Kind, message) => {
    expect(() => adaptiveConcurrency(options as never)).toThrow(Kind);
    expect(() => adaptiveConcurrency(options as never)).toThrow(message);
  });

  it("has the types of the contract", () => {
    expectTypeOf(adaptiveConcurrency)
      .parameter(0)
      .toEqualTypeOf<AdaptiveConcurrencyOptions | undefined>();
    expectTypeOf(adaptiveConcurrency()).toEqualTypeOf<AdaptiveConcurrency>();
    expectTypeOf(adaptiveConcurrency().limit).toBeNumber();
    expectTypeOf<AdaptiveConcurrencyOptions["onChange"]>().toEqualTypeOf<
      ((limit: number, key: unknown) => unknown) | undefined
    >();
    expectTypeOf<AdaptiveConcurrencyOptions["isOverload"]>().toEqualTypeOf<
      ((error: unknown, retryAfter: number | undefined) => boolean) | undefined
    >();
    // @ts-expect-error -- a limit is a number
    expect(() => adaptiveConcurrency({ max: "8" })).toThrow(TypeError);
    // @ts-expect-error -- not an option
    expect(() => adaptiveConcurrency({ maximum: 8 })).toThrow(TypeError);
  });

  it("rejects options that are not an object", () => {
    expect(() => adaptiveConcurrency(5 as never)).toThrow(
      new TypeError("options must be an object, got 5"),
    );
    expect(() => adaptiveConcurrency(null as never)).toThrow(TypeError);
  });

  it("is a dynamic limit the pool recognises, of any copy of the package", () => {
    const controller = adaptiveConcurrency();
    expect(isDynamicLimit(controller)).toBe(true);
    expect(isDynamicLimit(5)).toBe(false);
    expect(isDynamicLimit(null)).toBe(false);
    expect(isDynamicLimit({})).toBe(false);
    expect(gaugeOf).toBe(Symbol.for("async-pipeline.adaptiveConcurrency.gaugeOf"));
  });
});

describe("what counts as an overload by default", () => {
  it.each([
    ["a TimeoutError", new TimeoutError("call", 100), undefined],
    ["a BrokenCircuitError", new BrokenCircuitError("call"), undefined],
    ["status 429", Object.assign(new Error("busy"), { status: 429 }), undefined],
    ["status 503", { status: 503 }, undefined],
    ["statusCode 429", { statusCode: 429 }, undefined],
    ["statusCode 503", { statusCode: 503 }, undefined],
    ["any error retryAfter gave a wait for", new Error("slow down"), 0],
  ])("%s is one", (_name, error, retryAfter) => {
    expect(isOverloadByDefault(error, retryAfter)).toBe(true);
  });

  it.each([
    ["a plain error", new Error("boom")],
    ["status 500", { status: 500 }],
    ["status 429 as a string", { status: "429" }],
    ["a number", 429],
    ["null", null],
    ["undefined", undefined],
  ])("%s is not", (_name, error) => {
    expect(isOverloadByDefault(error, undefined)).toBe(false);
  });
});

describe("the limit", () => {
  it("doubles per round trip from the start while items succeed at the lowest latency", () => {
    const { gauge, changes } = gaugeWithChanges({ max: 64 });
    runSteady(gauge, 1_000, constant(100));
    // +1 per completion below 8, then × 1.5 per window of `limit` completions, up to max.
    expect(changes.slice(0, 7)).toEqual([2, 3, 4, 5, 6, 7, 8]);
    expect(changes.slice(7)).toEqual([12, 18, 27, 40, 60, 64]);
    expect(gauge.limit).toBe(64);
  });

  it("is cut by 30% at once on an overload, once per window, and not for other errors", () => {
    const { gauge, changes } = gaugeWithChanges({ initial: 100 });
    gauge.started();
    gauge.attemptFailed(new Error("a bug, not an overload"), undefined);
    expect(gauge.limit).toBe(100);
    gauge.attemptFailed(new TooManyRequests(), undefined);
    expect(gauge.limit).toBe(70);
    // The attempts already under way when the limit was cut are old news.
    gauge.attemptFailed(new TooManyRequests(), undefined);
    expect(gauge.limit).toBe(70);
    expect(changes).toEqual([70]);
    gauge.finished();
    // The next window (its items started under the new limit) may cut again.
    runSteady(gauge, 70, constant(100));
    const before = gauge.limit;
    gauge.attemptFailed(new TooManyRequests(), undefined);
    expect(gauge.limit).toBeLessThan(before);
    expect(gauge.limit).toBeLessThanOrEqual(Math.ceil(before * 0.7));
  });

  it("asks a custom isOverload, with what retryAfter said; its throw counts as no", () => {
    const asked: unknown[][] = [];
    const controller = adaptiveConcurrency({
      initial: 10,
      isOverload: (error, retryAfter) => {
        asked.push([error, retryAfter]);
        if (error === "throw") throw new Error("broken predicate");
        return error === "overloaded";
      },
    });
    const gauge = controller[gaugeOf](false, undefined);
    gauge.attemptFailed("throw", undefined);
    gauge.attemptFailed(new TooManyRequests(), 250);
    expect(gauge.limit).toBe(10);
    gauge.attemptFailed("overloaded", undefined);
    expect(gauge.limit).toBe(7);
    expect(asked).toEqual([
      ["throw", undefined],
      [expect.any(TooManyRequests), 250],
      ["overloaded", undefined],
    ]);
  });

  it("falls when the latency rises well past the lowest seen, at most by half a window", () => {
    const { gauge, changes } = gaugeWithChanges({ initial: 64, max: 64 });
    runSteady(gauge, 64 * 10, constant(100));
    expect(changes).toEqual([]);
    // Three times slower: well past 1.6 × the baseline (100 ms, raised by 6% for its noise).
    runSteady(gauge, 64 + 1, constant(300));
    const gradient = (1.6 * 106.25) / 300;
    expect(changes).toEqual([Math.floor(64 * gradient)]);
    // The 64 items started under the old limit are not measured, then a window of 36.
    runSteady(gauge, 64 + 36 + 1, constant(300));
    expect(changes).toEqual([36, Math.floor(64 * gradient * gradient)]);
  });

  it("holds where the latency is about 1.6 times the lowest seen", () => {
    // Twice as slow at 100 in flight: 1.6 × the true baseline comes at 77; the one measured is
    // up to 10% above it (seen on the way up from 1, and raised for noise), so 77 to 92. (Started
    // at 100, it would never see the latency at a low load.)
    const { gauge } = gaugeWithChanges();
    runSteady(gauge, 20_000, (inFlight) => 100 * (1 + (inFlight / 100) ** 2));
    expect(gauge.limit).toBeGreaterThanOrEqual(75);
    expect(gauge.limit).toBeLessThanOrEqual(92);
  });

  it("measures the baseline anew when it is stuck at min and still too slow", () => {
    const { gauge, changes } = gaugeWithChanges({ initial: 16, max: 16 });
    runSteady(gauge, 16 * 10, constant(100));
    // The service is five times slower for good: the limit falls to min…
    runSteady(gauge, 200, constant(500));
    expect(changes).toContain(1);
    // …and, once it has seen that the slowness is not its doing, grows again.
    runSteady(gauge, 500, constant(500));
    expect(gauge.limit).toBe(16);
  });

  it("does not grow in the start while fewer than half the limit run", () => {
    const { gauge, changes } = gaugeWithChanges({ initial: 5 });
    const run = (running: number): void => {
      for (let index = 0; index < running; index++) gauge.started();
      vi.advanceTimersByTime(100);
      for (let index = 0; index < running; index++) gauge.finished();
    };
    // 2 of 5 running: the limit is not what holds the batch back.
    for (let round = 0; round < 100; round++) run(2);
    expect(changes).toEqual([]);
    // 3 of 5: the completion that sees 3 running grows it (the next two see fewer).
    run(3);
    expect(changes).toEqual([6]);
  });

  it("does not grow while the batch leaves it idle (app-limited) or half used", () => {
    const { gauge, changes } = gaugeWithChanges({ initial: 16 });
    // 7 of 16 in flight (below half the limit), then 12 (busy enough to measure, not to grow).
    for (const running of [7, 12]) {
      for (let index = 0; index < running; index++) gauge.started();
      for (let done = 0; done < 1_000; done++) {
        vi.advanceTimersByTime(100 / running);
        gauge.finished();
        gauge.started();
      }
      for (let index = 0; index < running; index++) gauge.finished();
    }
    expect(changes).toEqual([]);
  });

  it("reads the clock about once per window, never per item, and sets no timer", () => {
    const { gauge } = gaugeWithChanges({ initial: 50, max: 50 });
    const clock = vi.spyOn(globalThis.performance, "now");
    runSteady(gauge, 5_000, constant(100));
    // 5,000 items in windows of 50: 100 windows, one read each.
    expect(clock.mock.calls.length).toBeLessThanOrEqual(101);
    expect(vi.getTimerCount()).toBe(0);
    clock.mockRestore();
  });

  it("forgets a window that spans the idle time between two batches", () => {
    const { gauge, changes } = gaugeWithChanges({ initial: 16, max: 16 });
    runSteady(gauge, 16 * 10, constant(100));
    // Half a window more, then the batch ends; an hour later another batch takes the gauge.
    runSteady(gauge, 8, constant(100));
    while (gauge.inFlight > 0) gauge.finished();
    gauge.release();
    vi.advanceTimersByTime(3_600_000);
    runSteady(gauge, 16 * 10, constant(100));
    // Read as latency, that hour would have cut the limit to its half.
    expect(changes).toEqual([]);
    expect(gauge.limit).toBe(16);
  });
});

describe("onChange", () => {
  it("is told each new whole limit, never an unchanged one, and its failures are ignored", () => {
    const seen: number[] = [];
    const controller = adaptiveConcurrency({
      max: 40,
      onChange: (limit, key) => {
        seen.push(limit);
        expect(key).toBeUndefined();
        if (limit % 2 === 0) throw new Error("a broken listener");
        return Promise.reject(new Error("an async broken listener"));
      },
    });
    const gauge = controller[gaugeOf](false, undefined);
    runSteady(gauge, 2_000, constant(100));
    expect(seen.length).toBeGreaterThan(5);
    expect(seen.at(-1)).toBe(controller.limit);
    seen.forEach((limit, index) => {
      expect(limit).not.toBe(index === 0 ? 1 : seen[index - 1]);
    });
  });

  it("names the key under perKey", () => {
    const seen: [number, unknown][] = [];
    const controller = adaptiveConcurrency({
      initial: 10,
      onChange: (limit, key) => {
        seen.push([limit, key]);
      },
    });
    controller[gaugeOf](true, "a.example").attemptFailed(new TooManyRequests(), undefined);
    controller[gaugeOf](true, "b.example").attemptFailed({ status: 503 }, undefined);
    expect(seen).toEqual([
      [7, "a.example"],
      [7, "b.example"],
    ]);
  });
});

describe("a controller shared by batches", () => {
  it("is one budget for the batches given it: together they stay within its limit", async () => {
    const controller = adaptiveConcurrency({ initial: 12, max: 12 });
    const service = new SimulatedService({ capacity: 1_000, curve: curves.flat, jitter: 0 });
    let peak = 0;
    const gauges = [controller[gaugeOf](false, undefined), controller[gaugeOf](false, undefined)];
    expect(gauges[0]).toBe(gauges[1]);
    const watch = setInterval(() => {
      peak = Math.max(peak, (gauges[0] as LimitGauge).inFlight);
    }, 7);
    const first = driveBatch(service, gauges[0] as LimitGauge, 300);
    const second = driveBatch(service, gauges[1] as LimitGauge, 300);
    await runToEnd(Promise.all([first, second]), advance);
    clearInterval(watch);
    expect(peak).toBe(12);
    expect(service.stats.peak).toBe(12);
    expect(service.stats.completions.length).toBe(600);
    expect((gauges[0] as LimitGauge).inFlight).toBe(0);
  });

  it("wakes the batches blocked by others' items, oldest first, one per free place", () => {
    const { gauge } = gaugeWithChanges({ initial: 2, max: 2 });
    const woken: string[] = [];
    gauge.started();
    gauge.started();
    const first = (): void => {
      woken.push("first");
      gauge.started();
    };
    gauge.wait(first);
    gauge.wait(() => {
      woken.push("second");
      throw new Error("a waker that throws stops nothing");
    });
    gauge.wait(() => woken.push("third"));
    gauge.finished();
    expect(woken).toEqual(["first"]);
    gauge.finished();
    gauge.finished();
    // "second" threw (and started nothing), so "third" had the place as well.
    expect(woken).toEqual(["first", "second", "third"]);
  });

  it("takes back the callback of a batch that stopped while it waited", () => {
    const { gauge } = gaugeWithChanges({ initial: 1, max: 1 });
    const woken: string[] = [];
    const stopped = (): void => {
      woken.push("stopped");
    };
    gauge.started();
    gauge.wait(stopped);
    gauge.wait(() => woken.push("other"));
    gauge.cancelWait(stopped);
    gauge.cancelWait(() => undefined);
    gauge.finished();
    expect(woken).toEqual(["other"]);
  });

  it("keeps what it learned from one batch to the next", async () => {
    const controller = adaptiveConcurrency({ max: 32 });
    const service = new SimulatedService({ capacity: 1_000, curve: curves.flat });
    const gauge = controller[gaugeOf](false, undefined);
    await runToEnd(driveBatch(service, gauge, 2_000), advance);
    expect(controller.limit).toBe(32);
    const next = controller[gaugeOf](false, undefined);
    expect(next.limit).toBe(32);
    next.release();
    next.release();
  });
});

describe("a worker keeping its place (keep, giveBack)", () => {
  /** As {@link runSteady}, but each finishing item's worker keeps its place when it may. */
  function runKeeping(
    gauge: LimitGauge,
    count: number,
    latency: (inFlight: number) => number,
  ): number {
    let kept = 0;
    while (gauge.inFlight < gauge.limit) gauge.started();
    for (let done = 0; done < count; done++) {
      vi.advanceTimersByTime(latency(gauge.inFlight) / gauge.inFlight);
      if (gauge.keep()) kept++;
      while (gauge.inFlight < gauge.limit) gauge.started();
    }
    return kept;
  }

  it("learns what finished() then started() teach: the same limits, the same changes", () => {
    const rising = (inFlight: number): number => 100 * Math.max(1, inFlight / 20);
    const overload = Object.assign(new Error("busy"), { status: 429 });
    const apart = gaugeWithChanges({ max: 200 });
    runSteady(apart.gauge, 1_500, rising);
    apart.gauge.attemptFailed(overload, undefined);
    runSteady(apart.gauge, 1_500, rising);
    const keeping = gaugeWithChanges({ max: 200 });
    let kept = runKeeping(keeping.gauge, 1_500, rising);
    keeping.gauge.attemptFailed(overload, undefined);
    kept += runKeeping(keeping.gauge, 1_500, rising);
    expect(keeping.changes).toEqual(apart.changes);
    expect(keeping.changes.length).toBeGreaterThan(10);
    expect(keeping.gauge.inFlight).toBe(apart.gauge.inFlight);
    // Most completions kept their places; those past a lower limit did not.
    expect(kept).toBeGreaterThan(2_500);
    expect(kept).toBeLessThan(3_000);
  });

  it("keeps a place only below the limit and with no batch waiting, and giveBack wakes one", () => {
    const { gauge } = gaugeWithChanges({ initial: 2, max: 2 });
    gauge.started();
    gauge.started();
    expect(gauge.keep()).toBe(true);
    expect(gauge.inFlight).toBe(2);
    // Another batch waits: the place is its, in the order they waited.
    const woken: string[] = [];
    gauge.wait(() => {
      woken.push("other batch");
      gauge.started();
    });
    expect(gauge.keep()).toBe(false);
    expect(woken).toEqual(["other batch"]);
    expect(gauge.inFlight).toBe(2);
    // A lower limit (2 × 0.7 = 1.4): one place too many, given up; then kept again.
    gauge.attemptFailed(Object.assign(new Error("busy"), { status: 429 }), undefined);
    expect(gauge.limit).toBe(1);
    expect(gauge.keep()).toBe(false);
    expect(gauge.inFlight).toBe(1);
    expect(gauge.keep()).toBe(true);
    expect(gauge.inFlight).toBe(1);
    // A kept place nobody took: given back, and a waiter woken.
    gauge.wait(() => woken.push("late batch"));
    gauge.giveBack();
    expect(gauge.inFlight).toBe(0);
    expect(woken).toEqual(["other batch", "late batch"]);
  });
});

describe("per-key limits", () => {
  it("keeps one limit per key, apart from the batch's own", () => {
    const controller = adaptiveConcurrency({ initial: 10 });
    const a = controller[gaugeOf](true, "a");
    expect(controller[gaugeOf](true, "a")).toBe(a);
    expect(controller[gaugeOf](true, undefined)).not.toBe(controller[gaugeOf](false, undefined));
    a.attemptFailed(new TooManyRequests(), undefined);
    expect(controller.limitFor("a")).toBe(7);
    expect(controller.limitFor("b")).toBe(10);
    expect(controller.limit).toBe(10);
  });

  it("forgets the oldest idle keys past 10,000, never one in use", () => {
    const controller = adaptiveConcurrency({ initial: 10 });
    const busy = controller[gaugeOf](true, "busy");
    busy.started();
    busy.attemptFailed(new TooManyRequests(), undefined);
    const held = controller[gaugeOf](true, "held");
    held.attemptFailed(new TooManyRequests(), undefined);
    const idle = controller[gaugeOf](true, "idle");
    idle.attemptFailed(new TooManyRequests(), undefined);
    idle.release();
    for (let key = 0; key < 10_000; key++) controller[gaugeOf](true, key).release();
    expect(controller.limitFor("busy")).toBe(7);
    expect(controller.limitFor("held")).toBe(7);
    // Forgotten: back to `initial`.
    expect(controller.limitFor("idle")).toBe(10);
    expect(controller.limitFor(9_999)).toBe(10);
  });
});

describe("bounds", () => {
  type Step =
    | { kind: "start"; count: number }
    | { kind: "finish"; count: number }
    | { kind: "fail"; overload: boolean }
    | { kind: "wait"; ms: number }
    | { kind: "release" };

  const step: fc.Arbitrary<Step> = fc.oneof(
    fc.record({ kind: fc.constant("start" as const), count: fc.integer({ min: 1, max: 300 }) }),
    fc.record({ kind: fc.constant("finish" as const), count: fc.integer({ min: 1, max: 300 }) }),
    fc.record({ kind: fc.constant("fail" as const), overload: fc.boolean() }),
    fc.record({ kind: fc.constant("wait" as const), ms: fc.integer({ min: 0, max: 5_000 }) }),
    fc.record({ kind: fc.constant("release" as const) }),
  );

  it(
    "never leaves [min, max], stays whole, and onChange is told each change",
    () => {
      fc.assert(
        fc.property(
          fc.integer({ min: 1, max: 50 }),
          fc.integer({ min: 0, max: 200 }),
          fc.integer({ min: 0, max: 1_000 }),
          fc.array(step, { maxLength: 200 }),
          (min, span, start, steps) => {
            const max = min + span;
            const initial = min + (start % (span + 1));
            const { gauge, changes } = gaugeWithChanges({ min, max, initial });
            for (const action of steps) {
              if (action.kind === "start") {
                for (let index = 0; index < action.count; index++) gauge.started();
              } else if (action.kind === "finish") {
                const count = Math.min(action.count, gauge.inFlight);
                for (let index = 0; index < count; index++) gauge.finished();
              } else if (action.kind === "fail") {
                gauge.attemptFailed(action.overload ? { status: 429 } : new Error("x"), undefined);
              } else if (action.kind === "wait") {
                vi.advanceTimersByTime(action.ms);
              } else {
                gauge.release();
              }
              const { limit } = gauge;
              expect(Number.isInteger(limit)).toBe(true);
              expect(limit).toBeGreaterThanOrEqual(min);
              expect(limit).toBeLessThanOrEqual(max);
              expect(changes.at(-1) ?? initial).toBe(limit);
            }
            changes.forEach((limit, index) => {
              expect(Number.isInteger(limit) && limit >= min && limit <= max).toBe(true);
              expect(limit).not.toBe(index === 0 ? initial : changes[index - 1]);
            });
          },
        ),
        { numRuns: NUM_RUNS },
      );
    },
    TIMEOUT,
  );
});
