import { afterEach, describe, expect, it, vi } from "vitest";
import { Pipeline, Stage, StageExecutionError, type Progress } from "../src/index.js";
import { drain, range } from "./support/iterables.js";
import { observe } from "./support/promises.js";
import { sleep } from "./support/time.js";

type Items = Iterable<number> | AsyncIterable<number>;
interface RunOptions {
  onProgress?: ((progress: Progress) => unknown) | undefined;
  signal?: AbortSignal | undefined;
}

/**
 * The three batch forms, each resolving with its results. `stream` gets `settled: true` so
 * that failures count the same way as in `mapSettled`, and `buffer: Infinity` so that these
 * tests stay clear of the stream's backpressure hang (see test/stream.test.ts, "stream:
 * backpressure"); "stream with the default buffer" below covers the default on short inputs.
 */
type Form = <C extends object>(
  pipeline: Pipeline<number, number, C>,
  items: Items,
  concurrency: number,
  options: RunOptions,
) => Promise<unknown[]>;

const forms: Record<"map" | "mapSettled" | "stream", Form> = {
  map: (pipeline, items, concurrency, options) => pipeline.map(items, concurrency, options),
  mapSettled: (pipeline, items, concurrency, options) =>
    pipeline.mapSettled(items, concurrency, options),
  stream: (pipeline, items, concurrency, options) =>
    drain(pipeline.stream(items, concurrency, { ...options, settled: true, buffer: Infinity })),
};

/** Calls of an onProgress spy, with how many had been made when the batch settled. */
function recorder() {
  const reports: Progress[] = [];
  const onProgress = vi.fn((progress: Progress) => {
    reports.push(progress);
  });
  return { reports, onProgress };
}

afterEach(() => {
  vi.useRealTimers();
});

describe.each(Object.keys(forms) as (keyof typeof forms)[])("onProgress with %s", (form) => {
  const run = forms[form];
  // `map` fails fast, so only the settled forms see every failure.
  const settledForm = form !== "map";

  it("reports every item done and nothing in flight before the batch settles", async () => {
    vi.useFakeTimers();
    const pipeline = new Pipeline([
      new Stage("wait", async (value: number) => {
        await sleep(10 + (value % 4) * 7);
        return value;
      }),
    ]);
    const { reports, onProgress } = recorder();
    const result = observe(run(pipeline, range(10), 3, { onProgress }).then(() => reports.length));
    await vi.runAllTimersAsync();
    expect(result.status).toBe("fulfilled");
    // The last report had been made when the batch settled.
    expect(result.value).toBe(reports.length);
    expect(reports.at(-1)).toEqual({ done: 10, failed: 0, inFlight: 0, total: 10, concurrency: 3 });
    // done never goes down, and each report counts at most `concurrency` in flight.
    for (let index = 1; index < reports.length; index++) {
      expect(reports[index]!.done).toBeGreaterThan(reports[index - 1]!.done);
    }
    for (const report of reports) expect(report.inFlight).toBeLessThanOrEqual(3);
  });

  it("counts failures in done and failed", async () => {
    vi.useFakeTimers();
    const pipeline = new Pipeline([
      new Stage("third", async (value: number) => {
        await sleep(10 + value);
        if (value % 3 === 0) throw new Error(`item ${String(value)}`);
        return value;
      }),
    ]);
    const { reports, onProgress } = recorder();
    const result = observe(run(pipeline, range(10), 4, { onProgress }));
    await vi.runAllTimersAsync();
    if (settledForm) {
      expect(result.status).toBe("fulfilled");
      expect(reports.at(-1)).toEqual({
        done: 10,
        failed: 4,
        inFlight: 0,
        total: 10,
        concurrency: 4,
      });
    } else {
      // Item 0 fails first, at 10 ms, with items 1 to 3 in flight: the last report, made
      // before map rejects, counts that failure and the items it abandoned.
      expect(result.status).toBe("rejected");
      expect(reports.at(-1)).toEqual({
        done: 1,
        failed: 1,
        inFlight: 3,
        total: 10,
        concurrency: 4,
      });
    }
  });

  it("gives the size of a Set, a Map's keys' source and a typed array as total", async () => {
    const pipeline = new Pipeline([new Stage("id", async (value: number) => value)]);
    const set = recorder();
    await run(pipeline, new Set([5, 6, 7]), 2, { onProgress: set.onProgress });
    expect(set.reports.at(-1)).toEqual({
      done: 3,
      failed: 0,
      inFlight: 0,
      total: 3,
      concurrency: 2,
    });
    const typed = recorder();
    await run(pipeline, new Uint8Array([1, 2, 3, 4]), 2, { onProgress: typed.onProgress });
    expect(typed.reports.at(-1)).toEqual({
      done: 4,
      failed: 0,
      inFlight: 0,
      total: 4,
      concurrency: 2,
    });
    for (const report of [...set.reports, ...typed.reports]) {
      expect(report.total).toBeDefined();
    }
  });

  it("gives total undefined for a generator, an async generator and a Map's keys", async () => {
    const pipeline = new Pipeline([new Stage("id", async (value: number) => value)]);
    function* generate(): Generator<number> {
      yield* [1, 2, 3];
    }
    async function* generateAsync(): AsyncGenerator<number> {
      yield* [1, 2, 3];
    }
    for (const items of [generate(), generateAsync(), new Map([[1, "a"]]).keys()]) {
      const { reports, onProgress } = recorder();
      await run(pipeline, items, 2, { onProgress });
      expect(reports.length).toBeGreaterThan(0);
      for (const report of reports) expect(report.total).toBeUndefined();
      expect(reports.at(-1)).toMatchObject({ failed: 0, inFlight: 0, total: undefined });
    }
  });

  it("passes a frozen progress object", async () => {
    vi.useFakeTimers();
    const pipeline = new Pipeline([
      new Stage("wait", async (value: number) => {
        await sleep(value * 10);
        return value;
      }),
    ]);
    const { reports, onProgress } = recorder();
    const result = observe(run(pipeline, [1, 2, 3], 3, { onProgress }));
    await vi.runAllTimersAsync();
    expect(result.status).toBe("fulfilled");
    expect(reports.length).toBe(3);
    for (const report of reports) {
      expect(Object.isFrozen(report)).toBe(true);
      expect(() => {
        (report as { done: number }).done = 99;
      }).toThrow(TypeError);
    }
    // A new object for each call.
    expect(new Set(reports).size).toBe(3);
  });

  it("ignores an onProgress that throws", async () => {
    const pipeline = new Pipeline([new Stage("double", async (value: number) => value * 2)]);
    const onProgress = vi.fn(() => {
      throw new Error("progress bar broke");
    });
    const results = await run(pipeline, [1, 2, 3], 2, { onProgress });
    expect(onProgress).toHaveBeenCalled();
    expect(results).toEqual(await run(pipeline, [1, 2, 3], 2, {}));
  });

  it("ignores an async onProgress that rejects (no unhandled rejection)", async () => {
    const pipeline = new Pipeline([new Stage("double", async (value: number) => value * 2)]);
    const onProgress = vi.fn(async () => {
      await Promise.resolve();
      throw new Error("progress bar broke later");
    });
    const results = await run(pipeline, [1, 2, 3], 2, { onProgress });
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(onProgress).toHaveBeenCalled();
    expect(results).toEqual(await run(pipeline, [1, 2, 3], 2, {}));
  });

  it("does not wait for an async onProgress that never settles", async () => {
    const pipeline = new Pipeline([new Stage("double", async (value: number) => value * 2)]);
    const onProgress = vi.fn(
      () =>
        new Promise(() => {
          // Never settles.
        }),
    );
    const results = await run(pipeline, [1, 2], 2, { onProgress });
    expect(onProgress).toHaveBeenCalled();
    expect(results).toHaveLength(2);
  });

  it("is called far fewer times than items when 100 items settle in one burst", async () => {
    const pipeline = new Pipeline([new Stage("sync", (value: number) => value)]);
    const { reports, onProgress } = recorder();
    await run(pipeline, range(100), 5, { onProgress });
    expect(reports.length).toBeGreaterThanOrEqual(1);
    expect(reports.length).toBeLessThanOrEqual(3);
    expect(reports.at(-1)).toEqual({
      done: 100,
      failed: 0,
      inFlight: 0,
      total: 100,
      concurrency: 5,
    });
  });

  it("is called once for 100 async items that settle in the same turn", async () => {
    const pipeline = new Pipeline([new Stage("async", async (value: number) => value)]);
    const { reports, onProgress } = recorder();
    await run(pipeline, range(100), Infinity, { onProgress });
    expect(reports.length).toBeLessThanOrEqual(3);
    expect(reports.at(-1)).toEqual({
      done: 100,
      failed: 0,
      inFlight: 0,
      total: 100,
      concurrency: Infinity,
    });
  });

  it("is called once per timer tick when items settle on separate ticks", async () => {
    vi.useFakeTimers();
    const pipeline = new Pipeline([
      new Stage("wait", async (value: number) => {
        await sleep((value + 1) * 10);
        return value;
      }),
    ]);
    const { reports, onProgress } = recorder();
    const result = observe(run(pipeline, range(5), Infinity, { onProgress }));
    // Item k settles at (k + 1) * 10 ms; fake timers run the scheduled report 1 ms later, and
    // the last one is flushed when the batch ends. Look between the ticks.
    await vi.advanceTimersByTimeAsync(5);
    expect(reports).toHaveLength(0);
    for (let tick = 1; tick <= 5; tick++) {
      await vi.advanceTimersByTimeAsync(10);
      expect(reports).toHaveLength(tick);
      expect(reports.at(-1)).toEqual({
        done: tick,
        failed: 0,
        inFlight: 5 - tick,
        total: 5,
        concurrency: Infinity,
      });
    }
    expect(result.status).toBe("fulfilled");
    await vi.advanceTimersByTimeAsync(1_000);
    expect(reports).toHaveLength(5);
  });

  it("is called once for the items that settle in the same burst", async () => {
    vi.useFakeTimers();
    // Items of a group wait for one shared timer, so they settle in one burst of microtasks.
    const groups = [10, 10, 20, 20, 20, 30];
    const timers = new Map<number, Promise<void>>();
    const pipeline = new Pipeline([
      new Stage("wait", async (value: number) => {
        const ms = groups[value] ?? 0;
        if (!timers.has(ms)) timers.set(ms, sleep(ms));
        await timers.get(ms);
        return value;
      }),
    ]);
    const { reports, onProgress } = recorder();
    const result = observe(run(pipeline, range(6), Infinity, { onProgress }));
    await vi.runAllTimersAsync();
    expect(result.status).toBe("fulfilled");
    expect(reports.map((report) => report.done)).toEqual([2, 5, 6]);
  });

  it("reports items in flight: with concurrency 2, the first report sees 2 running", async () => {
    vi.useFakeTimers();
    const pipeline = new Pipeline([
      new Stage("wait", async (value: number) => {
        await sleep((value + 1) * 10);
        return value;
      }),
    ]);
    const { reports, onProgress } = recorder();
    const result = observe(run(pipeline, range(4), 2, { onProgress }));
    await vi.runAllTimersAsync();
    expect(result.status).toBe("fulfilled");
    // 0 ends at 10 (2 starts), 1 at 20 (3 starts), 2 at 40, 3 at 60.
    expect(reports).toEqual([
      { done: 1, failed: 0, inFlight: 2, total: 4, concurrency: 2 },
      { done: 2, failed: 0, inFlight: 2, total: 4, concurrency: 2 },
      { done: 3, failed: 0, inFlight: 1, total: 4, concurrency: 2 },
      { done: 4, failed: 0, inFlight: 0, total: 4, concurrency: 2 },
    ]);
  });

  it("leaves no timer or immediate pending once the batch has settled", async () => {
    vi.useFakeTimers();
    const pipeline = new Pipeline([
      new Stage("wait", async (value: number) => {
        await sleep(value * 5);
        return value;
      }),
    ]);
    const { reports, onProgress } = recorder();
    const result = observe(run(pipeline, range(6), Infinity, { onProgress }));
    // The last item settles at 25 ms: its report is flushed, not left scheduled.
    await vi.advanceTimersByTimeAsync(25);
    expect(result.status).toBe("fulfilled");
    expect(vi.getTimerCount()).toBe(0);
    expect(reports.at(-1)).toEqual({
      done: 6,
      failed: 0,
      inFlight: 0,
      total: 6,
      concurrency: Infinity,
    });
    // A burst of synchronous items too: one report, flushed at the end, nothing scheduled.
    const sync = new Pipeline([new Stage("sync", (value: number) => value)]);
    const burst = recorder();
    await run(sync, range(50), 4, { onProgress: burst.onProgress });
    expect(vi.getTimerCount()).toBe(0);
    expect(burst.reports.at(-1)?.done).toBe(50);
  });

  it("is not called for an empty input", async () => {
    const pipeline = new Pipeline([new Stage("id", (value: number) => value)]);
    const { onProgress } = recorder();
    await run(pipeline, [], 2, { onProgress });
    expect(onProgress).not.toHaveBeenCalled();
  });

  it("reports the last change before rejecting for the caller's signal", async () => {
    vi.useFakeTimers();
    const pipeline = new Pipeline([
      new Stage("wait", async (value: number) => {
        await sleep(value === 0 ? 10 : 1_000);
        return value;
      }),
    ]);
    const { reports, onProgress } = recorder();
    const controller = new AbortController();
    const reason = new Error("stop");
    const result = observe(
      run(pipeline, range(4), 4, { onProgress, signal: controller.signal }).then(
        () => reports.length,
        (error: unknown) => {
          throw { error, reports: reports.length };
        },
      ),
    );
    // Item 0 settles at 10 ms; the report is still pending when the signal aborts.
    await vi.advanceTimersByTimeAsync(10);
    const before = reports.length;
    controller.abort(reason);
    await vi.advanceTimersByTimeAsync(0);
    expect(result.status).toBe("rejected");
    expect(result.reason).toEqual({ error: reason, reports: reports.length });
    expect(reports.at(-1)).toMatchObject({ done: 1, failed: 0 });
    expect(reports.length).toBeLessThanOrEqual(before + 1);
    await vi.advanceTimersByTimeAsync(2_000);
    expect(reports.at(-1)).toMatchObject({ done: 1 });
    expect(vi.getTimerCount()).toBe(0);
  });

  it("rejects when onProgress is not a function", async () => {
    const pipeline = new Pipeline([new Stage("id", (value: number) => value)]);
    for (const bad of [1, "log", {}, null]) {
      const error: unknown = await run(pipeline, [1], 1, { onProgress: bad as never }).then(
        () => undefined,
        (caught: unknown) => caught,
      );
      expect(error).toBeInstanceOf(TypeError);
      expect((error as Error).message).toMatch(/^onProgress must be a function, got /);
    }
  });

  it("accepts onProgress: undefined", async () => {
    const pipeline = new Pipeline([new Stage("id", (value: number) => value)]);
    await expect(run(pipeline, [1, 2], 1, { onProgress: undefined })).resolves.toHaveLength(2);
  });
});

describe("onProgress with map: fail-fast", () => {
  it("reports the failure before map rejects, and nothing after", async () => {
    vi.useFakeTimers();
    const pipeline = new Pipeline([
      new Stage("wait", async (value: number) => {
        await sleep(value === 2 ? 15 : value * 10);
        if (value === 2) throw new Error("two");
        return value;
      }),
    ]);
    const { reports, onProgress } = recorder();
    const result = observe(
      pipeline.map(range(6), 6, { onProgress }).catch((error: unknown) => {
        throw { error, reports: reports.length };
      }),
    );
    await vi.advanceTimersByTimeAsync(15);
    expect(result.status).toBe("rejected");
    const { error, reports: atRejection } = result.reason as { error: unknown; reports: number };
    expect(error).toBeInstanceOf(StageExecutionError);
    expect(atRejection).toBe(reports.length);
    // Items 0 (0 ms) and 1 (10 ms) succeeded, item 2 failed at 15 ms.
    expect(reports.at(-1)).toMatchObject({ done: 3, failed: 1, total: 6 });
    await vi.advanceTimersByTimeAsync(1_000);
    expect(reports).toHaveLength(atRejection);
    expect(vi.getTimerCount()).toBe(0);
  });
});

describe("onProgress with stream", () => {
  it("reports with the default buffer, fail-fast mode, before the stream ends", async () => {
    vi.useFakeTimers();
    const pipeline = new Pipeline([
      new Stage("wait", async (value: number) => {
        await sleep(10 * (value + 1));
        return value;
      }),
    ]);
    const { reports, onProgress } = recorder();
    const seen: number[] = [];
    let reportsAtEnd = -1;
    const result = observe(
      (async () => {
        for await (const value of pipeline.stream([0, 1, 2], 2, { onProgress })) seen.push(value);
        reportsAtEnd = reports.length;
      })(),
    );
    await vi.runAllTimersAsync();
    expect(result.status).toBe("fulfilled");
    expect(seen).toEqual([0, 1, 2]);
    expect(reportsAtEnd).toBe(reports.length);
    expect(reports.at(-1)).toEqual({ done: 3, failed: 0, inFlight: 0, total: 3, concurrency: 2 });
  });

  it("reports the failure before a fail-fast stream throws", async () => {
    vi.useFakeTimers();
    const pipeline = new Pipeline([
      new Stage("wait", async (value: number) => {
        await sleep(10 * (value + 1));
        if (value === 1) throw new Error("one");
        return value;
      }),
    ]);
    const { reports, onProgress } = recorder();
    const result = observe(drain(pipeline.stream(new Set([0, 1, 2]), 3, { onProgress })));
    await vi.runAllTimersAsync();
    expect(result.status).toBe("rejected");
    expect(reports.at(-1)).toMatchObject({ done: 2, failed: 1, total: 3 });
  });

  it("reports once more when the consumer breaks out with a change pending, then stops", async () => {
    vi.useFakeTimers();
    const pipeline = new Pipeline([new Stage("sync", (value: number) => value)]);
    const { reports, onProgress } = recorder();
    for await (const value of pipeline.stream(range(20), 2, { onProgress, buffer: 0 })) {
      expect(value).toBe(0);
      break;
    }
    const count = reports.length;
    expect(count).toBeLessThanOrEqual(1);
    await vi.advanceTimersByTimeAsync(100);
    expect(reports).toHaveLength(count);
    expect(vi.getTimerCount()).toBe(0);
  });
});
