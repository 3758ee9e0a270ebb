import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it, vi } from "vitest";
import {
  Pipeline,
  Stage,
  StageExecutionError,
  TimeoutError,
  type Context,
  type StageCall,
} from "../src/index.js";
import { counted, range } from "./support/iterables.js";
import { observe } from "./support/promises.js";
import { abortListeners } from "./support/signals.js";
import { sleep } from "./support/time.js";

/** A one-stage pipeline that records how many items run at once. */
function probe(delay: (value: number) => number = (value) => 10 + (value % 4) * 7) {
  const state = { inFlight: 0, max: 0, calls: 0 };
  const pipeline = new Pipeline([
    new Stage("probe", async (value: number) => {
      state.calls++;
      state.inFlight++;
      state.max = Math.max(state.max, state.inFlight);
      await sleep(delay(value));
      state.inFlight--;
      return value * 10;
    }),
  ]);
  return { pipeline, state };
}

afterEach(() => {
  vi.useRealTimers();
});

describe("map: results", () => {
  it("resolves the outputs in input order when items finish out of order", async () => {
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
    const result = observe(pipeline.map([0, 1, 2, 3], 4));
    await vi.advanceTimersByTimeAsync(299);
    expect(result.status).toBe("pending");
    await vi.advanceTimersByTimeAsync(1);
    expect(finished).toEqual([3, 1, 2, 0]);
    expect(result).toMatchObject({
      status: "fulfilled",
      value: ["item0", "item1", "item2", "item3"],
    });
  });

  it("keeps input order with a limited concurrency too", async () => {
    vi.useFakeTimers();
    const { pipeline } = probe((value) => (value % 2 === 0 ? 50 : 5));
    const result = observe(pipeline.map(range(9), 2));
    await vi.runAllTimersAsync();
    expect(result).toMatchObject({ status: "fulfilled", value: range(9).map((n) => n * 10) });
  });

  it("runs every stage of the pipeline for each item", async () => {
    const pipeline = new Pipeline([
      new Stage("parse", (line: string) => Number.parseInt(line, 10)),
      new Stage("square", async (value: number) => value * value),
      new Stage("format", (value: number) => `<${String(value)}>`),
    ]);
    await expect(pipeline.map(["1", "2", "3"], 2)).resolves.toEqual(["<1>", "<4>", "<9>"]);
  });

  it("works with synchronous handlers", async () => {
    const pipeline = new Pipeline([new Stage("double", (value: number) => value * 2)]);
    await expect(pipeline.map([1, 2, 3])).resolves.toEqual([2, 4, 6]);
  });

  it("resolves [] for an empty input without calling the handler", async () => {
    const handler = vi.fn((value: number) => value);
    const pipeline = new Pipeline([new Stage("s", handler)]);
    async function* emptyAsync(): AsyncGenerator<number> {}
    function* emptySync(): Generator<number> {}
    await expect(pipeline.map([])).resolves.toEqual([]);
    await expect(pipeline.map(new Set<number>(), 3)).resolves.toEqual([]);
    await expect(pipeline.map(emptySync())).resolves.toEqual([]);
    await expect(pipeline.map(emptyAsync(), { concurrency: 2 })).resolves.toEqual([]);
    expect(handler).not.toHaveBeenCalled();
  });

  it("returns a new array each call", async () => {
    const pipeline = new Pipeline([new Stage("s", (value: number) => value)]);
    const first = await pipeline.map([1]);
    const second = await pipeline.map([1]);
    expect(first).not.toBe(second);
  });
});

describe("map: any Iterable or AsyncIterable", () => {
  const pipeline = new Pipeline([new Stage("double", async (value: number) => value * 2)]);

  it("accepts a Set", async () => {
    await expect(pipeline.map(new Set([1, 2, 3]), 2)).resolves.toEqual([2, 4, 6]);
  });

  // The results of an input of unknown size are written as items settle, out of order: no
  // hole and no extra slot may be left, whatever the count and the completion order.
  it.each([0, 1, 15, 16, 17, 100, 1_000])(
    "returns a dense array of exactly the item count over a generator (%i items)",
    async (count) => {
      function* generate(): Generator<number> {
        for (let index = 0; index < count; index++) yield index;
      }
      // Later items finish first within each group of concurrent ones.
      const stage = new Stage("reversed", async (value: number) => {
        for (let turn = 0; turn < 8 - (value % 8); turn++) await Promise.resolve();
        return value * 2;
      });
      for (const settled of [false, true]) {
        const pipeline = new Pipeline([stage]);
        const results = settled
          ? (await pipeline.mapSettled(generate(), 8)).map(
              (result) => (result as PromiseFulfilledResult<number>).value,
            )
          : await pipeline.map(generate(), 8);
        expect(results).toHaveLength(count);
        expect(Object.keys(results)).toHaveLength(count);
        expect(results).toStrictEqual(Array.from({ length: count }, (_, index) => index * 2));
      }
    },
  );

  it("accepts a generator", async () => {
    function* generate(): Generator<number> {
      yield 1;
      yield 2;
      yield 3;
    }
    await expect(pipeline.map(generate(), 2)).resolves.toEqual([2, 4, 6]);
  });

  it("accepts a Map's keys and a custom iterable object", async () => {
    const custom: Iterable<number> = {
      *[Symbol.iterator]() {
        yield 5;
        yield 6;
      },
    };
    await expect(pipeline.map(new Map([[7, "a"]]).keys())).resolves.toEqual([14]);
    await expect(pipeline.map(custom)).resolves.toEqual([10, 12]);
  });

  it("accepts an async generator", async () => {
    vi.useFakeTimers();
    async function* generate(): AsyncGenerator<number> {
      for (const value of [1, 2, 3, 4]) {
        await sleep(10);
        yield value;
      }
    }
    const result = observe(pipeline.map(generate(), 2));
    await vi.runAllTimersAsync();
    expect(result).toMatchObject({ status: "fulfilled", value: [2, 4, 6, 8] });
  });

  it("accepts a custom AsyncIterable object", async () => {
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
    await expect(pipeline.map(custom, 2)).resolves.toEqual([6, 4, 2]);
  });
});

describe("map: concurrency", () => {
  it.each([1, 3, 7, Infinity])("runs at most %d items at once", async (concurrency) => {
    vi.useFakeTimers();
    const { pipeline, state } = probe();
    const result = observe(pipeline.map(range(20), concurrency));
    await vi.runAllTimersAsync();
    expect(result).toMatchObject({ status: "fulfilled", value: range(20).map((n) => n * 10) });
    expect(state.max).toBe(Math.min(concurrency, 20));
    expect(state.calls).toBe(20);
  });

  it("starts every item at once with Infinity", async () => {
    vi.useFakeTimers();
    const { pipeline, state } = probe(() => 100);
    const result = observe(pipeline.map(range(50), Infinity));
    await vi.advanceTimersByTimeAsync(0);
    expect(state.inFlight).toBe(50);
    await vi.advanceTimersByTimeAsync(100);
    expect(result.status).toBe("fulfilled");
  });

  it("defaults to 5", async () => {
    vi.useFakeTimers();
    const { pipeline, state } = probe();
    const result = observe(pipeline.map(range(20)));
    await vi.runAllTimersAsync();
    expect(result.status).toBe("fulfilled");
    expect(state.max).toBe(5);
  });

  it("defaults to 5 when the concurrency is undefined or the options have none", async () => {
    vi.useFakeTimers();
    const first = probe();
    const second = probe();
    const third = probe();
    void first.pipeline.map(range(20), undefined);
    void second.pipeline.map(range(20), {});
    void third.pipeline.map(range(20), undefined, { context: {} });
    await vi.runAllTimersAsync();
    expect([first.state.max, second.state.max, third.state.max]).toEqual([5, 5, 5]);
    expect([first.state.calls, second.state.calls, third.state.calls]).toEqual([20, 20, 20]);
  });

  it("takes the concurrency from the options in the options-only form", async () => {
    vi.useFakeTimers();
    const { pipeline, state } = probe();
    const result = observe(pipeline.map(range(20), { concurrency: 2 }));
    await vi.runAllTimersAsync();
    expect(result.status).toBe("fulfilled");
    expect(state.max).toBe(2);
  });

  it("takes the options' concurrency when the positional one is undefined", async () => {
    vi.useFakeTimers();
    const { pipeline, state } = probe();
    const result = observe(pipeline.map(range(20), undefined, { concurrency: 4 }));
    await vi.runAllTimersAsync();
    expect(result.status).toBe("fulfilled");
    expect(state.max).toBe(4);
  });

  it("lets the positional concurrency win over options.concurrency", async () => {
    vi.useFakeTimers();
    const low = probe();
    const high = probe();
    void low.pipeline.map(range(20), 2, { concurrency: 8 });
    void high.pipeline.map(range(20), 8, { concurrency: 2 });
    await vi.runAllTimersAsync();
    expect(low.state.max).toBe(2);
    expect(high.state.max).toBe(8);
  });

  it("starts the next item as soon as one finishes", async () => {
    vi.useFakeTimers();
    const started: number[] = [];
    const delays = [100, 10, 100, 100];
    const pipeline = new Pipeline([
      new Stage("wait", async (index: number) => {
        started.push(index);
        await sleep(delays[index] ?? 0);
        return index;
      }),
    ]);
    void pipeline.map([0, 1, 2, 3], 2);
    await vi.advanceTimersByTimeAsync(0);
    expect(started).toEqual([0, 1]);
    await vi.advanceTimersByTimeAsync(10);
    expect(started).toEqual([0, 1, 2]);
    await vi.advanceTimersByTimeAsync(90);
    expect(started).toEqual([0, 1, 2, 3]);
    await vi.runAllTimersAsync();
  });
});

describe("map: lazy consumption", () => {
  it.each([1, 3])(
    "never pulls more than %d items ahead of those finished from a generator",
    async (concurrency) => {
      vi.useFakeTimers();
      let pulled = 0;
      let finished = 0;
      let maxAhead = 0;
      function* generate(): Generator<number> {
        for (let index = 0; index < 30; index++) {
          pulled++;
          maxAhead = Math.max(maxAhead, pulled - finished);
          yield index;
        }
      }
      const pipeline = new Pipeline([
        new Stage("work", async (value: number) => {
          await sleep(5 + (value % 3) * 10);
          finished++;
          return value;
        }),
      ]);
      const result = observe(pipeline.map(generate(), concurrency));
      await vi.advanceTimersByTimeAsync(0);
      expect(pulled).toBe(concurrency);
      await vi.runAllTimersAsync();
      expect(result).toMatchObject({ status: "fulfilled", value: range(30) });
      expect(maxAhead).toBe(concurrency);
    },
  );

  it("never pulls more than concurrency items ahead from an async generator", async () => {
    vi.useFakeTimers();
    const concurrency = 4;
    let pulled = 0;
    let finished = 0;
    let maxAhead = 0;
    async function* generate(): AsyncGenerator<number> {
      for (let index = 0; index < 30; index++) {
        await sleep(1);
        pulled++;
        maxAhead = Math.max(maxAhead, pulled - finished);
        yield index;
      }
    }
    const pipeline = new Pipeline([
      new Stage("work", async (value: number) => {
        await sleep(20 + (value % 5) * 3);
        finished++;
        return value;
      }),
    ]);
    const result = observe(pipeline.map(generate(), concurrency));
    await vi.runAllTimersAsync();
    expect(result).toMatchObject({ status: "fulfilled", value: range(30) });
    expect(maxAhead).toBe(concurrency);
  });

  it("pulls only what it needs from an endless generator before it is stopped", async () => {
    vi.useFakeTimers();
    const { source, items } = counted();
    const controller = new AbortController();
    const pipeline = new Pipeline([
      new Stage("work", async (value: number) => {
        await sleep(10);
        return value;
      }),
    ]);
    const result = observe(pipeline.map(items, 2, { signal: controller.signal }));
    await vi.advanceTimersByTimeAsync(55);
    expect(source.pulled).toBe(12);
    controller.abort(new Error("enough"));
    await vi.advanceTimersByTimeAsync(0);
    expect(result.status).toBe("rejected");
  });
});

describe("map: an input iterable that throws", () => {
  const pipeline = new Pipeline([new Stage("s", async (value: number) => value)]);

  it("rejects with the error a sync generator throws", async () => {
    const broken = new Error("source broke");
    function* generate(): Generator<number> {
      yield 1;
      yield 2;
      throw broken;
    }
    await expect(pipeline.map(generate(), 1)).rejects.toBe(broken);
  });

  it("rejects with the error a sync generator throws before its first item", async () => {
    const broken = new Error("nothing to give");
    function* generate(): Generator<number> {
      yield* [];
      throw broken;
    }
    await expect(pipeline.map(generate())).rejects.toBe(broken);
  });

  it("rejects with the error an async generator rejects with", async () => {
    const broken = new Error("stream broke");
    async function* generate(): AsyncGenerator<number> {
      yield 1;
      await Promise.resolve();
      throw broken;
    }
    await expect(pipeline.map(generate(), 2)).rejects.toBe(broken);
  });

  it("rejects with the error [Symbol.iterator]() throws", async () => {
    const broken = new Error("cannot iterate");
    const items: Iterable<number> = {
      [Symbol.iterator]() {
        throw broken;
      },
    };
    await expect(pipeline.map(items)).rejects.toBe(broken);
  });

  it("rejects with a non-Error value thrown by the source as is", async () => {
    function* generate(): Generator<number> {
      yield 1;
      throw "plain";
    }
    await expect(pipeline.map(generate(), 1)).rejects.toBe("plain");
  });

  // Regression: an iterator whose next() returns a non-object (a protocol violation that
  // for...of reports with a TypeError) used to make every worker throw outside its try/catch,
  // restart forever and hang the process. The child process bounds the loop by throwing after
  // 1,000 calls.
  it(
    "rejects with a TypeError when the iterator's next() returns a non-object",
    { timeout: 30_000 },
    () => {
      const index = fileURLToPath(new URL("../src/index.ts", import.meta.url));
      const code = `
        const { Pipeline, Stage } = await import(${JSON.stringify(index)});
        let calls = 0;
        let unhandled = 0;
        process.on("unhandledRejection", () => { unhandled++; });
        const items = { [Symbol.iterator]() { return { next() {
          calls++;
          if (calls > 1000) throw new Error("escaped");
          return undefined;
        } }; } };
        const pipeline = new Pipeline([new Stage("s", async (value) => value)]);
        const outcome = await pipeline.map(items, 1).then(
          () => "resolved",
          (error) => String(error && error.name),
        );
        await new Promise((resolve) => setTimeout(resolve, 10));
        console.log(JSON.stringify({ outcome, calls, unhandled }));
      `;
      const child = spawnSync(
        process.execPath,
        ["--import", "tsx", "--input-type=module", "-e", code],
        {
          cwd: fileURLToPath(new URL("..", import.meta.url)),
          encoding: "utf8",
          timeout: 20_000,
        },
      );
      expect(child.status).toBe(0);
      const report = JSON.parse(child.stdout.trim()) as {
        outcome: string;
        calls: number;
        unhandled: number;
      };
      expect(report).toEqual({ outcome: "TypeError", calls: 1, unhandled: 0 });
    },
  );
});

describe("map: fails fast", () => {
  it("rejects with the failing item's StageExecutionError", async () => {
    const boom = new Error("item 2 failed");
    const pipeline = new Pipeline([
      new Stage("ok", (value: number) => value),
      new Stage("check", async (value: number) => {
        if (value === 2) throw boom;
        return value;
      }),
    ]);
    const error: unknown = await pipeline.map([1, 2, 3], 1).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(StageExecutionError);
    expect((error as StageExecutionError).stageName).toBe("check");
    expect((error as StageExecutionError).originalError).toBe(boom);
  });

  it("rejects with the first failure in completion order, not input order", async () => {
    vi.useFakeTimers();
    const pipeline = new Pipeline([
      new Stage("fail", async (value: number): Promise<number> => {
        await sleep(value === 0 ? 50 : 10);
        throw new Error(`item ${String(value)}`);
      }),
    ]);
    const result = observe(pipeline.map([0, 1], 2));
    await vi.advanceTimersByTimeAsync(10);
    expect(result.status).toBe("rejected");
    expect(((result.reason as StageExecutionError).originalError as Error).message).toBe("item 1");
    await vi.runAllTimersAsync();
  });

  it("rejects promptly even while other items ignore their signals", async () => {
    vi.useFakeTimers();
    const boom = new Error("boom");
    const pipeline = new Pipeline([
      new Stage("s", async (value: number) => {
        await sleep(value === 1 ? 10 : 10_000);
        if (value === 1) throw boom;
        return value;
      }),
    ]);
    const result = observe(pipeline.map([0, 1, 2], 3));
    await vi.advanceTimersByTimeAsync(10);
    expect(result.status).toBe("rejected");
    expect((result.reason as StageExecutionError).originalError).toBe(boom);
    await vi.runAllTimersAsync();
  });

  it("starts nothing new, aborts in-flight items' signals and closes the source", async () => {
    vi.useFakeTimers();
    const { source, items } = counted();
    const signals: AbortSignal[] = [];
    const boom = new Error("boom");
    const pipeline = new Pipeline([
      new Stage("work", async (value: number, _context, call) => {
        signals.push(call.signal);
        await sleep(value === 1 ? 10 : 100);
        if (value === 1) throw boom;
        return value;
      }),
    ]);
    const result = observe(pipeline.map(items, 3));
    await vi.advanceTimersByTimeAsync(9);
    expect(signals).toHaveLength(3);
    expect(signals.some((signal) => signal.aborted)).toBe(false);

    await vi.advanceTimersByTimeAsync(1);
    expect(result.status).toBe("rejected");
    expect((result.reason as StageExecutionError).originalError).toBe(boom);
    expect(signals[0]?.aborted).toBe(true);
    expect(signals[2]?.aborted).toBe(true);
    expect(source.closed).toBe(true);

    await vi.advanceTimersByTimeAsync(10_000);
    expect(signals).toHaveLength(3);
    expect(source.pulled).toBe(3);
  });

  it("fails fast on a synchronous throw too", async () => {
    const { source, items } = counted();
    let calls = 0;
    const pipeline = new Pipeline([
      new Stage("work", (value: number) => {
        calls++;
        if (value === 4) throw new Error("sync boom");
        return value;
      }),
    ]);
    await expect(pipeline.map(items, 1)).rejects.toBeInstanceOf(StageExecutionError);
    expect(calls).toBe(5);
    expect(source.pulled).toBe(5);
    expect(source.closed).toBe(true);
  });

  it("closes an async generator source (its finally block runs)", async () => {
    vi.useFakeTimers();
    let closed = false;
    let pulled = 0;
    async function* generate(): AsyncGenerator<number> {
      try {
        for (let index = 0; ; index++) {
          pulled++;
          yield index;
        }
      } finally {
        closed = true;
      }
    }
    const pipeline = new Pipeline([
      new Stage("work", async (value: number) => {
        await sleep(10);
        if (value === 2) throw new Error("boom");
        return value;
      }),
    ]);
    const result = observe(pipeline.map(generate(), 2));
    await vi.runAllTimersAsync();
    expect(result.status).toBe("rejected");
    expect(closed).toBe(true);
    const pulledAtFailure = pulled;
    await vi.advanceTimersByTimeAsync(1_000);
    expect(pulled).toBe(pulledAtFailure);
    expect(pulled).toBeLessThanOrEqual(4);
  });

  it("leaves no listener on the caller's signal after a failure", async () => {
    vi.useFakeTimers();
    const controller = new AbortController();
    const pipeline = new Pipeline([
      new Stage(
        "work",
        async (value: number) => {
          await sleep(value * 10);
          if (value === 2) throw new Error("boom");
          return value;
        },
        { timeout: 1_000 },
      ),
    ]);
    const result = observe(pipeline.map(range(10), 3, { signal: controller.signal }));
    await vi.runAllTimersAsync();
    expect(result.status).toBe("rejected");
    expect(abortListeners(controller.signal)).toBe(0);
  });
});

describe("map: the caller's signal", () => {
  it("rejects with the reason of an already-aborted signal and pulls nothing", async () => {
    const { source, items } = counted();
    const handler = vi.fn((value: number) => value);
    const pipeline = new Pipeline([new Stage("s", handler)]);
    const reason = new Error("too late");
    await expect(pipeline.map(items, 2, { signal: AbortSignal.abort(reason) })).rejects.toBe(
      reason,
    );
    expect(handler).not.toHaveBeenCalled();
    expect(source.pulled).toBe(0);
  });

  it("rejects promptly with signal.reason, starts nothing new, aborts in-flight signals and closes the source", async () => {
    vi.useFakeTimers();
    const { source, items } = counted();
    const controller = new AbortController();
    const reason = new Error("user cancelled");
    const signals: AbortSignal[] = [];
    const pipeline = new Pipeline([
      new Stage("work", async (value: number, _context, call) => {
        signals.push(call.signal);
        await sleep(1_000);
        return value;
      }),
    ]);
    const result = observe(pipeline.map(items, 3, { signal: controller.signal }));
    await vi.advanceTimersByTimeAsync(100);
    expect(signals).toHaveLength(3);
    expect(result.status).toBe("pending");

    controller.abort(reason);
    await vi.advanceTimersByTimeAsync(0);
    expect(result).toMatchObject({ status: "rejected", reason });
    for (const signal of signals) {
      expect(signal.aborted).toBe(true);
      expect(signal.reason).toBe(reason);
    }
    expect(source.closed).toBe(true);

    await vi.advanceTimersByTimeAsync(10_000);
    expect(signals).toHaveLength(3);
    expect(source.pulled).toBe(3);
    expect(abortListeners(controller.signal)).toBe(0);
  });

  it("rejects with signal.reason, not a wrapped error, when in-flight items honour their signals", async () => {
    vi.useFakeTimers();
    const controller = new AbortController();
    const reason = new Error("stop");
    const pipeline = new Pipeline([
      new Stage(
        "honours",
        (_value: number, _context, call) =>
          new Promise<number>((_resolve, reject) => {
            call.signal.addEventListener(
              "abort",
              () => {
                reject(call.signal.reason as Error);
              },
              { once: true },
            );
          }),
        { retries: 2 },
      ),
    ]);
    const result = observe(pipeline.map([1, 2], { signal: controller.signal }));
    await vi.advanceTimersByTimeAsync(10);
    controller.abort(reason);
    await vi.advanceTimersByTimeAsync(0);
    expect(result).toMatchObject({ status: "rejected", reason });
  });

  it("leaves no listener on the caller's signal after success", async () => {
    vi.useFakeTimers();
    const controller = new AbortController();
    let maxListeners = 0;
    const pipeline = new Pipeline([
      new Stage(
        "work",
        async (value: number) => {
          await sleep(5);
          maxListeners = Math.max(maxListeners, abortListeners(controller.signal));
          return value;
        },
        { timeout: 1_000, retries: 1, retryDelay: 10 },
      ),
    ]);
    const result = observe(pipeline.map(range(10), 4, { signal: controller.signal }));
    await vi.runAllTimersAsync();
    expect(result).toMatchObject({ status: "fulfilled", value: range(10) });
    expect(maxListeners).toBeGreaterThan(0);
    expect(abortListeners(controller.signal)).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
  });

  it("leaves no listener on the caller's signal after an abort", async () => {
    vi.useFakeTimers();
    const controller = new AbortController();
    const pipeline = new Pipeline([
      new Stage(
        "work",
        async (value: number) => {
          await sleep(100);
          return value;
        },
        { timeout: 1_000 },
      ),
    ]);
    const result = observe(pipeline.map(range(10), 4, { signal: controller.signal }));
    await vi.advanceTimersByTimeAsync(50);
    controller.abort(new Error("stop"));
    await vi.runAllTimersAsync();
    expect(result.status).toBe("rejected");
    expect(abortListeners(controller.signal)).toBe(0);
  });

  it.each([
    ["without hooks", {}],
    ["with hooks", { beforeStage: () => undefined, afterStage: () => undefined }],
  ])(
    "adds at most one listener to the caller's signal with concurrency 50 and a stage timeout, and no MaxListenersExceededWarning (%s)",
    async (_label, hooks) => {
      const controller = new AbortController();
      const warnings: Error[] = [];
      const onWarning = (warning: Error): void => {
        warnings.push(warning);
      };
      process.on("warning", onWarning);
      try {
        let started = 0;
        let maxListeners = 0;
        let release: () => void = () => {};
        const gate = new Promise<void>((resolve) => {
          release = resolve;
        });
        const pipeline = new Pipeline(
          [
            new Stage(
              "held",
              async (value: number) => {
                started++;
                await Promise.resolve();
                maxListeners = Math.max(maxListeners, abortListeners(controller.signal));
                if (started === 50) release();
                await gate;
                maxListeners = Math.max(maxListeners, abortListeners(controller.signal));
                return value;
              },
              { timeout: 60_000 },
            ),
            new Stage("after", async (value: number) => value, { timeout: 60_000, retries: 1 }),
          ],
          hooks,
        );
        await expect(pipeline.map(range(120), 50, { signal: controller.signal })).resolves.toEqual(
          range(120),
        );
        expect(maxListeners).toBeGreaterThan(0);
        expect(maxListeners).toBeLessThanOrEqual(1);
        expect(abortListeners(controller.signal)).toBe(0);
        await new Promise((resolve) => setImmediate(resolve));
        expect(
          warnings.filter((warning) => warning.name === "MaxListenersExceededWarning"),
        ).toEqual([]);
      } finally {
        process.off("warning", onWarning);
      }
    },
  );

  it("stops a batch whose items time out and retry when the caller aborts", async () => {
    vi.useFakeTimers();
    const controller = new AbortController();
    const reason = new Error("stop");
    let attempts = 0;
    const pipeline = new Pipeline([
      new Stage(
        "slow",
        () => {
          attempts++;
          return new Promise<number>(() => {});
        },
        { timeout: 100, retries: 5, retryDelay: 50 },
      ),
    ]);
    const result = observe(pipeline.map([1, 2], { signal: controller.signal }));
    await vi.advanceTimersByTimeAsync(120);
    expect(attempts).toBe(2);
    controller.abort(reason);
    await vi.advanceTimersByTimeAsync(0);
    expect(result).toMatchObject({ status: "rejected", reason });
    await vi.advanceTimersByTimeAsync(10_000);
    expect(attempts).toBe(2);
    expect(vi.getTimerCount()).toBe(0);
  });

  it("reports an item's timeout as a StageExecutionError with a TimeoutError", async () => {
    vi.useFakeTimers();
    const pipeline = new Pipeline([
      new Stage("hangs", () => new Promise<number>(() => {}), { timeout: 100 }),
    ]);
    const result = observe(pipeline.map([1]));
    await vi.advanceTimersByTimeAsync(100);
    expect(result.status).toBe("rejected");
    expect((result.reason as StageExecutionError).originalError).toBeInstanceOf(TimeoutError);
  });
});

describe("map: bad arguments reject instead of throwing", () => {
  const handler = vi.fn((value: number) => value);
  const pipeline = new Pipeline([new Stage("s", handler)]);

  async function expectRejection(
    call: () => Promise<unknown>,
    type: new (...args: never[]) => Error,
    message: RegExp,
  ): Promise<void> {
    let promise: Promise<unknown> | undefined;
    expect(() => {
      promise = call();
    }).not.toThrow();
    expect(promise).toBeInstanceOf(Promise);
    const error: unknown = await promise?.then(
      () => undefined,
      (caught: unknown) => caught,
    );
    expect(error).toBeInstanceOf(type);
    expect((error as Error).message).toMatch(message);
  }

  it.each([
    ["0", 0, RangeError, /concurrency must be at least 1/],
    ["-1", -1, RangeError, /concurrency must be at least 1/],
    ["-Infinity", -Infinity, RangeError, /concurrency must be at least 1/],
    ["1.5", 1.5, RangeError, /concurrency must be an integer/],
    ["NaN", NaN, RangeError, /concurrency/],
    ['"5"', "5", TypeError, /concurrency/],
  ] as const)("rejects concurrency %s", async (_label, concurrency, type, message) => {
    const { source, items } = counted();
    await expectRejection(() => pipeline.map(items, concurrency as number), type, message);
    await expectRejection(
      () => pipeline.map([1], { concurrency: concurrency as number }),
      type,
      message,
    );
    expect(source.pulled).toBe(0);
    expect(handler).not.toHaveBeenCalled();
  });

  it.each([
    ["null", null],
    ["undefined", undefined],
    ["a number", 42],
    ["a plain object", { length: 2 }],
  ])("rejects items that are %s with a TypeError", async (_label, items) => {
    await expectRejection(
      () => pipeline.map(items as unknown as number[]),
      TypeError,
      /items must be an Iterable or an AsyncIterable/,
    );
    expect(handler).not.toHaveBeenCalled();
  });

  it.each([
    ["a string", "abort"],
    ["an object", { aborted: "no" }],
    ["an AbortController", new AbortController()],
  ])("rejects an options.signal that is %s with a TypeError", async (_label, signal) => {
    await expectRejection(
      () => pipeline.map([1], { signal: signal as unknown as AbortSignal }),
      TypeError,
      /signal/,
    );
    await expectRejection(
      () => pipeline.map([1], 2, { signal: signal as unknown as AbortSignal }),
      TypeError,
      /signal/,
    );
    expect(handler).not.toHaveBeenCalled();
  });

  it("rejects options that are not an object with a TypeError", async () => {
    await expectRejection(() => pipeline.map([1], 2, "fast" as never), TypeError, /options/);
    expect(handler).not.toHaveBeenCalled();
  });
});

describe("map: fail-fast abort reason and null concurrency", () => {
  it("aborts the other in-flight items with an AbortError, not the failing item's error", async () => {
    const reasons: unknown[] = [];
    const pipeline = new Pipeline([
      new Stage("s", async (value: number, _context: Context, call: StageCall) => {
        if (value === 1) throw new Error("one");
        await new Promise<void>((resolve) => {
          call.signal.addEventListener("abort", () => {
            reasons.push(call.signal.reason);
            resolve();
          });
        });
        return value;
      }),
    ]);
    const failure: unknown = await pipeline.map([0, 1, 2], 3).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(StageExecutionError);
    expect(reasons).toHaveLength(2);
    for (const reason of reasons) {
      expect(reason).toBeInstanceOf(DOMException);
      expect((reason as DOMException).name).toBe("AbortError");
    }
  });

  it("rejects a null concurrency with a TypeError instead of using the default", async () => {
    const pipeline = new Pipeline([new Stage("s", (value: number) => value)]);
    await expect(pipeline.map([1], null as unknown as number)).rejects.toThrow(TypeError);
  });
});
