import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { Pipeline, Stage, StageExecutionError, type PerKeyOptions } from "../src/index.js";
import { KeyedAdmission } from "../src/flow/per-key.js";
import { WAIT } from "../src/internal/pool.js";
import { observe, rejectionOf } from "./support/promises.js";
import { sleep } from "./support/time.js";

beforeEach(() => {
  vi.useFakeTimers();
  vi.setSystemTime(0);
});

afterEach(() => {
  vi.useRealTimers();
});

interface Job {
  readonly id: number;
  readonly host: string;
  readonly ms: number;
}

const job = (id: number, host: string, ms = 100): Job => ({ id, host, ms });

/** A pipeline whose one stage sleeps `job.ms` and records, per host, how many ran at once. */
function tracked() {
  const running = new Map<string, number>();
  const most = new Map<string, number>();
  const starts: [number, number][] = [];
  let total = 0;
  let mostTotal = 0;
  const pipeline = new Pipeline([
    new Stage("fetch", async (item: Job) => {
      const now = (running.get(item.host) ?? 0) + 1;
      running.set(item.host, now);
      most.set(item.host, Math.max(most.get(item.host) ?? 0, now));
      total++;
      mostTotal = Math.max(mostTotal, total);
      starts.push([item.id, Date.now()]);
      await sleep(item.ms);
      running.set(item.host, (running.get(item.host) ?? 0) - 1);
      total--;
      return item.id;
    }),
  ]);
  return {
    pipeline,
    most,
    starts,
    mostTotal: () => mostTotal,
    startOf: (id: number) => starts.find(([started]) => started === id)?.[1],
  };
}

const byHost = { key: (item: Job) => item.host, concurrency: 2 };

describe("perKey", () => {
  it("never runs more than perKey.concurrency items of one key, within the overall bound", async () => {
    const { pipeline, most, mostTotal } = tracked();
    const jobs = Array.from({ length: 40 }, (_, id) =>
      job(id, ["a", "b", "c"][id % 3] as string, 50 + ((id * 37) % 100)),
    );
    const results = pipeline.map(jobs, { concurrency: 5, perKey: byHost });
    await vi.advanceTimersByTimeAsync(10_000);
    await expect(results).resolves.toEqual(jobs.map((item) => item.id));
    expect([...most.values()].every((count) => count <= 2)).toBe(true);
    expect(most.get("a")).toBe(2);
    expect(mostTotal()).toBe(5);
  });

  it("lets items of other keys start while one key's items wait (no head-of-line blocking)", async () => {
    const { pipeline, startOf } = tracked();
    const jobs = [job(0, "a"), job(1, "a"), job(2, "a"), job(3, "a"), job(4, "b"), job(5, "c")];
    const results = pipeline.map(jobs, {
      concurrency: 4,
      perKey: { key: (item: Job) => item.host, concurrency: 1 },
    });
    await vi.advanceTimersByTimeAsync(0);
    // Items 1, 2, 3 wait for host a; b and c start at once all the same.
    expect(startOf(0)).toBe(0);
    expect(startOf(4)).toBe(0);
    expect(startOf(5)).toBe(0);
    expect(startOf(1)).toBeUndefined();
    await vi.advanceTimersByTimeAsync(1_000);
    await expect(results).resolves.toEqual([0, 1, 2, 3, 4, 5]);
    expect([startOf(1), startOf(2), startOf(3)]).toEqual([100, 200, 300]);
  });

  it("keeps input order in the results, and runs each key's items in input order", async () => {
    const { pipeline, starts } = tracked();
    const jobs = [
      job(0, "a", 300),
      job(1, "b", 10),
      job(2, "a", 10),
      job(3, "b", 10),
      job(4, "a", 5),
    ];
    const results = pipeline.map(jobs, {
      concurrency: 3,
      perKey: { key: (item: Job) => item.host, concurrency: 1 },
    });
    await vi.advanceTimersByTimeAsync(1_000);
    await expect(results).resolves.toEqual([0, 1, 2, 3, 4]);
    const order = starts.map(([id]) => id);
    expect(order.filter((id) => id % 2 === 0)).toEqual([0, 2, 4]);
    expect(order.filter((id) => id % 2 === 1)).toEqual([1, 3]);
  });

  it("treats keys as equal by SameValueZero (NaN with NaN, 0 with -0)", async () => {
    let running = 0;
    let most = 0;
    const pipeline = new Pipeline([
      new Stage("s", async (value: number) => {
        running++;
        most = Math.max(most, running);
        await sleep(10);
        running--;
        return value;
      }),
    ]);
    const keys = [Number.NaN, Number.NaN, 0, -0];
    const nan = pipeline.map([0, 1], {
      concurrency: 2,
      perKey: { key: (_item, index) => keys[index], concurrency: 1 },
    });
    await vi.advanceTimersByTimeAsync(100);
    await nan;
    expect(most).toBe(1);
    most = 0;
    const zeros = pipeline.map([2, 3], {
      concurrency: 2,
      perKey: { key: (_item, index) => keys[index + 2], concurrency: 1 },
    });
    await vi.advanceTimersByTimeAsync(100);
    await zeros;
    expect(most).toBe(1);
  });

  it("calls key once per item, with the item and its index", async () => {
    const calls: [string, number][] = [];
    const pipeline = new Pipeline([new Stage("id", (value: string) => value)]);
    const results = await pipeline.map(["x", "y", "z"], {
      perKey: {
        key: (item, index) => {
          calls.push([item, index]);
          return item;
        },
        concurrency: 1,
      },
    });
    expect(results).toEqual(["x", "y", "z"]);
    expect(calls).toEqual([
      ["x", 0],
      ["y", 1],
      ["z", 2],
    ]);
  });

  /**
   * Runs an endless input of host "a" items (10 ms each) through `map` with `perKey` for 1 s;
   * returns the most items taken from the input and not finished at once.
   */
  async function widestReadAhead(concurrency: number, perKey: PerKeyOptions<Job>) {
    let pulled = 0;
    let finished = 0;
    let widest = 0;
    function* endless(): Generator<Job> {
      for (let id = 0; ; id++) {
        pulled++;
        widest = Math.max(widest, pulled - finished);
        yield job(id, "a", 10);
      }
    }
    const pipeline = new Pipeline([
      new Stage("s", async (item: Job) => {
        await sleep(item.ms);
        finished++;
        return item.id;
      }),
    ]);
    const controller = new AbortController();
    const run = observe(
      pipeline.map(endless(), { concurrency, perKey, signal: controller.signal }),
    );
    await vi.advanceTimersByTimeAsync(1_000);
    expect(finished).toBeGreaterThan(150);
    controller.abort(new Error("enough"));
    await vi.advanceTimersByTimeAsync(0);
    expect(run.status).toBe("rejected");
    await vi.advanceTimersByTimeAsync(10); // the handlers' own sleeps, which ignore the signal
    expect(vi.getTimerCount()).toBe(0);
    return widest;
  }

  it("reads at most maxWaiting waiting items ahead, also on an endless input", async () => {
    // 2 running (the key's bound) + at most 3 waiting, plus the item being pulled.
    expect(await widestReadAhead(3, { ...byHost, maxWaiting: 3 })).toBeLessThanOrEqual(2 + 3 + 1);
  });

  it("reads up to 1,000 items ahead by default, whatever the concurrency, Infinity included", async () => {
    const bounded = await widestReadAhead(3, byHost);
    expect(bounded).toBeGreaterThan(1_000);
    expect(bounded).toBeLessThanOrEqual(2 + 1_000 + 1);
    const unbounded = await widestReadAhead(Infinity, byHost);
    expect(unbounded).toBeLessThanOrEqual(2 + 1_000 + 1);
    expect(await widestReadAhead(Infinity, { ...byHost, maxWaiting: 10 })).toBeLessThanOrEqual(
      2 + 10 + 1,
    );
  });

  it("starts B while the first A runs: keys A,A,A,A,B at concurrency 2, one per key", async () => {
    const { pipeline, startOf } = tracked();
    const jobs = [job(0, "a"), job(1, "a"), job(2, "a"), job(3, "a"), job(4, "b")];
    const results = pipeline.map(jobs, {
      concurrency: 2,
      perKey: { key: (item: Job) => item.host, concurrency: 1 },
    });
    await vi.advanceTimersByTimeAsync(0);
    expect([startOf(0), startOf(4)]).toEqual([0, 0]);
    await vi.advanceTimersByTimeAsync(1_000);
    await expect(results).resolves.toEqual([0, 1, 2, 3, 4]);
    expect([startOf(1), startOf(2), startOf(3)]).toEqual([100, 200, 300]);
  });

  it("does not hold other hosts back behind a run of one slow host in sorted input", async () => {
    const { pipeline, startOf } = tracked();
    // 20 slow items of one host first, then 20 quick ones of 20 other hosts.
    const jobs = [
      ...Array.from({ length: 20 }, (_, id) => job(id, "slow", 60)),
      ...Array.from({ length: 20 }, (_, index) => job(20 + index, `host-${String(index)}`, 10)),
    ];
    const results = pipeline.map(jobs, {
      concurrency: 4,
      perKey: { key: (item: Job) => item.host, concurrency: 1 },
    });
    await vi.advanceTimersByTimeAsync(0);
    // The slow host runs one at a time; the three other places go to the other hosts at once.
    expect([startOf(0), startOf(20), startOf(21), startOf(22)]).toEqual([0, 0, 0, 0]);
    await vi.advanceTimersByTimeAsync(2_000);
    await expect(results).resolves.toEqual(jobs.map((item) => item.id));
    // The other hosts are done long before the slow one (20 × 60 ms).
    expect(startOf(39)).toBeLessThan(100);
    expect(startOf(19)).toBe(19 * 60);
  });

  it("reads nothing past an item whose key is busy with maxWaiting 0", async () => {
    const { pipeline, startOf, mostTotal } = tracked();
    let pulled = 0;
    function* jobs(): Generator<Job> {
      for (const item of [job(0, "a"), job(1, "a"), job(2, "b"), job(3, "c")]) {
        pulled++;
        yield item;
      }
    }
    const results = pipeline.map(jobs(), {
      concurrency: 3,
      perKey: { key: (item: Job) => item.host, concurrency: 1, maxWaiting: 0 },
    });
    await vi.advanceTimersByTimeAsync(0);
    // Item 1 waits for "a" in the place of a running item: b is not read yet.
    expect(pulled).toBe(2);
    expect(startOf(2)).toBeUndefined();
    await vi.advanceTimersByTimeAsync(100);
    expect([startOf(1), startOf(2), startOf(3)]).toEqual([100, 100, 100]);
    await vi.advanceTimersByTimeAsync(100);
    await expect(results).resolves.toEqual([0, 1, 2, 3]);
    expect(mostTotal()).toBe(3);
  });

  it("stays bounded in a stream over an endless input, and stops it on break", async () => {
    let pulled = 0;
    let finishedCount = 0;
    let widest = 0;
    let closed = false;
    async function* endless(): AsyncGenerator<Job> {
      try {
        for (let id = 0; ; id++) {
          pulled++;
          widest = Math.max(widest, pulled - finishedCount);
          yield job(id, id % 4 === 0 ? "b" : "a", 10);
        }
      } finally {
        closed = true;
      }
    }
    const pipeline = new Pipeline([
      new Stage("s", async (item: Job) => {
        await sleep(item.ms);
        finishedCount++;
        return item.id;
      }),
    ]);
    const seen: number[] = [];
    const consume = (async () => {
      for await (const id of pipeline.stream(endless(), {
        concurrency: 4,
        buffer: 0,
        perKey: { key: (item: Job) => item.host, concurrency: 1 },
      })) {
        seen.push(id);
        if (seen.length === 100) break;
      }
    })();
    await vi.advanceTimersByTimeAsync(5_000);
    await consume;
    expect(seen).toEqual(Array.from({ length: 100 }, (_, id) => id));
    expect(closed).toBe(true);
    expect(widest).toBeLessThanOrEqual(4 + 1);
  });

  it("works with an unordered, settled stream", async () => {
    const { pipeline, most } = tracked();
    const jobs = [job(0, "a", 50), job(1, "a", 10), job(2, "b", 10), job(3, "a", 10)];
    const out: unknown[] = [];
    const consume = (async () => {
      for await (const entry of pipeline.stream(jobs, {
        concurrency: 3,
        ordered: false,
        settled: true,
        perKey: { key: (item: Job) => item.host, concurrency: 1 },
      })) {
        out.push(entry.status === "fulfilled" ? entry.value : entry.reason);
      }
    })();
    await vi.advanceTimersByTimeAsync(1_000);
    await consume;
    expect(out).toEqual([2, 0, 1, 3]);
    expect(most.get("a")).toBe(1);
  });

  it("fails an item whose key throws like a stage failure: map rejects with that error", async () => {
    const { pipeline, starts } = tracked();
    const problem = new Error("no host");
    const jobs = [job(0, "a"), job(1, "?"), job(2, "b")];
    const key = (item: Job): string => {
      if (item.host === "?") throw problem;
      return item.host;
    };
    const run = rejectionOf(
      pipeline.map(jobs, { concurrency: 1, perKey: { key, concurrency: 1 } }),
    );
    await vi.advanceTimersByTimeAsync(1_000);
    await expect(run).resolves.toBe(problem);
    expect(starts.map(([id]) => id)).toEqual([0]); // fail-fast: item 2 never started
  });

  it("records an item whose key throws in mapSettled and runs the others", async () => {
    const { pipeline } = tracked();
    const problem = new TypeError("bad item");
    const jobs = [job(0, "a"), job(1, "?"), job(2, "a"), job(3, "b")];
    const settled = pipeline.mapSettled(jobs, {
      concurrency: 2,
      perKey: {
        key: (item: Job) => {
          if (item.host === "?") throw problem;
          return item.host;
        },
        concurrency: 1,
      },
    });
    await vi.advanceTimersByTimeAsync(1_000);
    await expect(settled).resolves.toEqual([
      { status: "fulfilled", value: 0 },
      { status: "rejected", reason: problem },
      { status: "fulfilled", value: 2 },
      { status: "fulfilled", value: 3 },
    ]);
  });

  it("does not start waiting items after the batch failed", async () => {
    const started: number[] = [];
    const pipeline = new Pipeline([
      new Stage("s", async (item: Job) => {
        started.push(item.id);
        await sleep(item.ms);
        if (item.id === 0) throw new Error("first failed");
        return item.id;
      }),
    ]);
    const jobs = [job(0, "a"), job(1, "a"), job(2, "a"), job(3, "b", 500)];
    const run = rejectionOf(
      pipeline.map(jobs, {
        concurrency: 4,
        perKey: { key: (item: Job) => item.host, concurrency: 1 },
      }),
    );
    await vi.advanceTimersByTimeAsync(1_000);
    expect(await run).toBeInstanceOf(StageExecutionError);
    expect(started).toEqual([0, 3]);
  });

  it("runs handed-over items of a synchronous pipeline over a synchronous input", async () => {
    const order: number[] = [];
    const pipeline = new Pipeline([
      new Stage("sync", (value: number) => {
        order.push(value);
        return value * 10;
      }),
    ]);
    const results = await pipeline.map([1, 2, 3, 4, 5, 6], {
      concurrency: 2,
      perKey: { key: (value: number) => value % 2, concurrency: 1 },
    });
    expect(results).toEqual([10, 20, 30, 40, 50, 60]);
    expect(order).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it.each<[unknown, typeof TypeError, string]>([
    [5, TypeError, "perKey must be an object, got 5"],
    [{}, TypeError, "perKey.key must be a function, got undefined"],
    [{ key: "host", concurrency: 1 }, TypeError, 'perKey.key must be a function, got "host"'],
    [{ key: () => 1 }, TypeError, "perKey.concurrency must be a number, got undefined"],
    [{ key: () => 1, concurrency: 0 }, RangeError, "perKey.concurrency must be at least 1, got 0"],
    [
      { key: () => 1, concurrency: 1, limit: 2 },
      TypeError,
      'unknown option "perKey.limit" (did you mean "perKey.concurrency"?)',
    ],
    [
      { key: () => 1, concurrency: 1.5 },
      RangeError,
      "perKey.concurrency must be an integer or Infinity",
    ],
    [
      { key: () => 1, concurrency: 1, maxWaiting: -1 },
      RangeError,
      "perKey.maxWaiting must be greater than or equal to 0, got -1",
    ],
    [
      { key: () => 1, concurrency: 1, maxWaiting: 2.5 },
      RangeError,
      "perKey.maxWaiting must be an integer, got 2.5",
    ],
    [
      { key: () => 1, concurrency: 1, maxWaiting: Infinity },
      RangeError,
      "perKey.maxWaiting must be an integer, got Infinity",
    ],
    [
      { key: () => 1, concurrency: 1, maxWaiting: "10" },
      TypeError,
      'perKey.maxWaiting must be a number, got "10"',
    ],
  ])("rejects perKey %o with an error that names it", async (perKey, Kind, message) => {
    const pipeline = new Pipeline([new Stage("id", (value: number) => value)]);
    for (const call of [
      () => pipeline.map([1], { perKey: perKey as never }),
      () => pipeline.mapSettled([1], { perKey: perKey as never }),
      () => pipeline.stream([1], { perKey: perKey as never }).next(),
    ]) {
      const error = await rejectionOf(call());
      expect(error).toBeInstanceOf(Kind);
      expect((error as Error).message).toContain(message);
    }
  });
});

describe("KeyedAdmission", () => {
  it("lets 1,000 items wait by default, and one with maxWaiting 0", () => {
    const byValue = { key: (item: number) => item % 2, concurrency: 1 };
    const admission = new KeyedAdmission<number>(byValue);
    expect(admission.enter(0, 0)).toBe(0);
    for (let index = 1; index <= 1_000; index++) {
      expect(admission.full).toBe(false);
      expect(admission.enter(index * 2, index)).toBe(WAIT);
    }
    expect(admission.full).toBe(true);
    expect(admission.leave(0)).toEqual({ item: 2, index: 1 }); // handed over: room for one
    expect(admission.full).toBe(false);
    const none = new KeyedAdmission<number>({ ...byValue, maxWaiting: 0 });
    expect(none.enter(0, 0)).toBe(0);
    expect(none.full).toBe(false); // the pool cannot know an item's key before taking it
    expect(none.enter(2, 1)).toBe(WAIT);
    expect(none.full).toBe(true);
    expect(none.enter(1, 2)).toBe(1); // a free key still enters
  });
});
