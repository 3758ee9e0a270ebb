/**
 * Batches under `adaptiveConcurrency` through the public API: the pool holds a place under the
 * batch's gauge for each item it runs, the per-key admission (src/flow/adaptive-keys.ts) one
 * under each key's, and batches that share a controller share its places. The limits here are
 * pinned (`min` = `max`) where a test is about places, so that the counts are exact; the
 * algorithm itself is tested in adaptive.test.ts, its goals in adaptive-convergence.test.ts.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { adaptiveConcurrency, Pipeline, Stage, type Progress } from "../src/index.js";
import { gaugeOf } from "../src/internal/limits.js";
import { rejectionOf } from "./support/promises.js";
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
  readonly key: string;
  readonly ms: number;
}

const job = (id: number, key: string, ms = 100): Job => ({ id, key, ms });

/** A pipeline whose stage sleeps `job.ms`, counting what runs at once, in all and per key. */
function tracked(fail?: (item: Job) => boolean) {
  let running = 0;
  let peak = 0;
  const perKey = new Map<string, number>();
  const peakPerKey = new Map<string, number>();
  const started: number[] = [];
  const pipeline = new Pipeline([
    new Stage("call", async (item: Job) => {
      started.push(item.id);
      running++;
      peak = Math.max(peak, running);
      const now = (perKey.get(item.key) ?? 0) + 1;
      perKey.set(item.key, now);
      peakPerKey.set(item.key, Math.max(peakPerKey.get(item.key) ?? 0, now));
      try {
        await sleep(item.ms);
        if (fail?.(item) === true) throw new Error(`item ${item.id} failed`);
        return item.id;
      } finally {
        running--;
        perKey.set(item.key, (perKey.get(item.key) ?? 0) - 1);
      }
    }),
  ]);
  return { pipeline, peak: () => peak, peakPerKey, started };
}

/** An async input that takes `ms` per pull. */
async function* slowly(jobs: readonly Job[], ms: number): AsyncGenerator<Job> {
  for (const item of jobs) {
    await sleep(ms);
    yield item;
  }
}

/** A controller whose limit stays at `limit`. */
const pinned = (limit: number) => adaptiveConcurrency({ min: limit, max: limit, initial: limit });

describe("a batch under adaptiveConcurrency", () => {
  it("runs at most the limit at once and gives every place back", async () => {
    const controller = pinned(3);
    const { pipeline, peak } = tracked();
    const jobs = Array.from({ length: 20 }, (_, id) => job(id, "k", 10 + ((id * 7) % 30)));
    const results = pipeline.map(jobs, { concurrency: controller });
    await vi.advanceTimersByTimeAsync(1_000);
    await expect(results).resolves.toEqual(jobs.map((item) => item.id));
    expect(peak()).toBe(3);
    expect(controller[gaugeOf](false, undefined).inFlight).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
  });

  it("shares the places of one controller between batches, and an item that lost its place runs when one frees", async () => {
    // A's second pull ends after B took the last place: that item waits (parked) and must
    // run once a place frees, though A's own first item frees it.
    const controller = pinned(2);
    const { pipeline, peak } = tracked();
    const first = pipeline.map(slowly([job(0, "a"), job(1, "a"), job(2, "a"), job(3, "a")], 10), {
      concurrency: controller,
    });
    await vi.advanceTimersByTimeAsync(15);
    const second = pipeline.map([job(10, "b", 1_000)], { concurrency: controller });
    await vi.advanceTimersByTimeAsync(2_000);
    await expect(first).resolves.toEqual([0, 1, 2, 3]);
    await expect(second).resolves.toEqual([10]);
    expect(peak()).toBe(2);
    expect(controller[gaugeOf](false, undefined).inFlight).toBe(0);
  });

  it("goes back to its full share once another batch sharing the controller ends", async () => {
    // B waits for a place while A runs two items. A's first finish gives the place to B and
    // its worker finds none; A's second finish wakes A itself, and that worker takes the
    // place: A must wait again for the next one, else B's end wakes nobody and A runs its
    // remaining items one at a time.
    const controller = pinned(2);
    const starts: string[] = [];
    const pipeline = new Pipeline([
      new Stage("work", async (id: number) => {
        starts.push(`${String(id)}@${String(Date.now())}`);
        await sleep(100);
        return id;
      }),
    ]);
    const first = pipeline.map([0, 1, 2, 3, 4, 5, 6, 7], { concurrency: controller });
    await vi.advanceTimersByTimeAsync(50);
    const second = pipeline.map([10], { concurrency: controller });
    await vi.advanceTimersByTimeAsync(1_000);
    await expect(first).resolves.toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    await expect(second).resolves.toEqual([10]);
    expect(starts).toEqual([
      "0@0",
      "1@0",
      "10@100",
      "2@100",
      "3@200",
      "4@200",
      "5@300",
      "6@300",
      "7@400",
    ]);
    expect(controller[gaugeOf](false, undefined).inFlight).toBe(0);
  });

  it("stops on a failure with items waiting for a place, and gives every place back", async () => {
    const controller = pinned(2);
    const { pipeline } = tracked((item) => item.id === 1);
    const jobs = Array.from({ length: 10 }, (_, id) => job(id, ["a", "b"][id % 2] as string));
    const results = pipeline.map(jobs, {
      concurrency: controller,
      perKey: { key: (item: Job) => item.key, concurrency: pinned(1) },
    });
    const failure = rejectionOf(results);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(((await failure) as Error).message).toContain("item 1 failed");
    expect(controller[gaugeOf](false, undefined).inFlight).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
  });

  it("stops while it waits for places another batch holds: takes its waits back, starts nothing", async () => {
    const batch = pinned(1);
    const keys = pinned(1);
    const { pipeline, started } = tracked();
    const options = {
      concurrency: batch,
      perKey: { key: (item: Job) => item.key, concurrency: keys },
    };
    const first = pipeline.map([job(0, "a", 100)], options);
    const controller = new AbortController();
    // Item 1 waits for key a; item 2 has key b's place but none in the batch: it is parked.
    const second = pipeline.map([job(1, "a"), job(2, "b")], {
      ...options,
      signal: controller.signal,
    });
    const stopped = rejectionOf(second);
    await vi.advanceTimersByTimeAsync(10);
    controller.abort(new Error("enough"));
    expect(((await stopped) as Error).message).toBe("enough");
    await vi.advanceTimersByTimeAsync(200);
    await expect(first).resolves.toEqual([0]);
    expect(started).toEqual([0]);
    expect(batch[gaugeOf](false, undefined).inFlight).toBe(0);
    expect(keys[gaugeOf](true, "a").inFlight).toBe(0);
    expect(keys[gaugeOf](true, "b").inFlight).toBe(0);
  });

  it("gives a place that frees to a batch waiting for one, before its own worker's next item", async () => {
    // A's workers keep their places from item to item, but not while B waits for one.
    const controller = pinned(2);
    const { pipeline, peak, started } = tracked();
    const first = pipeline.map(
      Array.from({ length: 6 }, (_, id) => job(id, "a")),
      { concurrency: controller },
    );
    await vi.advanceTimersByTimeAsync(50);
    const second = pipeline.map([job(10, "b")], { concurrency: controller });
    await vi.advanceTimersByTimeAsync(1_000);
    await expect(first).resolves.toEqual([0, 1, 2, 3, 4, 5]);
    await expect(second).resolves.toEqual([10]);
    expect(started.slice(0, 4)).toEqual([0, 1, 10, 2]);
    expect(peak()).toBe(2);
    expect(controller[gaugeOf](false, undefined).inFlight).toBe(0);
  });

  it("stops keeping places once the limit falls: no more than the new limit start", async () => {
    const controller = adaptiveConcurrency({ min: 1, max: 4, initial: 4 });
    let running = 0;
    const starts: { at: number; running: number; limit: number }[] = [];
    const pipeline = new Pipeline([
      new Stage("call", async (id: number) => {
        starts.push({ at: Date.now(), running: ++running, limit: controller.limit });
        try {
          await sleep(id === 0 ? 50 : 100);
          if (id === 0) throw Object.assign(new Error("busy"), { status: 429 });
          return id;
        } finally {
          running--;
        }
      }),
    ]);
    const results = pipeline.mapSettled(
      Array.from({ length: 12 }, (_, id) => id),
      { concurrency: controller },
    );
    await vi.advanceTimersByTimeAsync(2_000);
    const settled = await results;
    expect(settled.filter((result) => result.status === "fulfilled")).toHaveLength(11);
    // The overload at 50 ms cut the limit to 2 (4 × 0.7): the three items still running kept
    // their places, but no worker kept one past the new limit, nor past any later one.
    const later = starts.filter((start) => start.at >= 50);
    expect(later).toHaveLength(8);
    expect(later[0]).toEqual({ at: 100, running: 2, limit: 2 });
    expect(later.every((start) => start.running <= start.limit)).toBe(true);
    expect(controller[gaugeOf](false, undefined).inFlight).toBe(0);
  });

  it("holds the place of a worker whose synchronous input runs code, and gives it back at the end", async () => {
    const controller = pinned(2);
    const { pipeline, peak } = tracked();
    const gauge = controller[gaugeOf](false, undefined);
    const inFlightSeen: number[] = [];
    function* jobs(): Generator<Job> {
      for (let id = 0; id < 6; id++) {
        // The worker pulling this item holds a place (its last item's, or one it took).
        inFlightSeen.push(gauge.inFlight);
        yield job(id, "a");
      }
    }
    const results = pipeline.map(jobs(), { concurrency: controller });
    await vi.advanceTimersByTimeAsync(1_000);
    await expect(results).resolves.toEqual([0, 1, 2, 3, 4, 5]);
    expect(inFlightSeen).toEqual([1, 2, 2, 2, 2, 2]);
    expect(peak()).toBe(2);
    expect(gauge.inFlight).toBe(0);
  });

  it("reports the current limit as onProgress's concurrency", async () => {
    const controller = adaptiveConcurrency({ initial: 1, max: 4 });
    const reports: Progress[] = [];
    const { pipeline } = tracked();
    const jobs = Array.from({ length: 30 }, (_, id) => job(id, "k", 10));
    const results = pipeline.map(jobs, {
      concurrency: controller,
      onProgress: (progress) => {
        reports.push(progress);
      },
    });
    await vi.advanceTimersByTimeAsync(1_000);
    await results;
    const seen = reports.map((report) => report.concurrency);
    // The limit it found as it grew, each report the limit at that time.
    expect(new Set(seen).size).toBeGreaterThan(1);
    expect(seen.at(-1)).toBe(controller.limit);
    expect(controller.limit).toBeGreaterThan(1);
    expect(seen.every((limit) => limit !== undefined && limit >= 1 && limit <= 4)).toBe(true);
  });
});

describe("perKey.concurrency: adaptiveConcurrency(...)", () => {
  it("keeps one limit per key, within a fixed concurrency, and onChange names the key", async () => {
    const changes: [number, unknown][] = [];
    const perKey = adaptiveConcurrency({
      initial: 1,
      max: 2,
      onChange: (limit, key) => changes.push([limit, key]),
    });
    const { pipeline, peak, peakPerKey } = tracked();
    const jobs = Array.from({ length: 30 }, (_, id) => job(id, ["a", "b", "c"][id % 3] as string));
    const results = pipeline.map(jobs, {
      concurrency: 4,
      perKey: { key: (item: Job) => item.key, concurrency: perKey },
    });
    await vi.advanceTimersByTimeAsync(5_000);
    await expect(results).resolves.toEqual(jobs.map((item) => item.id));
    expect(peak()).toBeLessThanOrEqual(4);
    expect(Math.max(...peakPerKey.values())).toBe(2);
    expect(changes.length).toBeGreaterThan(0);
    expect(
      changes.every(([limit, key]) => limit === 2 && ["a", "b", "c"].includes(key as string)),
    ).toBe(true);
  });

  it("holds both limits when the batch's is adaptive too", async () => {
    const { pipeline, peak, peakPerKey } = tracked();
    const jobs = Array.from({ length: 40 }, (_, id) =>
      job(id, ["a", "b", "c", "d"][id % 4] as string, 10 + (id % 5)),
    );
    const results = pipeline.map(jobs, {
      concurrency: pinned(3),
      perKey: { key: (item: Job) => item.key, concurrency: pinned(1) },
    });
    await vi.advanceTimersByTimeAsync(5_000);
    await expect(results).resolves.toEqual(jobs.map((item) => item.id));
    expect(peak()).toBe(3);
    expect(Math.max(...peakPerKey.values())).toBe(1);
  });

  it("with perKey.maxWaiting: 0, still takes items (one waits in a running item's place)", async () => {
    const { pipeline, peak, peakPerKey } = tracked();
    const jobs = Array.from({ length: 12 }, (_, id) => job(id, ["a", "a", "b"][id % 3] as string));
    const results = pipeline.map(jobs, {
      concurrency: 4,
      perKey: { key: (item: Job) => item.key, concurrency: pinned(1), maxWaiting: 0 },
    });
    await vi.advanceTimersByTimeAsync(5_000);
    await expect(results).resolves.toEqual(jobs.map((item) => item.id));
    expect(peak()).toBeLessThanOrEqual(4);
    expect(Math.max(...peakPerKey.values())).toBe(1);
  });

  it("shares a key's places between batches given the same controller", async () => {
    const perKey = pinned(1);
    const { pipeline, peakPerKey } = tracked();
    const options = {
      concurrency: 4,
      perKey: { key: (item: Job) => item.key, concurrency: perKey },
    };
    const first = pipeline.map([job(0, "a"), job(1, "a"), job(2, "b")], options);
    const second = pipeline.map([job(3, "a"), job(4, "b"), job(5, "a")], options);
    await vi.advanceTimersByTimeAsync(5_000);
    await expect(first).resolves.toEqual([0, 1, 2]);
    await expect(second).resolves.toEqual([3, 4, 5]);
    expect(peakPerKey.get("a")).toBe(1);
    expect(peakPerKey.get("b")).toBe(1);
    expect(perKey[gaugeOf](true, "a").inFlight).toBe(0);
  });

  it("holds a fixed limit per key under an adaptive batch limit", async () => {
    const { pipeline, peak, peakPerKey } = tracked();
    const jobs = Array.from({ length: 24 }, (_, id) =>
      job(id, ["a", "b"][id % 2] as string, 10 + (id % 3)),
    );
    const results = pipeline.map(jobs, {
      concurrency: pinned(3),
      perKey: { key: (item: Job) => item.key, concurrency: 1 },
    });
    await vi.advanceTimersByTimeAsync(5_000);
    await expect(results).resolves.toEqual(jobs.map((item) => item.id));
    expect(peak()).toBe(2);
    expect(Math.max(...peakPerKey.values())).toBe(1);
  });
});
