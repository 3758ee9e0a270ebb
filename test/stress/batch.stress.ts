/**
 * Stress and soak: `npm run test:stress` (see vitest.stress.config.ts). STRESS_ITEMS items
 * (default 1,000,000) through `map` and `mapSettled` at once, sharing one caller signal, over
 * a stage with a timeout; a stream of as many items read to the end with flat memory; then
 * single runs, a few at a time, on one long-lived signal. Checked: results, no MaxListenersExceededWarning (or any other warning), no
 * listener left on the signal, the heap back within a few MB of the start after GC, no
 * unhandled rejection (the process runs with --unhandled-rejections=strict).
 */
import { getEventListeners } from "node:events";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Pipeline, Stage, StageExecutionError } from "../../src/index.js";

const ITEMS = Number(process.env.STRESS_ITEMS ?? 1_000_000);
/** How far above its starting point the heap may be after the work and a full GC. */
const HEAP_SLACK_MB = Number(process.env.STRESS_HEAP_SLACK_MB ?? 8);
const MB = 1024 * 1024;

const gc = (globalThis as { gc?: () => void }).gc;
const warnings: Error[] = [];
const unhandled: unknown[] = [];
const onWarning = (warning: Error): void => {
  warnings.push(warning);
};
const onUnhandled = (reason: unknown): void => {
  unhandled.push(reason);
};

/** The heap in use after full collections, in bytes. */
async function settledHeap(): Promise<number> {
  for (let round = 0; round < 4; round++) {
    gc?.();
    await new Promise((resolve) => setImmediate(resolve));
  }
  return process.memoryUsage().heapUsed;
}

function report(label: string, figures: Record<string, number | string>): void {
  const text = Object.entries(figures)
    .map(([key, value]) => `${key}=${typeof value === "number" ? value.toFixed(1) : value}`)
    .join(" ");
  process.stdout.write(`[stress] ${label}: ${text}\n`);
}

/** Lazily yields 0 … count − 1, so the input itself takes no memory. */
function* naturals(count: number): Generator<number> {
  for (let index = 0; index < count; index++) yield index;
}

/** Fails every 997th item, so that mapSettled has rejections to record. */
const fails = (value: number): boolean => value % 997 === 996;

/** `naturals`, without the items that fail. */
function* succeeding(count: number): Generator<number> {
  for (const value of naturals(count)) if (!fails(value)) yield value;
}

beforeAll(() => {
  process.on("warning", onWarning);
  process.on("unhandledRejection", onUnhandled);
});

afterAll(() => {
  process.off("warning", onWarning);
  process.off("unhandledRejection", onUnhandled);
});

describe(`stress: ${String(ITEMS)} items`, () => {
  it("runs with --expose-gc and --unhandled-rejections=strict in the process under test", () => {
    expect(typeof gc).toBe("function");
    expect(process.execArgv).toContain("--unhandled-rejections=strict");
  });

  it("map and mapSettled at once, sharing a caller signal, over a stage with a timeout", async () => {
    const controller = new AbortController();
    const { signal } = controller;
    const heapBefore = await settledHeap();
    const started = performance.now();

    const pipeline = new Pipeline([
      new Stage("parse", (value: number) => value + 1),
      new Stage(
        "work",
        async (value: number, _context: object, call: { signal: AbortSignal }) => {
          if (call.signal.aborted) throw new Error("aborted");
          if (fails(value - 1)) throw new Error(`item ${String(value - 1)} failed`);
          return value * 2;
        },
        { timeout: 60_000 },
      ),
    ]);

    const mapped = await pipeline.map(succeeding(ITEMS), 64, { signal });
    // mapSettled and a second map together, on the same signal: two batch listeners at most.
    const both = Promise.all([
      pipeline.mapSettled(naturals(ITEMS), 64, { signal }),
      pipeline.map(naturals(Math.min(ITEMS, 996)), 8, { signal }),
    ]);
    expect(getEventListeners(signal, "abort").length).toBeLessThanOrEqual(2);
    const [settled, small] = await both;
    const elapsed = performance.now() - started;

    const failing = Math.floor((ITEMS + 1) / 997);
    expect(mapped).toHaveLength(ITEMS - failing);
    expect(settled).toHaveLength(ITEMS);
    expect(small).toHaveLength(Math.min(ITEMS, 996));
    let ordered = true;
    let kept = 0;
    for (let index = 0; index < ITEMS; index++) {
      const entry = settled[index];
      if (fails(index)) {
        if (
          entry?.status !== "rejected" ||
          !(entry.reason instanceof StageExecutionError) ||
          entry.reason.stageName !== "work"
        ) {
          ordered = false;
        }
      } else {
        if (entry?.status !== "fulfilled" || entry.value !== (index + 1) * 2) ordered = false;
        if (mapped[kept] !== (index + 1) * 2) ordered = false;
        kept++;
      }
    }
    expect(ordered, "every result in input order, equal to the sequential reference").toBe(true);
    const heapWithResults = await settledHeap();

    // Empty the result arrays (their elements are the only references), then measure again.
    for (const results of [mapped, settled, small] as unknown[][]) results.length = 0;
    const heapAfter = await settledHeap();
    report("map+mapSettled", {
      items: String(ITEMS),
      seconds: elapsed / 1_000,
      heapBeforeMB: heapBefore / MB,
      heapWithResultsMB: heapWithResults / MB,
      heapAfterMB: heapAfter / MB,
      listeners: getEventListeners(signal, "abort").length,
    });
    expect(getEventListeners(signal, "abort")).toHaveLength(0);
    expect(heapAfter - heapBefore).toBeLessThan(HEAP_SLACK_MB * MB);
    expect(warnings.map((warning) => `${warning.name}: ${warning.message}`)).toEqual([]);
    expect(unhandled).toEqual([]);
  });

  it("a fail-fast map and an aborted mapSettled leave nothing behind", async () => {
    const heapBefore = await settledHeap();
    const controller = new AbortController();
    const { signal } = controller;
    const closed = { map: false, settled: false };
    function* source(which: keyof typeof closed): Generator<number> {
      try {
        yield* naturals(ITEMS);
      } finally {
        closed[which] = true;
      }
    }
    const failAt = Math.floor(ITEMS / 2);
    const pipeline = new Pipeline([
      new Stage(
        "work",
        async (value: number) => {
          if (value === failAt) throw new Error("half way");
          return value;
        },
        { timeout: 60_000, retries: 1 },
      ),
    ]);
    const failFast = await pipeline.map(source("map"), 64, { signal }).then(
      () => "resolved",
      (error: unknown) => (error instanceof StageExecutionError ? error.attempts : "other"),
    );
    expect(failFast).toBe(2);
    let count = 0;
    // Made here, not in the handler: V8 keeps the frames of an Error's stack (closures that
    // reach the batch's results) alive until the stack is read, and the controller keeps its
    // reason alive, so an Error made inside the handler would hold the results in the heap.
    const reason = new Error("enough");
    const aborting = new Pipeline([
      new Stage("count", async (value: number) => {
        if (++count === failAt) controller.abort(reason);
        return value;
      }),
    ]);
    const aborted = aborting.mapSettled(source("settled"), 64, { signal }).then(
      () => "resolved",
      (error: unknown) => (error instanceof Error ? error.message : "other"),
    );
    expect(await aborted).toBe("enough");
    expect(closed).toEqual({ map: true, settled: true });
    const heapAfter = await settledHeap();
    report("fail-fast+abort", {
      items: String(ITEMS),
      heapBeforeMB: heapBefore / MB,
      heapAfterMB: heapAfter / MB,
      listeners: getEventListeners(signal, "abort").length,
    });
    expect(getEventListeners(signal, "abort")).toHaveLength(0);
    expect(heapAfter - heapBefore).toBeLessThan(HEAP_SLACK_MB * MB);
    expect(warnings).toEqual([]);
    expect(unhandled).toEqual([]);
  });

  it("a stream of every item keeps memory flat: nothing held but the read-ahead window", async () => {
    const controller = new AbortController();
    const { signal } = controller;
    const heapBefore = await settledHeap();
    const started = performance.now();
    let pulled = 0;
    function* counting(): Generator<number> {
      for (const value of naturals(ITEMS)) {
        pulled++;
        yield value;
      }
    }
    const pipeline = new Pipeline([
      new Stage("work", async (value: number) => value * 2, { timeout: 60_000 }),
    ]);
    const concurrency = 64;
    const buffer = 64;
    let read = 0;
    let sum = 0;
    let ordered = true;
    let maxAhead = 0;
    let heapMidway = 0;
    for await (const output of pipeline.stream(counting(), concurrency, { buffer, signal })) {
      if (output !== read * 2) ordered = false;
      sum += output;
      read++;
      maxAhead = Math.max(maxAhead, pulled - read);
      if (read === Math.floor(ITEMS / 2)) heapMidway = await settledHeap();
    }
    const elapsed = performance.now() - started;
    const heapAfter = await settledHeap();
    report("stream", {
      items: String(ITEMS),
      seconds: elapsed / 1_000,
      heapBeforeMB: heapBefore / MB,
      heapMidwayMB: heapMidway / MB,
      heapAfterMB: heapAfter / MB,
      maxAhead,
      listeners: getEventListeners(signal, "abort").length,
    });
    expect(read).toBe(ITEMS);
    expect(ordered, "every output in input order").toBe(true);
    expect(sum).toBe(ITEMS * (ITEMS - 1));
    // Pulled but not yet read: never more than the window (plus the item being read).
    expect(maxAhead).toBeLessThanOrEqual(concurrency + buffer);
    // Half-way through a million items the heap holds no more than at the start.
    expect(heapMidway - heapBefore).toBeLessThan(HEAP_SLACK_MB * MB);
    expect(heapAfter - heapBefore).toBeLessThan(HEAP_SLACK_MB * MB);
    expect(getEventListeners(signal, "abort")).toHaveLength(0);
    expect(warnings).toEqual([]);
    expect(unhandled).toEqual([]);
  });

  it("soak: single runs, four at a time, on one long-lived signal", async () => {
    const runs = Math.max(1_000, Math.floor(ITEMS / 10));
    const controller = new AbortController();
    const { signal } = controller;
    const heapBefore = await settledHeap();
    const started = performance.now();
    const pipeline = new Pipeline(
      [
        new Stage("first", async (value: number) => value + 1, { timeout: 60_000 }),
        new Stage(
          "second",
          (value: number) => {
            if (value % 101 === 0) throw new Error("unlucky");
            return value * 2;
          },
          { retries: 1 },
        ),
      ],
      {
        beforeStage: () => undefined,
        afterStage: async () => undefined,
        middlewares: [(next, _name, value) => next(value)],
      },
    );
    let fulfilled = 0;
    let rejected = 0;
    for (let base = 0; base < runs; base += 4) {
      const wave = [base, base + 1, base + 2, base + 3].map((value) =>
        pipeline.run(value, { signal }).then(
          () => fulfilled++,
          () => rejected++,
        ),
      );
      await Promise.all(wave);
    }
    const elapsed = performance.now() - started;
    const heapAfter = await settledHeap();
    report("soak", {
      runs: String(runs),
      seconds: elapsed / 1_000,
      heapBeforeMB: heapBefore / MB,
      heapAfterMB: heapAfter / MB,
      listeners: getEventListeners(signal, "abort").length,
    });
    expect(fulfilled + rejected).toBe(Math.ceil(runs / 4) * 4);
    expect(rejected).toBeGreaterThan(0);
    expect(getEventListeners(signal, "abort")).toHaveLength(0);
    expect(heapAfter - heapBefore).toBeLessThan(HEAP_SLACK_MB * MB);
    expect(warnings).toEqual([]);
    expect(unhandled).toEqual([]);
  });
});
