import { afterEach, describe, expect, it, vi } from "vitest";
import { Pipeline, Stage, StageExecutionError, type StageCall } from "../src/index.js";
import { counted, countedAsync, drain, range, type Source } from "./support/iterables.js";
import { never, observe } from "./support/promises.js";
import { abortListeners } from "./support/signals.js";
import { sleep } from "./support/time.js";

/** A one-stage pipeline that records calls, items in flight and each call's signal. */
function probe(delay: (value: number) => number = () => 10) {
  const state = {
    calls: [] as number[],
    inFlight: 0,
    max: 0,
    signals: new Map<number, AbortSignal>(),
  };
  const pipeline = new Pipeline([
    new Stage("probe", async (value: number, _context: object, call: StageCall) => {
      state.calls.push(value);
      state.signals.set(value, call.signal);
      state.inFlight++;
      state.max = Math.max(state.max, state.inFlight);
      try {
        await sleep(delay(value));
      } finally {
        state.inFlight--;
      }
      return value * 10;
    }),
  ]);
  return { pipeline, state };
}

afterEach(() => {
  vi.useRealTimers();
});

describe("stream: order", () => {
  it("yields in input order (the default) when items finish out of order", async () => {
    vi.useFakeTimers();
    const delays = [300, 100, 200, 50];
    const finished: number[] = [];
    const pipeline = new Pipeline([
      new Stage("wait", async (index: number) => {
        await sleep(delays[index] ?? 0);
        finished.push(index);
        return `item${String(index)}`;
      }),
    ]);
    const stream = pipeline.stream([0, 1, 2, 3], 4);
    const first = observe(stream.next());
    await vi.advanceTimersByTimeAsync(299);
    expect(finished).toEqual([3, 1, 2]);
    expect(first.status).toBe("pending");
    await vi.advanceTimersByTimeAsync(1);
    expect(finished).toEqual([3, 1, 2, 0]);
    expect(first).toMatchObject({ status: "fulfilled", value: { done: false, value: "item0" } });
    await expect(drain(stream)).resolves.toEqual(["item1", "item2", "item3"]);
  });

  it("keeps input order with a limited concurrency and `ordered: true`", async () => {
    vi.useFakeTimers();
    const { pipeline } = probe((value) => (value % 2 === 0 ? 50 : 5));
    const result = observe(drain(pipeline.stream(range(9), 2, { ordered: true })));
    await vi.runAllTimersAsync();
    expect(result).toMatchObject({ status: "fulfilled", value: range(9).map((n) => n * 10) });
  });

  it("yields in completion order with `ordered: false`", async () => {
    vi.useFakeTimers();
    const delays = [300, 100, 200, 50];
    const { pipeline } = probe((value) => delays[value] ?? 0);
    const stream = pipeline.stream([0, 1, 2, 3], 4, { ordered: false });
    const first = observe(stream.next());
    await vi.advanceTimersByTimeAsync(50);
    // The fastest item comes out first, while the slow ones still run.
    expect(first).toMatchObject({ status: "fulfilled", value: { done: false, value: 30 } });
    const rest = observe(drain(stream));
    await vi.advanceTimersByTimeAsync(250);
    expect(rest).toMatchObject({ status: "fulfilled", value: [10, 20, 0] });
  });

  it("yields in completion order with a limited concurrency (options object form)", async () => {
    vi.useFakeTimers();
    // concurrency 2: 0 (40 ms) and 1 (10 ms) start; 2 (10 ms) starts at 10 and ends at 20;
    // 3 (5 ms) starts at 20 and ends at 25; 0 ends at 40.
    const delays = [40, 10, 10, 5];
    const { pipeline } = probe((value) => delays[value] ?? 0);
    const result = observe(
      drain(pipeline.stream([0, 1, 2, 3], { concurrency: 2, ordered: false })),
    );
    await vi.runAllTimersAsync();
    expect(result).toMatchObject({ status: "fulfilled", value: [10, 20, 30, 0] });
  });

  it("runs every stage for each item, with sync and async handlers", async () => {
    const pipeline = new Pipeline([
      new Stage("parse", (line: string) => Number.parseInt(line, 10)),
      new Stage("square", async (value: number) => value * value),
      new Stage("format", (value: number) => `<${String(value)}>`),
    ]);
    await expect(drain(pipeline.stream(["1", "2", "3"], 2))).resolves.toEqual([
      "<1>",
      "<4>",
      "<9>",
    ]);
  });

  it("ends at once for an empty input without calling the handler", async () => {
    const handler = vi.fn((value: number) => value);
    const pipeline = new Pipeline([new Stage("s", handler)]);
    async function* emptyAsync(): AsyncGenerator<number> {}
    await expect(drain(pipeline.stream([]))).resolves.toEqual([]);
    await expect(drain(pipeline.stream(new Set<number>(), 3))).resolves.toEqual([]);
    await expect(drain(pipeline.stream(emptyAsync(), { ordered: false }))).resolves.toEqual([]);
    expect(handler).not.toHaveBeenCalled();
  });

  it("accepts a Set and a generator", async () => {
    const pipeline = new Pipeline([new Stage("double", async (value: number) => value * 2)]);
    await expect(drain(pipeline.stream(new Set([1, 2, 3]), 2))).resolves.toEqual([2, 4, 6]);
    const { source, items } = counted(3);
    await expect(drain(pipeline.stream(items, 2))).resolves.toEqual([0, 2, 4]);
    expect(source).toEqual({ pulled: 3, closed: true });
  });

  it("accepts an AsyncIterable (an async generator)", async () => {
    vi.useFakeTimers();
    const pipeline = new Pipeline([new Stage("double", async (value: number) => value * 2)]);
    async function* generate(): AsyncGenerator<number> {
      for (const value of [1, 2, 3, 4]) {
        await sleep(10);
        yield value;
      }
    }
    const result = observe(drain(pipeline.stream(generate(), 2)));
    await vi.runAllTimersAsync();
    expect(result).toMatchObject({ status: "fulfilled", value: [2, 4, 6, 8] });
  });

  it("accepts a custom AsyncIterable object, unordered", async () => {
    const values = [3, 2, 1];
    const custom: AsyncIterable<number> = {
      [Symbol.asyncIterator]() {
        let index = 0;
        return {
          next: async (): Promise<IteratorResult<number>> =>
            index < values.length
              ? { done: false, value: values[index++] ?? 0 }
              : { done: true, value: undefined },
        };
      },
    };
    const pipeline = new Pipeline([new Stage("double", (value: number) => value * 2)]);
    const outputs = await drain(pipeline.stream(custom, 2, { ordered: false }));
    expect(outputs.sort()).toEqual([2, 4, 6]);
  });

  it("is an async generator: nothing runs before the first next()", async () => {
    const { source, items } = counted(3);
    const handler = vi.fn((value: number) => value);
    const pipeline = new Pipeline([new Stage("s", handler)]);
    const stream = pipeline.stream(items);
    expect(typeof stream[Symbol.asyncIterator]).toBe("function");
    expect(stream[Symbol.asyncIterator]()).toBe(stream);
    await Promise.resolve();
    expect(source.pulled).toBe(0);
    expect(handler).not.toHaveBeenCalled();
    await expect(stream.next()).resolves.toEqual({ done: false, value: 0 });
  });
});

describe("stream: concurrency", () => {
  it.each([1, 3, 7, Infinity])("runs at most %d items at once", async (concurrency) => {
    vi.useFakeTimers();
    const { pipeline, state } = probe((value) => 10 + (value % 4) * 7);
    const result = observe(drain(pipeline.stream(range(20), concurrency)));
    await vi.runAllTimersAsync();
    expect(result).toMatchObject({ status: "fulfilled", value: range(20).map((n) => n * 10) });
    expect(state.max).toBe(Math.min(concurrency, 20));
  });

  it("runs 5 items at once by default", async () => {
    vi.useFakeTimers();
    const { pipeline, state } = probe();
    const result = observe(drain(pipeline.stream(range(12))));
    await vi.runAllTimersAsync();
    expect(result.status).toBe("fulfilled");
    expect(state.max).toBe(5);
  });

  it("uses the positional concurrency over options.concurrency", async () => {
    vi.useFakeTimers();
    const { pipeline, state } = probe();
    const result = observe(drain(pipeline.stream(range(10), 2, { concurrency: 8 })));
    await vi.runAllTimersAsync();
    expect(result.status).toBe("fulfilled");
    expect(state.max).toBe(2);
  });

  it("keeps `concurrency` items running while the consumer keeps up", async () => {
    vi.useFakeTimers();
    const { pipeline, state } = probe(() => 10);
    const stream = pipeline.stream(range(12), 3, { buffer: 0 });
    const result = observe(drain(stream));
    await vi.advanceTimersByTimeAsync(10);
    // 3 at a time, 10 ms each: 12 items take 40 ms.
    await vi.advanceTimersByTimeAsync(30);
    expect(result.status).toBe("fulfilled");
    expect(state.max).toBe(3);
  });
});

describe("stream: backpressure", () => {
  /**
   * Reads one result, then stops reading: the producer must stop pulling once
   * `concurrency + buffer` items are taken and not yet read.
   */
  it.each([
    { concurrency: 1, buffer: 0 },
    { concurrency: 3, buffer: 0 },
    { concurrency: 3, buffer: undefined },
    { concurrency: 2, buffer: 3 },
    { concurrency: 4, buffer: 3 },
  ])(
    "stops pulling a generator at read + concurrency + buffer ($concurrency, buffer $buffer)",
    async ({ concurrency, buffer }) => {
      vi.useFakeTimers();
      const limit = concurrency + (buffer ?? concurrency);
      const { source, items } = counted();
      const { pipeline, state } = probe(() => 10);
      const stream = pipeline.stream(items, concurrency, buffer === undefined ? {} : { buffer });
      const first = observe(stream.next());
      await vi.advanceTimersByTimeAsync(10_000);
      expect(first).toMatchObject({ status: "fulfilled", value: { done: false, value: 0 } });
      // One read: at most 1 + limit items taken, and the producer got that far.
      expect(source.pulled).toBe(1 + limit);
      expect(state.calls).toHaveLength(1 + limit);
      expect(state.max).toBeLessThanOrEqual(concurrency);
      expect(state.inFlight).toBe(0);
      await stream.return();
      expect(source.closed).toBe(true);
    },
  );

  it("resumes pulling when reading resumes, never more than read + limit ahead", async () => {
    vi.useFakeTimers();
    const concurrency = 2;
    const buffer = 1;
    const { source, items } = counted();
    const { pipeline } = probe(() => 10);
    const stream = pipeline.stream(items, concurrency, { buffer });
    let read = 0;
    const readOne = async (): Promise<void> => {
      const step = observe(stream.next());
      await vi.advanceTimersByTimeAsync(1_000);
      expect(step).toMatchObject({ status: "fulfilled", value: { done: false, value: read * 10 } });
      read++;
      expect(source.pulled).toBeLessThanOrEqual(read + concurrency + buffer);
    };
    await readOne();
    expect(source.pulled).toBe(4);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(source.pulled).toBe(4); // a consumer that does not read holds the producer
    await readOne();
    await readOne();
    await readOne();
    expect(source.pulled).toBeGreaterThan(4);
    expect(source.pulled).toBeLessThanOrEqual(read + concurrency + buffer);
    await stream.return();
    expect(source.closed).toBe(true);
  });

  it("holds the producer while a consumer awaits something else between reads", async () => {
    vi.useFakeTimers();
    const { source, items } = counted();
    const pipeline = new Pipeline([new Stage("id", (value: number) => value)]);
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const seen: number[] = [];
    const consumer = (async () => {
      for await (const value of pipeline.stream(items, 2, { buffer: 0 })) {
        seen.push(value);
        if (value === 0) await gate; // a manually controlled pause
        if (seen.length === 5) break;
      }
    })();
    await vi.advanceTimersByTimeAsync(100);
    expect(seen).toEqual([0]);
    expect(source.pulled).toBe(3);
    release();
    await consumer;
    expect(seen).toEqual([0, 1, 2, 3, 4]);
    expect(source.pulled).toBeLessThanOrEqual(5 + 2);
    expect(source.closed).toBe(true);
  });

  it("does not limit the producer with `buffer: Infinity`", async () => {
    vi.useFakeTimers();
    const { source, items } = counted(50);
    const pipeline = new Pipeline([new Stage("id", (value: number) => value)]);
    const stream = pipeline.stream(items, 2, { buffer: Infinity });
    await expect(stream.next()).resolves.toEqual({ done: false, value: 0 });
    await vi.advanceTimersByTimeAsync(0);
    expect(source.pulled).toBe(50);
    await expect(drain(stream)).resolves.toEqual(range(50).slice(1));
  });

  it("holds an unordered stream's producer too", async () => {
    vi.useFakeTimers();
    const { source, items } = counted();
    const { pipeline } = probe((value) => 10 + (value % 3));
    const stream = pipeline.stream(items, 3, { buffer: 2, ordered: false });
    const first = observe(stream.next());
    await vi.advanceTimersByTimeAsync(10_000);
    expect(first.status).toBe("fulfilled");
    expect(source.pulled).toBe(1 + 3 + 2);
    await stream.return();
  });

  // Regression: the stream kept one wake-up slot for workers blocked by the read-ahead window,
  // so all but the last blocked worker waited forever and the stream never ended.
  it("ends after a fast consumer drains an input longer than concurrency + buffer", async () => {
    const { source, items } = counted(6);
    const pipeline = new Pipeline([new Stage("id", (value: number) => value)]);
    const seen: number[] = [];
    // Awaited rather than given a few real milliseconds: a lost wake-up hangs here, and the test
    // times out, however busy the machine is.
    for await (const value of pipeline.stream(items, 2)) seen.push(value);
    expect(seen).toEqual(range(6));
    expect(source.closed).toBe(true);
  });

  // Regression: the same lost wake-ups, with a consumer slower than the producer.
  it("ends after a consumer slower than the producer has read every result", async () => {
    vi.useFakeTimers();
    const { source, items } = counted(20);
    const { pipeline } = probe(() => 10);
    const seen: number[] = [];
    const consumer = observe(
      (async () => {
        for await (const value of pipeline.stream(items, 3, { buffer: 0 })) {
          seen.push(value);
          await sleep(50); // slower than the items: the window fills and workers park
        }
      })(),
    );
    await vi.advanceTimersByTimeAsync(60_000);
    expect(seen).toEqual(range(20).map((n) => n * 10));
    expect(source.closed).toBe(true);
    expect(consumer.status).toBe("fulfilled");
  });

  // Regression: after the lost wake-ups only one worker was left, so concurrency fell to 1.
  it("keeps `concurrency` items running after the window was full", async () => {
    vi.useFakeTimers();
    const { pipeline, state } = probe(() => 10);
    const stream = pipeline.stream(range(100), 4, { buffer: 0 });
    const first = observe(stream.next());
    await vi.advanceTimersByTimeAsync(1_000); // the window fills: the 4 workers park
    expect(first.status).toBe("fulfilled");
    state.max = 0;
    void drain(stream);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(state.max).toBe(4);
  });

  it("stops pulling an async generator once the window is full", async () => {
    vi.useFakeTimers();
    const { source, items } = countedAsync();
    const { pipeline } = probe(() => 10);
    const stream = pipeline.stream(items, 1, { buffer: 0 });
    const first = observe(stream.next());
    await vi.advanceTimersByTimeAsync(10_000);
    expect(first.status).toBe("fulfilled");
    expect(source.pulled).toBeLessThanOrEqual(2);
    await stream.return();
    expect(source.closed).toBe(true);
  });

  // Regression: pulls from an async input under way were not counted against the read-ahead
  // window, so two workers could together pull one item too many.
  it.each([
    { concurrency: 2, buffer: 0 },
    { concurrency: 3, buffer: undefined },
    { concurrency: 4, buffer: 3 },
  ])(
    "stops pulling an async generator at read + concurrency + buffer ($concurrency, buffer $buffer)",
    async ({ concurrency, buffer }) => {
      vi.useFakeTimers();
      const limit = concurrency + (buffer ?? concurrency);
      const { source, items } = countedAsync();
      const pipeline = new Pipeline([new Stage("id", (value: number) => value)]);
      const stream = pipeline.stream(items, concurrency, buffer === undefined ? {} : { buffer });
      await expect(stream.next()).resolves.toEqual({ done: false, value: 0 });
      await vi.advanceTimersByTimeAsync(1_000);
      expect(source.pulled).toBeLessThanOrEqual(1 + limit);
    },
  );
});

describe("stream: stopping early", () => {
  it("a break waiting for an input that never answers ends when the caller's signal aborts", async () => {
    vi.useFakeTimers();
    const controller = new AbortController();
    // An async generator whose second pull never settles: its return() is queued behind that
    // pull, so closing it never settles either.
    async function* stuckGenerator(): AsyncGenerator<number> {
      yield 1;
      await never();
    }
    const stuck = stuckGenerator();
    const pipeline = new Pipeline([new Stage("same", (value: number) => value)]);
    const consume = async (): Promise<number[]> => {
      const seen: number[] = [];
      for await (const value of pipeline.stream(stuck, 1, { signal: controller.signal })) {
        seen.push(value);
        break;
      }
      return seen;
    };
    const outcome = observe(consume());
    await vi.advanceTimersByTimeAsync(25);
    expect(outcome.status).toBe("pending"); // the break waits for the pull under way
    const reason = new Error("cancelled");
    controller.abort(reason);
    await vi.advanceTimersByTimeAsync(0);
    expect(outcome.status).toBe("rejected");
    expect(outcome.reason).toBe(reason);
  });

  /** A pipeline whose item 0 finishes at once and the others hang until their signal aborts. */
  function hanging() {
    const state = { calls: [] as number[], signals: new Map<number, AbortSignal>() };
    const pipeline = new Pipeline([
      new Stage(
        "hang",
        (value: number, _context: object, call: StageCall): number | Promise<number> => {
          state.calls.push(value);
          state.signals.set(value, call.signal);
          return value === 0 ? 0 : never<number>();
        },
        { timeout: 60_000 },
      ),
    ]);
    return { pipeline, state };
  }

  function expectStopped(
    state: ReturnType<typeof hanging>["state"],
    source: Source,
    signal: AbortSignal,
  ): void {
    expect(source.closed).toBe(true);
    expect(abortListeners(signal)).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
    // Every item but the finished one had its call.signal aborted with an AbortError.
    for (const [value, itemSignal] of state.signals) {
      if (value === 0) continue;
      expect(itemSignal.aborted).toBe(true);
      expect(itemSignal.reason).toBeInstanceOf(DOMException);
      expect((itemSignal.reason as DOMException).name).toBe("AbortError");
    }
  }

  it("break aborts in-flight items, starts nothing new, closes the input, leaves nothing behind", async () => {
    vi.useFakeTimers();
    const { pipeline, state } = hanging();
    const { source, items } = counted();
    const controller = new AbortController();
    const seen: number[] = [];
    for await (const value of pipeline.stream(items, 3, { signal: controller.signal })) {
      seen.push(value);
      expect(abortListeners(controller.signal)).toBe(1);
      // The timeouts of items 1 to 3: one timer serves the deadlines of one duration.
      expect(vi.getTimerCount()).toBe(1);
      break;
    }
    expect(seen).toEqual([0]);
    expect(state.calls).toEqual([0, 1, 2, 3]);
    expect(state.signals.size).toBe(4);
    expectStopped(state, source, controller.signal);
    const pulled = source.pulled;
    await vi.advanceTimersByTimeAsync(120_000);
    expect(state.calls).toEqual([0, 1, 2, 3]);
    expect(source.pulled).toBe(pulled);
  });

  it("return() on the generator does the same", async () => {
    vi.useFakeTimers();
    const { pipeline, state } = hanging();
    const { source, items } = counted();
    const controller = new AbortController();
    const stream = pipeline.stream(items, 3, { signal: controller.signal });
    await expect(stream.next()).resolves.toEqual({ done: false, value: 0 });
    await expect(stream.return()).resolves.toEqual({ done: true, value: undefined });
    expectStopped(state, source, controller.signal);
    const calls = state.calls.length;
    await vi.advanceTimersByTimeAsync(120_000);
    expect(state.calls).toHaveLength(calls);
    await expect(stream.next()).resolves.toEqual({ done: true, value: undefined });
  });

  it("a throw in the loop body does the same and propagates", async () => {
    vi.useFakeTimers();
    const { pipeline, state } = hanging();
    const { source, items } = countedAsync();
    const controller = new AbortController();
    const oops = new Error("consumer failed");
    const consume = async (): Promise<void> => {
      for await (const value of pipeline.stream(items, 2, { signal: controller.signal })) {
        if (value === 0) throw oops;
      }
    };
    await expect(consume()).rejects.toBe(oops);
    await vi.advanceTimersByTimeAsync(0);
    expectStopped(state, source, controller.signal);
  });

  it("aborts handlers that honour call.signal (no timeout), whose timers then go away", async () => {
    vi.useFakeTimers();
    const reasons: unknown[] = [];
    const pipeline = new Pipeline([
      new Stage("wait", (value: number, _context: object, call: StageCall) => {
        if (value === 0) return Promise.resolve(0);
        return new Promise<number>((resolve, reject) => {
          const timer = setTimeout(() => {
            resolve(value);
          }, 1_000);
          call.signal.addEventListener("abort", () => {
            clearTimeout(timer);
            reasons.push(call.signal.reason);
            reject(call.signal.reason as Error);
          });
        });
      }),
    ]);
    const { source, items } = counted();
    for await (const value of pipeline.stream(items, 4)) {
      expect(value).toBe(0);
      break;
    }
    // Items 1 to 3 hung from the start; item 4 took item 0's worker.
    expect(reasons).toHaveLength(4);
    for (const reason of reasons) expect((reason as DOMException).name).toBe("AbortError");
    expect(source.closed).toBe(true);
    expect(vi.getTimerCount()).toBe(0);
  });

  it("leaves no listener on the caller's signal after a stream that ran to its end", async () => {
    const controller = new AbortController();
    const pipeline = new Pipeline([new Stage("s", async (value: number) => value)]);
    await expect(
      drain(pipeline.stream(range(5), 3, { signal: controller.signal })),
    ).resolves.toEqual(range(5));
    expect(abortListeners(controller.signal)).toBe(0);
  });

  it("return() before the first next() runs nothing", async () => {
    const { source, items } = counted();
    const handler = vi.fn((value: number) => value);
    const pipeline = new Pipeline([new Stage("s", handler)]);
    const stream = pipeline.stream(items);
    await expect(stream.return()).resolves.toEqual({ done: true, value: undefined });
    expect(handler).not.toHaveBeenCalled();
    expect(source.pulled).toBe(0);
  });
});

describe("stream: cancellation", () => {
  it("rejects the pending next() with the signal's reason and closes the input", async () => {
    vi.useFakeTimers();
    const { source, items } = counted();
    const { pipeline, state } = probe(() => 1_000);
    const controller = new AbortController();
    const stream = pipeline.stream(items, 2, { signal: controller.signal });
    const pending = observe(stream.next());
    await vi.advanceTimersByTimeAsync(100);
    expect(pending.status).toBe("pending");
    const reason = new Error("user left");
    controller.abort(reason);
    await vi.advanceTimersByTimeAsync(0);
    expect(pending).toMatchObject({ status: "rejected", reason });
    expect(pending.reason).toBe(reason);
    expect(source.closed).toBe(true);
    expect(abortListeners(controller.signal)).toBe(0);
    // The in-flight items' signals aborted with that reason.
    expect(state.signals.get(0)?.reason).toBe(reason);
    expect(state.signals.get(1)?.reason).toBe(reason);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(state.calls).toEqual([0, 1]);
    await expect(stream.next()).resolves.toEqual({ done: true, value: undefined });
  });

  it("rejects the next read with the reason when the signal aborts between reads", async () => {
    vi.useFakeTimers();
    const { source, items } = counted(10);
    const { pipeline } = probe(() => 10);
    const controller = new AbortController();
    const stream = pipeline.stream(items, 2, { signal: controller.signal });
    const first = observe(stream.next());
    await vi.advanceTimersByTimeAsync(100);
    expect(first).toMatchObject({ status: "fulfilled", value: { done: false, value: 0 } });
    // Results are ready, but cancellation wins over them.
    const reason = "stop";
    controller.abort(reason);
    await Promise.resolve();
    await expect(stream.next()).rejects.toBe(reason);
    expect(source.closed).toBe(true);
    await expect(stream.next()).resolves.toEqual({ done: true, value: undefined });
  });

  // Regression: cancellation must win over results already waiting, also for a next() called
  // synchronously after abort().
  it("rejects a next() called right after the signal aborts, with ready results", async () => {
    vi.useFakeTimers();
    const { pipeline } = probe(() => 10);
    const controller = new AbortController();
    const stream = pipeline.stream(range(10), 2, { signal: controller.signal });
    const first = observe(stream.next());
    await vi.advanceTimersByTimeAsync(100);
    expect(first.status).toBe("fulfilled");
    const reason = new Error("stop");
    controller.abort(reason);
    await expect(stream.next()).rejects.toBe(reason);
  });

  it("rejects when the loop body aborts the signal (for await)", async () => {
    vi.useFakeTimers();
    const { pipeline, state } = probe(() => 10);
    const controller = new AbortController();
    const reason = new Error("found it");
    const seen: number[] = [];
    const consume = observe(
      (async () => {
        for await (const value of pipeline.stream(range(100), 2, { signal: controller.signal })) {
          seen.push(value);
          if (value === 30) controller.abort(reason);
        }
      })(),
    );
    await vi.advanceTimersByTimeAsync(10_000);
    expect(consume.status).toBe("rejected");
    expect(consume.reason).toBe(reason);
    // At most one result that was already ready slips through (see the bug above).
    expect(seen.slice(0, 4)).toEqual([0, 10, 20, 30]);
    expect(seen.length).toBeLessThanOrEqual(5);
    expect(state.calls.length).toBeLessThanOrEqual(8);
  });

  it("rejects the first next() with the reason of an already-aborted signal, running nothing", async () => {
    const { source, items } = counted();
    const handler = vi.fn((value: number) => value);
    const pipeline = new Pipeline([new Stage("s", handler)]);
    const reason = new Error("too late");
    const signal = AbortSignal.abort(reason);
    const stream = pipeline.stream(items, 2, { signal });
    await expect(stream.next()).rejects.toBe(reason);
    expect(handler).not.toHaveBeenCalled();
    expect(source.pulled).toBe(0);
    expect(abortListeners(signal)).toBe(0);
    await expect(stream.next()).resolves.toEqual({ done: true, value: undefined });
  });

  it("rejects with the reason in settled mode too (cancellation is not an item failure)", async () => {
    vi.useFakeTimers();
    const { pipeline } = probe(() => 1_000);
    const controller = new AbortController();
    const stream = pipeline.stream(range(5), 2, { signal: controller.signal, settled: true });
    const pending = observe(stream.next());
    await vi.advanceTimersByTimeAsync(10);
    const reason = new Error("cancelled");
    controller.abort(reason);
    await vi.advanceTimersByTimeAsync(0);
    expect(pending.status).toBe("rejected");
    expect(pending.reason).toBe(reason);
  });
});

describe("stream: failures", () => {
  it("yields the results ready before the failure, then throws it; nothing new starts", async () => {
    vi.useFakeTimers();
    const boom = new Error("boom");
    const calls: number[] = [];
    const signals = new Map<number, AbortSignal>();
    const pipeline = new Pipeline([
      new Stage("work", async (value: number, _context: object, call: StageCall) => {
        calls.push(value);
        signals.set(value, call.signal);
        await sleep(value < 3 ? (value + 1) * 10 : 1_000);
        if (value === 2) throw boom;
        return value * 10;
      }),
    ]);
    const { source, items } = counted();
    const stream = pipeline.stream(items, 3);
    const first = observe(stream.next());
    // The consumer reads nothing until well after the failure at 30 ms.
    await vi.advanceTimersByTimeAsync(100);
    expect(first).toMatchObject({ status: "fulfilled", value: { done: false, value: 0 } });
    await expect(stream.next()).resolves.toEqual({ done: false, value: 10 });
    const error: unknown = await stream.next().then(
      () => undefined,
      (caught: unknown) => caught,
    );
    expect(error).toBeInstanceOf(StageExecutionError);
    expect((error as StageExecutionError).originalError).toBe(boom);
    expect((error as StageExecutionError).stageName).toBe("work");
    // Items 3 and 4 were in flight: their signals aborted with an AbortError (not with
    // another item's failure).
    expect(calls).toEqual([0, 1, 2, 3, 4]);
    for (const value of [3, 4]) {
      expect(signals.get(value)?.aborted).toBe(true);
      expect(signals.get(value)?.reason).toBeInstanceOf(DOMException);
      expect((signals.get(value)?.reason as DOMException).name).toBe("AbortError");
    }
    expect(source.closed).toBe(true);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(calls).toEqual([0, 1, 2, 3, 4]);
    await expect(stream.next()).resolves.toEqual({ done: true, value: undefined });
  });

  it("throws as soon as an item fails when an earlier one is still running (ordered)", async () => {
    vi.useFakeTimers();
    const delays = [100, 10, 20];
    const signals: AbortSignal[] = [];
    const pipeline = new Pipeline([
      new Stage("work", async (value: number, _context: object, call: StageCall) => {
        signals.push(call.signal);
        await sleep(delays[value] ?? 0);
        if (value === 2) throw new Error("two");
        return value;
      }),
    ]);
    const stream = pipeline.stream([0, 1, 2], 3);
    const first = observe(stream.next());
    await vi.advanceTimersByTimeAsync(20);
    expect(first.status).toBe("rejected");
    expect(first.reason).toBeInstanceOf(StageExecutionError);
    expect(signals[0]?.aborted).toBe(true);
    expect((signals[0]?.reason as DOMException).name).toBe("AbortError");
  });

  it("yields what finished before the failure in completion order with `ordered: false`", async () => {
    vi.useFakeTimers();
    const delays = [100, 10, 20, 30];
    const pipeline = new Pipeline([
      new Stage("work", async (value: number) => {
        await sleep(delays[value] ?? 0);
        if (value === 3) throw new RangeError("three");
        return value;
      }),
    ]);
    const seen: number[] = [];
    const consume = observe(
      (async () => {
        for await (const value of pipeline.stream([0, 1, 2, 3], 4, { ordered: false })) {
          seen.push(value);
        }
      })(),
    );
    await vi.advanceTimersByTimeAsync(1_000);
    expect(seen).toEqual([1, 2]);
    expect(consume.status).toBe("rejected");
    expect((consume.reason as StageExecutionError).originalError).toBeInstanceOf(RangeError);
  });

  it("throws the first failure when several items fail", async () => {
    vi.useFakeTimers();
    const errors: Error[] = [];
    const pipeline = new Pipeline([
      new Stage("check", async (value: number) => {
        await sleep(100 - value * 10);
        if (value >= 2) {
          const error = new Error(`item ${String(value)}`);
          errors.push(error);
          throw error;
        }
        return value;
      }),
    ]);
    const result = observe(drain(pipeline.stream(range(6), 6)));
    await vi.advanceTimersByTimeAsync(5_000);
    expect(result.status).toBe("rejected");
    expect(result.reason).toBeInstanceOf(StageExecutionError);
    // Item 5 fails first (50 ms); the others were aborted or ignored after it.
    expect((result.reason as StageExecutionError).originalError).toBe(errors[0]);
    expect((result.reason as StageExecutionError).stageName).toBe("check");
  });

  it("throws the error of an input iterable that throws", async () => {
    const boom = new Error("input broke");
    function* generate(): Generator<number> {
      yield 1;
      yield 2;
      throw boom;
    }
    const pipeline = new Pipeline([new Stage("s", async (value: number) => value)]);
    const seen: number[] = [];
    const consume = async (): Promise<void> => {
      for await (const value of pipeline.stream(generate(), 1)) seen.push(value);
    };
    await expect(consume()).rejects.toBe(boom);
    expect(seen).toEqual([1, 2]); // the results that were ready come first, as for a failure
  });

  it("throws the error of an async input that rejects, and of a [Symbol.iterator]() that throws", async () => {
    const boom = new Error("async input broke");
    async function* generate(): AsyncGenerator<number> {
      yield 1;
      throw boom;
    }
    const pipeline = new Pipeline([new Stage("s", (value: number) => value)]);
    await expect(drain(pipeline.stream(generate(), 2, { settled: true }))).rejects.toBe(boom);
    const broken = new TypeError("no iterator today");
    const items: Iterable<number> = {
      [Symbol.iterator]() {
        throw broken;
      },
    };
    await expect(pipeline.stream(items).next()).rejects.toBe(broken);
  });
});

describe("stream: settled", () => {
  it("yields one PromiseSettledResult per input, in input order, and goes past failures", async () => {
    vi.useFakeTimers();
    const errors = new Map<number, Error>();
    const pipeline = new Pipeline([
      new Stage("odd", async (value: number) => {
        await sleep(50 - value * 10);
        if (value % 2 === 1) {
          const error = new Error(`odd ${String(value)}`);
          errors.set(value, error);
          throw error;
        }
        return value * 10;
      }),
    ]);
    const result = observe(drain(pipeline.stream(range(5), 2, { settled: true })));
    await vi.runAllTimersAsync();
    expect(result.status).toBe("fulfilled");
    const entries = result.value ?? [];
    expect(entries).toHaveLength(5);
    expect(entries.map((entry) => entry.status)).toEqual([
      "fulfilled",
      "rejected",
      "fulfilled",
      "rejected",
      "fulfilled",
    ]);
    expect(entries[0]).toEqual({ status: "fulfilled", value: 0 });
    expect(entries[2]).toEqual({ status: "fulfilled", value: 20 });
    expect(entries[4]).toEqual({ status: "fulfilled", value: 40 });
    for (const index of [1, 3]) {
      const entry = entries[index];
      expect(entry?.status).toBe("rejected");
      if (entry?.status !== "rejected") continue;
      expect(entry.reason).toBeInstanceOf(StageExecutionError);
      expect((entry.reason as StageExecutionError).originalError).toBe(errors.get(index));
      expect(Object.keys(entry)).toEqual(["status", "reason"]);
    }
  });

  it("yields settled results in completion order with `ordered: false`", async () => {
    vi.useFakeTimers();
    const delays = [30, 10, 20];
    const pipeline = new Pipeline([
      new Stage("work", async (value: number) => {
        await sleep(delays[value] ?? 0);
        if (value === 1) throw new Error("one");
        return value;
      }),
    ]);
    const result = observe(drain(pipeline.stream([0, 1, 2], { settled: true, ordered: false })));
    await vi.runAllTimersAsync();
    expect(result.value?.map((entry) => entry.status)).toEqual([
      "rejected",
      "fulfilled",
      "fulfilled",
    ]);
    expect(result.value?.[1]).toEqual({ status: "fulfilled", value: 2 });
    expect(result.value?.[2]).toEqual({ status: "fulfilled", value: 0 });
  });

  it("keeps a failing item from stopping the others or closing the input early", async () => {
    const { source, items } = counted(6);
    // buffer 5: a window (7) larger than the input, to stay clear of the hang pinned in
    // "stream: backpressure".
    const pipeline = new Pipeline([
      new Stage("s", (value: number) => {
        if (value === 0) throw new Error("first");
        return value;
      }),
    ]);
    const entries = await drain(pipeline.stream(items, 2, { settled: true, buffer: 5 }));
    expect(entries).toHaveLength(6);
    expect(entries.filter((entry) => entry.status === "rejected")).toHaveLength(1);
    expect(source).toEqual({ pulled: 6, closed: true });
  });

  it("with `settled: false`, fails fast like the default", async () => {
    const pipeline = new Pipeline([
      new Stage("s", (value: number) => {
        if (value === 1) throw new Error("one");
        return value;
      }),
    ]);
    await expect(drain(pipeline.stream([0, 1, 2], 1, { settled: false }))).rejects.toBeInstanceOf(
      StageExecutionError,
    );
  });
});

describe("stream: context", () => {
  it("gives each item its own shallow copy of the template, prototype kept", async () => {
    class RequestContext {
      tenant = "acme";
      seen: number | undefined;
      shared: number[] = [];
      describe(): string {
        return `${this.tenant}:${String(this.seen)}`;
      }
    }
    const template = new RequestContext();
    const contexts: RequestContext[] = [];
    const pipeline = new Pipeline([
      new Stage("record", async (value: number, context: RequestContext) => {
        contexts.push(context);
        context.seen = value;
        context.shared.push(value);
        await Promise.resolve();
        return context.describe();
      }),
    ]);
    const outputs = await drain(pipeline.stream([1, 2, 3], 3, { context: template }));
    expect(outputs).toEqual(["acme:1", "acme:2", "acme:3"]);
    expect(new Set(contexts).size).toBe(3);
    for (const context of contexts) {
      expect(context).not.toBe(template);
      expect(context).toBeInstanceOf(RequestContext);
    }
    expect(template.seen).toBeUndefined();
    expect(template.shared.sort()).toEqual([1, 2, 3]); // a shallow copy shares nested objects
  });

  it("gives each item a new empty object without a template", async () => {
    const contexts: object[] = [];
    const pipeline = new Pipeline([
      new Stage("record", (value: number, context: Record<string, unknown>) => {
        contexts.push(context);
        expect(Object.keys(context)).toEqual([]);
        context.value = value;
        return value;
      }),
    ]);
    await drain(pipeline.stream([1, 2, 3]));
    expect(new Set(contexts).size).toBe(3);
  });
});

describe("stream: arguments", () => {
  const pipeline = new Pipeline([new Stage("s", (value: number) => value)]);

  it.each([
    [
      "concurrency 0",
      () => pipeline.stream([1], 0),
      RangeError,
      /concurrency must be at least 1, got 0/,
    ],
    [
      "concurrency 1.5",
      () => pipeline.stream([1], { concurrency: 1.5 }),
      RangeError,
      /concurrency/,
    ],
    ["concurrency NaN", () => pipeline.stream([1], Number.NaN), RangeError, /concurrency/],
    [
      "concurrency '2'",
      () => pipeline.stream([1], { concurrency: "2" as never }),
      TypeError,
      /concurrency/,
    ],
    [
      "buffer -1",
      () => pipeline.stream([1], 2, { buffer: -1 }),
      RangeError,
      /buffer must be greater than or equal to 0, got -1/,
    ],
    ["buffer 1.5", () => pipeline.stream([1], 2, { buffer: 1.5 }), RangeError, /buffer.*1\.5/],
    [
      "buffer NaN",
      () => pipeline.stream([1], 2, { buffer: Number.NaN }),
      RangeError,
      /buffer.*NaN/,
    ],
    [
      "buffer '3'",
      () => pipeline.stream([1], 2, { buffer: "3" as never }),
      TypeError,
      /buffer must be a number/,
    ],
    [
      "ordered 'yes'",
      () => pipeline.stream([1], 2, { ordered: "yes" as never }),
      TypeError,
      /ordered must be a boolean, got "yes"/,
    ],
    [
      "settled 1",
      () => pipeline.stream([1], 2, { settled: 1 as never }),
      TypeError,
      /settled must be a boolean, got 1/,
    ],
    [
      "concurrency null",
      () => pipeline.stream([1], null as never),
      TypeError,
      /concurrency must be a number, got null/,
    ],
    [
      "items null",
      () => pipeline.stream(null as never),
      TypeError,
      /items must be an Iterable or an AsyncIterable/,
    ],
    ["items 42", () => pipeline.stream(42 as never), TypeError, /items/],
    [
      "options 'fast'",
      () => pipeline.stream([1], 2, "fast" as never),
      TypeError,
      /options must be an object/,
    ],
    [
      "signal {}",
      () => pipeline.stream([1], { signal: {} as never }),
      TypeError,
      /signal must be an AbortSignal/,
    ],
    [
      "context 1",
      () => pipeline.stream([1], { context: 1 as never }),
      TypeError,
      /context must be an object/,
    ],
    [
      "onProgress 1",
      () => pipeline.stream([1], { onProgress: 1 as never }),
      TypeError,
      /onProgress must be a function/,
    ],
  ] as const)("%s: the first next() rejects", async (_name, make, type, message) => {
    let stream: AsyncGenerator | undefined;
    expect(() => {
      stream = make();
    }).not.toThrow();
    const error: unknown = await stream!.next().then(
      () => undefined,
      (caught: unknown) => caught,
    );
    expect(error).toBeInstanceOf(type);
    expect((error as Error).message).toMatch(message);
    await expect(stream!.next()).resolves.toEqual({ done: true, value: undefined });
  });

  it("accepts buffer 0, buffer Infinity, concurrency Infinity and explicit undefined options", async () => {
    await expect(drain(pipeline.stream([1, 2], 1, { buffer: 0 }))).resolves.toEqual([1, 2]);
    await expect(drain(pipeline.stream([1, 2], Infinity, { buffer: Infinity }))).resolves.toEqual([
      1, 2,
    ]);
    await expect(
      drain(
        pipeline.stream([1, 2], undefined, {
          buffer: undefined,
          ordered: undefined,
          settled: undefined,
          concurrency: undefined,
        }),
      ),
    ).resolves.toEqual([1, 2]);
  });

  // Regression: a `buffer` of the wrong type was reported by its typeof, not its value.
  it("names the value of a buffer of the wrong type", async () => {
    await expect(pipeline.stream([1], 2, { buffer: "3" as never }).next()).rejects.toThrow(
      'buffer must be a number, got "3"',
    );
  });

  it("does not touch the input when an argument is bad", async () => {
    const { source, items } = counted();
    await expect(pipeline.stream(items, 2, { buffer: -1 }).next()).rejects.toBeInstanceOf(
      RangeError,
    );
    expect(source.pulled).toBe(0);
  });
});

describe("stream: many results waiting", () => {
  it("yields every result once, in completion order, when thousands wait to be read", async () => {
    const pipeline = new Pipeline([new Stage("id", async (value: number) => value)]);
    const stream = pipeline.stream(range(5_000), 50, { ordered: false, buffer: Infinity });
    const first = await stream.next();
    // Let every item finish before reading the rest: they all wait in the queue.
    await new Promise((resolve) => setTimeout(resolve, 50));
    const rest = await drain(stream);
    const all = [first.value as number, ...rest];
    expect(all).toHaveLength(5_000);
    expect([...all].sort((a, b) => a - b)).toEqual(range(5_000));
  });
});
