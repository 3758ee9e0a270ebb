import { afterEach, describe, expect, it, vi } from "vitest";
import { Pipeline, Stage, StageExecutionError, TimeoutError } from "../src/index.js";
import { range } from "./support/iterables.js";
import { observe } from "./support/promises.js";
import { abortListeners } from "./support/signals.js";
import { sleep } from "./support/time.js";

afterEach(() => {
  vi.useRealTimers();
});

/** Fails odd numbers, doubles even ones. */
function evensOnly() {
  const errors = new Map<number, Error>();
  const pipeline = new Pipeline([
    new Stage("prepare", (value: number) => value),
    new Stage("check", async (value: number) => {
      if (value % 2 === 1) {
        const error = new Error(`odd ${String(value)}`);
        errors.set(value, error);
        throw error;
      }
      return value * 2;
    }),
  ]);
  return { pipeline, errors };
}

describe("mapSettled: results", () => {
  it("resolves one entry per input, in input order, fulfilled or rejected", async () => {
    const { pipeline, errors } = evensOnly();
    const settled = await pipeline.mapSettled([0, 1, 2, 3], 2);
    expect(settled).toHaveLength(4);
    expect(settled[0]).toEqual({ status: "fulfilled", value: 0 });
    expect(settled[2]).toEqual({ status: "fulfilled", value: 4 });
    for (const index of [1, 3]) {
      const entry = settled[index];
      expect(entry?.status).toBe("rejected");
      const reason = (entry as PromiseRejectedResult).reason as StageExecutionError;
      expect(reason).toBeInstanceOf(StageExecutionError);
      expect(reason.stageName).toBe("check");
      expect(reason.originalError).toBe(errors.get(index));
    }
  });

  it("has exactly the keys status and value, or status and reason", async () => {
    const { pipeline } = evensOnly();
    const settled = await pipeline.mapSettled([0, 1]);
    expect(Object.keys(settled[0] ?? {}).sort()).toEqual(["status", "value"]);
    expect(Object.keys(settled[1] ?? {}).sort()).toEqual(["reason", "status"]);
  });

  it("keeps input order when items finish out of order", async () => {
    vi.useFakeTimers();
    const delays = [40, 10, 30, 20];
    const finished: number[] = [];
    const pipeline = new Pipeline([
      new Stage("wait", async (index: number) => {
        await sleep(delays[index] ?? 0);
        finished.push(index);
        if (index === 2) throw new Error("two");
        return index;
      }),
    ]);
    const result = observe(pipeline.mapSettled([0, 1, 2, 3], 4));
    await vi.advanceTimersByTimeAsync(40);
    expect(finished).toEqual([1, 3, 2, 0]);
    expect(result.status).toBe("fulfilled");
    expect(result.value?.map((entry) => entry.status)).toEqual([
      "fulfilled",
      "fulfilled",
      "rejected",
      "fulfilled",
    ]);
    expect(result.value?.[3]).toEqual({ status: "fulfilled", value: 3 });
  });

  it("does not stop at failures: every item runs", async () => {
    const { source, items } = (() => {
      const state = { pulled: 0 };
      function* generate(): Generator<number> {
        for (let index = 0; index < 10; index++) {
          state.pulled++;
          yield index;
        }
      }
      return { source: state, items: generate() };
    })();
    const handler = vi.fn((value: number): number => {
      throw new Error(`fail ${String(value)}`);
    });
    const pipeline = new Pipeline([new Stage("alwaysFails", handler)]);
    const settled = await pipeline.mapSettled(items, 2);
    expect(handler).toHaveBeenCalledTimes(10);
    expect(source.pulled).toBe(10);
    expect(settled.map((entry) => entry.status)).toEqual(Array(10).fill("rejected"));
  });

  it("respects the concurrency limit", async () => {
    vi.useFakeTimers();
    let inFlight = 0;
    let max = 0;
    const pipeline = new Pipeline([
      new Stage("work", async (value: number) => {
        inFlight++;
        max = Math.max(max, inFlight);
        await sleep(5 + (value % 3) * 4);
        inFlight--;
        if (value % 4 === 0) throw new Error("boom");
        return value;
      }),
    ]);
    const first = observe(pipeline.mapSettled(range(20), 3));
    await vi.runAllTimersAsync();
    expect(first.status).toBe("fulfilled");
    expect(max).toBe(3);

    max = 0;
    const second = observe(pipeline.mapSettled(range(20), { concurrency: 2 }));
    await vi.runAllTimersAsync();
    expect(second.status).toBe("fulfilled");
    expect(max).toBe(2);

    max = 0;
    const third = observe(pipeline.mapSettled(range(20)));
    await vi.runAllTimersAsync();
    expect(third.status).toBe("fulfilled");
    expect(max).toBe(5);

    max = 0;
    const fourth = observe(pipeline.mapSettled(range(20), 4, { concurrency: 1 }));
    await vi.runAllTimersAsync();
    expect(fourth.status).toBe("fulfilled");
    expect(max).toBe(4);
  });

  it("resolves [] for an empty input", async () => {
    const { pipeline } = evensOnly();
    async function* empty(): AsyncGenerator<number> {}
    await expect(pipeline.mapSettled([])).resolves.toEqual([]);
    await expect(pipeline.mapSettled(empty())).resolves.toEqual([]);
  });

  it("accepts a Set, a generator and an async generator", async () => {
    const { pipeline } = evensOnly();
    function* generate(): Generator<number> {
      yield 2;
      yield 3;
    }
    async function* generateAsync(): AsyncGenerator<number> {
      yield 4;
      await Promise.resolve();
      yield 5;
    }
    const statuses = (entries: PromiseSettledResult<number>[]): string[] =>
      entries.map((entry) => entry.status);
    expect(statuses(await pipeline.mapSettled(new Set([0, 1])))).toEqual(["fulfilled", "rejected"]);
    expect(statuses(await pipeline.mapSettled(generate()))).toEqual(["fulfilled", "rejected"]);
    expect(statuses(await pipeline.mapSettled(generateAsync()))).toEqual(["fulfilled", "rejected"]);
  });
});

describe("mapSettled: timeouts and retries", () => {
  it("records a timed-out item as rejected with a StageExecutionError wrapping a TimeoutError", async () => {
    vi.useFakeTimers();
    const pipeline = new Pipeline([
      new Stage(
        "maybeHangs",
        async (value: number) => {
          if (value === 1) return new Promise<number>(() => {});
          await sleep(50);
          return value;
        },
        { timeout: 100 },
      ),
    ]);
    const result = observe(pipeline.mapSettled([0, 1, 2], 3));
    await vi.advanceTimersByTimeAsync(99);
    expect(result.status).toBe("pending");
    await vi.advanceTimersByTimeAsync(1);
    expect(result.status).toBe("fulfilled");
    const settled = result.value ?? [];
    expect(settled[0]).toEqual({ status: "fulfilled", value: 0 });
    expect(settled[2]).toEqual({ status: "fulfilled", value: 2 });
    const reason = (settled[1] as PromiseRejectedResult).reason as StageExecutionError;
    expect(reason).toBeInstanceOf(StageExecutionError);
    expect(reason.stageName).toBe("maybeHangs");
    expect(reason.originalError).toBeInstanceOf(TimeoutError);
    expect((reason.originalError as TimeoutError).timeout).toBe(100);
    expect(vi.getTimerCount()).toBe(0);
  });

  it("retries items: a flaky item is fulfilled, an always-failing one is rejected after every attempt", async () => {
    vi.useFakeTimers();
    const attempts = new Map<number, number>();
    const pipeline = new Pipeline([
      new Stage(
        "flaky",
        async (value: number) => {
          const attempt = (attempts.get(value) ?? 0) + 1;
          attempts.set(value, attempt);
          if (value === 0 && attempt < 3) throw new Error(`attempt ${String(attempt)}`);
          if (value === 1) throw new Error(`never ${String(attempt)}`);
          return value;
        },
        { retries: 2, retryDelay: 100 },
      ),
    ]);
    const result = observe(pipeline.mapSettled([0, 1, 2]));
    await vi.advanceTimersByTimeAsync(199);
    expect(result.status).toBe("pending");
    await vi.advanceTimersByTimeAsync(1);
    expect(result.status).toBe("fulfilled");
    const settled = result.value ?? [];
    expect(settled[0]).toEqual({ status: "fulfilled", value: 0 });
    expect(settled[2]).toEqual({ status: "fulfilled", value: 2 });
    const reason = (settled[1] as PromiseRejectedResult).reason as StageExecutionError;
    expect(reason).toBeInstanceOf(StageExecutionError);
    expect(reason.attempts).toBe(3);
    expect((reason.originalError as Error).message).toBe("never 3");
    expect(attempts.get(0)).toBe(3);
    expect(attempts.get(1)).toBe(3);
    expect(attempts.get(2)).toBe(1);
  });

  it("retries a timed-out attempt", async () => {
    vi.useFakeTimers();
    let attempts = 0;
    const pipeline = new Pipeline([
      new Stage(
        "slowThenFast",
        async (value: number) => {
          attempts++;
          await sleep(attempts === 1 ? 1_000 : 10);
          return value;
        },
        { timeout: 50, retries: 1 },
      ),
    ]);
    const result = observe(pipeline.mapSettled([7]));
    await vi.advanceTimersByTimeAsync(60);
    expect(result).toMatchObject({
      status: "fulfilled",
      value: [{ status: "fulfilled", value: 7 }],
    });
    expect(attempts).toBe(2);
    await vi.runAllTimersAsync();
  });
});

describe("mapSettled: rejects only for the input, the caller's signal and bad arguments", () => {
  it("rejects with the error a sync generator throws", async () => {
    const { pipeline } = evensOnly();
    const broken = new Error("source broke");
    function* generate(): Generator<number> {
      yield 0;
      yield 1;
      throw broken;
    }
    await expect(pipeline.mapSettled(generate(), 1)).rejects.toBe(broken);
  });

  it("rejects with the error an async generator rejects with", async () => {
    const { pipeline } = evensOnly();
    const broken = new Error("stream broke");
    async function* generate(): AsyncGenerator<number> {
      yield 1;
      await Promise.resolve();
      throw broken;
    }
    await expect(pipeline.mapSettled(generate())).rejects.toBe(broken);
  });

  it("rejects with the reason of an already-aborted signal and runs nothing", async () => {
    const handler = vi.fn((value: number) => value);
    const pipeline = new Pipeline([new Stage("s", handler)]);
    const reason = new Error("already aborted");
    await expect(pipeline.mapSettled([1, 2], { signal: AbortSignal.abort(reason) })).rejects.toBe(
      reason,
    );
    expect(handler).not.toHaveBeenCalled();
  });

  it("rejects promptly with signal.reason when the caller aborts, starting nothing new and aborting in-flight signals", async () => {
    vi.useFakeTimers();
    const controller = new AbortController();
    const reason = new Error("cancelled");
    const signals: AbortSignal[] = [];
    let closed = false;
    function* generate(): Generator<number> {
      try {
        for (let index = 0; ; index++) yield index;
      } finally {
        closed = true;
      }
    }
    const pipeline = new Pipeline([
      new Stage("work", async (value: number, _context, call) => {
        signals.push(call.signal);
        await sleep(1_000);
        if (value === 0) throw new Error("would be recorded, not thrown");
        return value;
      }),
    ]);
    const result = observe(pipeline.mapSettled(generate(), 2, { signal: controller.signal }));
    await vi.advanceTimersByTimeAsync(100);
    controller.abort(reason);
    await vi.advanceTimersByTimeAsync(0);
    expect(result).toMatchObject({ status: "rejected", reason });
    expect(signals).toHaveLength(2);
    for (const signal of signals) expect(signal.reason).toBe(reason);
    expect(closed).toBe(true);
    await vi.advanceTimersByTimeAsync(5_000);
    expect(signals).toHaveLength(2);
    expect(abortListeners(controller.signal)).toBe(0);
  });

  it("leaves no listener on the caller's signal after it resolves", async () => {
    const controller = new AbortController();
    const { pipeline } = evensOnly();
    const settled = await pipeline.mapSettled(range(6), 2, { signal: controller.signal });
    expect(settled).toHaveLength(6);
    expect(abortListeners(controller.signal)).toBe(0);
  });

  it.each([
    ["concurrency 0", [[1], 0], RangeError, /concurrency must be at least 1/],
    ["concurrency -1", [[1], -1], RangeError, /concurrency must be at least 1/],
    ["concurrency 1.5", [[1], 1.5], RangeError, /concurrency must be an integer/],
    ["concurrency NaN", [[1], NaN], RangeError, /concurrency/],
    ['concurrency "5"', [[1], "5"], TypeError, /concurrency/],
    ["options.concurrency 0", [[1], { concurrency: 0 }], RangeError, /concurrency/],
    ["items null", [null], TypeError, /items/],
    ["items a number", [3], TypeError, /items/],
    ["a signal that is not an AbortSignal", [[1], { signal: {} }], TypeError, /signal/],
    ["options that are not an object", [[1], 2, 7], TypeError, /options/],
  ] as const)("rejects (does not throw) for %s", async (_label, args, type, message) => {
    const handler = vi.fn((value: number) => value);
    const pipeline = new Pipeline([new Stage("s", handler)]);
    const call = pipeline.mapSettled.bind(pipeline) as (...rest: unknown[]) => Promise<unknown>;
    let promise: Promise<unknown> | undefined;
    expect(() => {
      promise = call(...args);
    }).not.toThrow();
    const error: unknown = await promise?.then(
      () => undefined,
      (caught: unknown) => caught,
    );
    expect(error).toBeInstanceOf(type);
    expect((error as Error).message).toMatch(message);
    expect(handler).not.toHaveBeenCalled();
  });
});
