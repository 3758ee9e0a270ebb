/**
 * Signals that must not pile up (issue 11, items 11 and 12): `call.signal` belongs to one
 * attempt of one item, made lazily; a signal shared by many runs carries one listener of the
 * library's.
 */
import { afterEach, describe, expect, it, vi } from "vitest";
import { Pipeline, Stage, TimeoutError, type StageCall } from "../src/index.js";
import { range } from "./support/iterables.js";
import { never, observe } from "./support/promises.js";
import { abortListeners } from "./support/signals.js";
import { flush, sleep } from "./support/time.js";

afterEach(() => {
  vi.useRealTimers();
  vi.unstubAllGlobals();
});

/** Counts the AbortControllers made while `body` runs. */
async function controllersMadeBy(body: () => Promise<unknown>): Promise<number> {
  let made = 0;
  const Original = globalThis.AbortController;
  class Counting extends Original {
    constructor() {
      super();
      made++;
    }
  }
  vi.stubGlobal("AbortController", Counting);
  try {
    await body();
  } finally {
    vi.unstubAllGlobals();
  }
  return made;
}

describe("call.signal belongs to one attempt", () => {
  it("is a different signal for each item, and a listener left on it never piles up", async () => {
    const signals = new Set<AbortSignal>();
    const pipeline = new Pipeline([
      new Stage("s", async (value: number, _context: object, call: StageCall) => {
        signals.add(call.signal);
        // An abortable sleep that never removes its listener: a common pattern.
        call.signal.addEventListener("abort", () => undefined);
        await Promise.resolve();
        expect(abortListeners(call.signal)).toBe(1);
        return value;
      }),
    ]);
    await expect(pipeline.map(range(200), 2)).resolves.toEqual(range(200));
    expect(signals.size).toBe(200);
  });

  it("does not abort for items that finished before the batch failed fast", async () => {
    vi.useFakeTimers();
    const fired: number[] = [];
    const signals = new Map<number, AbortSignal>();
    const pipeline = new Pipeline([
      new Stage("s", async (value: number, _context: object, call: StageCall) => {
        signals.set(value, call.signal);
        call.signal.addEventListener("abort", () => fired.push(value));
        if (value === 5) {
          await sleep(100);
          throw new Error("late failure");
        }
        if (value === 6) return never<number>();
        return value;
      }),
    ]);
    const map = observe(pipeline.map(range(7), 2));
    await vi.advanceTimersByTimeAsync(200);
    expect(map.status).toBe("rejected");
    // Only the item still running when item 5 failed (item 6) is aborted.
    expect(fired).toEqual([6]);
    expect(signals.get(0)?.aborted).toBe(false);
    expect(signals.get(6)?.aborted).toBe(true);
  });

  it("is one signal per attempt: a failed attempt's signal does not abort later", async () => {
    const controller = new AbortController();
    const signals: AbortSignal[] = [];
    const stage = new Stage(
      "s",
      async (_value: number, _context: object, call: StageCall) => {
        signals.push(call.signal);
        if (call.attempt === 1) throw new Error("first");
        controller.abort("stop");
        return never<number>();
      },
      { retries: 1 },
    );
    await expect(stage.run(1, { signal: controller.signal })).rejects.toBe("stop");
    expect(signals).toHaveLength(2);
    expect(signals[0]).not.toBe(signals[1]);
    expect(signals[0]?.aborted).toBe(false);
    expect(signals[1]?.aborted).toBe(true);
    expect(signals[1]?.reason).toBe("stop");
  });

  it("read after the attempt settled, never aborts", async () => {
    const controller = new AbortController();
    let kept: StageCall | undefined;
    const stage = new Stage("s", async (value: number, _context: object, call: StageCall) => {
      kept = call;
      await Promise.resolve();
      return value;
    });
    await stage.run(1, { signal: controller.signal });
    const late = kept?.signal;
    controller.abort("stop");
    expect(late?.aborted).toBe(false);
    expect(abortListeners(controller.signal)).toBe(0);
  });

  it("read inside a sync handler, is aborted when the run's signal aborts during the attempt", async () => {
    const controller = new AbortController();
    const stage = new Stage("s", (_value: number, _context: object, call: StageCall) => {
      controller.abort("stop");
      return call.signal.reason as unknown;
    });
    await expect(stage.run(1, { signal: controller.signal })).rejects.toBe("stop");
  });

  it("aborts with the TimeoutError also when first read after the timeout", async () => {
    vi.useFakeTimers();
    let kept: StageCall | undefined;
    const stage = new Stage(
      "s",
      (_value: number, _context: object, call: StageCall) => {
        kept = call;
        return never<number>();
      },
      { timeout: 50 },
    );
    const run = observe(stage.run(1));
    await vi.advanceTimersByTimeAsync(60);
    expect(run.status).toBe("rejected");
    expect(kept?.signal.aborted).toBe(true);
    expect(kept?.signal.reason).toBeInstanceOf(TimeoutError);
  });

  it("is made lazily: handlers that never read it cost no controller", async () => {
    const pipeline = new Pipeline([
      // eslint-disable-next-line @typescript-eslint/no-unused-vars -- three parameters: the (value, context, call) path
      new Stage("s", async (value: number, _context: object, _call: StageCall) => value),
    ]);
    const controller = new AbortController();
    // One controller for the whole batch (it aborts in-flight items when the batch stops),
    // none per item or attempt.
    expect(await controllersMadeBy(() => pipeline.map(range(100), 4))).toBe(1);
    expect(
      await controllersMadeBy(() =>
        Promise.all(range(100).map((value) => pipeline.run(value, { signal: controller.signal }))),
      ),
    ).toBe(0);
  });
});

describe("one listener per shared signal", () => {
  it("10,000 concurrent runs on one signal carry one listener, and no warning", async () => {
    const warnings: Error[] = [];
    const onWarning = (warning: Error): void => {
      warnings.push(warning);
    };
    process.on("warning", onWarning);
    try {
      const controller = new AbortController();
      const timed = new Pipeline([
        new Stage("s", (value: number) => sleep(1).then(() => value), { timeout: 60_000 }),
      ]);
      const runs = range(10_000).map((value) => timed.run(value, { signal: controller.signal }));
      expect(abortListeners(controller.signal)).toBe(1);
      await expect(Promise.all(runs)).resolves.toHaveLength(10_000);
      expect(abortListeners(controller.signal)).toBe(0);
      await flush();
    } finally {
      process.off("warning", onWarning);
    }
    expect(warnings.map((warning) => warning.name)).not.toContain("MaxListenersExceededWarning");
  });

  it("many batches sharing one signal carry one listener, and all stop when it aborts", async () => {
    const controller = new AbortController();
    const pipeline = new Pipeline([new Stage("s", () => never<number>())]);
    const batches = range(50).map(() =>
      observe(pipeline.map(range(4), 2, { signal: controller.signal })),
    );
    await flush();
    expect(batches[0]?.status).toBe("pending");
    expect(abortListeners(controller.signal)).toBe(1);
    controller.abort("stop");
    await flush();
    expect(batches.every((batch) => batch.status === "rejected" && batch.reason === "stop")).toBe(
      true,
    );
    expect(abortListeners(controller.signal)).toBe(0);
  });
});
