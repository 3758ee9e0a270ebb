import { afterEach, describe, expect, it, vi } from "vitest";
import { Pipeline, Stage, StageExecutionError, TimeoutError } from "../src/index.js";
import type { StageCall } from "../src/index.js";
import { observe } from "./support/promises.js";
import { abortListeners } from "./support/signals.js";
import { sleep } from "./support/time.js";

afterEach(() => {
  vi.useRealTimers();
});

describe("Pipeline.run: stages in order", () => {
  it("runs each stage on the previous stage's output", async () => {
    const seen: [string, unknown][] = [];
    const pipeline = new Pipeline([
      new Stage("parse", (line: string) => {
        seen.push(["parse", line]);
        return Number.parseInt(line, 10);
      }),
      new Stage("double", (value: number) => {
        seen.push(["double", value]);
        return value * 2;
      }),
      new Stage("format", (value: number) => {
        seen.push(["format", value]);
        return `=${String(value)}`;
      }),
    ]);

    await expect(pipeline.run("21")).resolves.toBe("=42");
    expect(seen).toEqual([
      ["parse", "21"],
      ["double", 21],
      ["format", 42],
    ]);
  });

  it("mixes sync and async handlers, awaiting each async output before the next stage", async () => {
    vi.useFakeTimers();
    const order: string[] = [];
    const pipeline = new Pipeline([
      new Stage("addOne", (value: number) => {
        order.push(`addOne(${String(value)})`);
        return value + 1;
      }),
      new Stage("slowDouble", async (value: number) => {
        order.push(`slowDouble(${String(value)}) start`);
        await sleep(100);
        order.push(`slowDouble(${String(value)}) end`);
        return value * 2;
      }),
      new Stage("minusThree", (value: number) => {
        order.push(`minusThree(${String(value)})`);
        return value - 3;
      }),
      new Stage("asyncSquare", async (value: number) => {
        order.push(`asyncSquare(${String(value)})`);
        return value * value;
      }),
    ]);

    const result = observe(pipeline.run(10));
    await vi.advanceTimersByTimeAsync(99);
    expect(result.status).toBe("pending");
    expect(order).toEqual(["addOne(10)", "slowDouble(11) start"]);

    await vi.advanceTimersByTimeAsync(1);
    expect(result).toMatchObject({ status: "fulfilled", value: 361 });
    expect(order).toEqual([
      "addOne(10)",
      "slowDouble(11) start",
      "slowDouble(11) end",
      "minusThree(22)",
      "asyncSquare(19)",
    ]);
  });

  it("resolves with a promise even when every handler is synchronous", async () => {
    const pipeline = new Pipeline([new Stage("id", (value: number) => value)]);
    const result = pipeline.run(7);
    expect(result).toBeInstanceOf(Promise);
    await expect(result).resolves.toBe(7);
  });

  it("resolves with the last stage's output, whatever it is (undefined included)", async () => {
    const pipeline = new Pipeline([
      new Stage("first", (value: number) => value + 1),
      new Stage("nothing", (value: number): undefined => (value > 0 ? undefined : undefined)),
    ]);
    await expect(pipeline.run(1)).resolves.toBeUndefined();
  });

  it("can be run many times, also concurrently, without the runs interfering", async () => {
    vi.useFakeTimers();
    const pipeline = new Pipeline([
      new Stage("wait", async (value: number) => {
        await sleep(value);
        return value;
      }),
      new Stage("tag", (value: number) => `#${String(value)}`),
    ]);
    const slow = observe(pipeline.run(200));
    const fast = observe(pipeline.run(50));
    await vi.advanceTimersByTimeAsync(50);
    expect(fast).toMatchObject({ status: "fulfilled", value: "#50" });
    expect(slow.status).toBe("pending");
    await vi.advanceTimersByTimeAsync(150);
    expect(slow).toMatchObject({ status: "fulfilled", value: "#200" });
  });

  it("passes a handler that declares three parameters a StageCall with the stage name and attempt 1", async () => {
    const calls: StageCall[] = [];
    const pipeline = new Pipeline([
      new Stage("inspect", (value: number, _context, call) => {
        calls.push(call);
        return value;
      }),
    ]);
    await pipeline.run(1);
    expect(calls).toHaveLength(1);
    expect(calls[0]?.stageName).toBe("inspect");
    expect(calls[0]?.attempt).toBe(1);
    expect(calls[0]?.signal).toBeInstanceOf(AbortSignal);
    expect(calls[0]?.signal.aborted).toBe(false);
  });
});

describe("Pipeline.run: failures", () => {
  it("rejects with the failing stage's StageExecutionError and runs no later stage", async () => {
    const boom = new RangeError("boom");
    const later = vi.fn((value: number) => value);
    const pipeline = new Pipeline([
      new Stage("first", (value: number) => value + 1),
      new Stage("broken", (value: number): number => {
        if (value > 0) throw boom;
        return value;
      }),
      new Stage("later", later),
    ]);

    const error: unknown = await pipeline.run(1).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(StageExecutionError);
    const stageError = error as StageExecutionError;
    expect(stageError.name).toBe("StageExecutionError");
    expect(stageError.stageName).toBe("broken");
    expect(stageError.originalError).toBe(boom);
    expect(stageError.cause).toBe(boom);
    expect(stageError.attempts).toBe(1);
    expect(stageError.message).toContain("broken");
    expect(stageError.message).toContain("boom");
    expect(later).not.toHaveBeenCalled();
  });

  it("wraps an async handler's rejection the same way", async () => {
    const failure = new Error("async failure");
    const later = vi.fn((value: number) => value);
    const pipeline = new Pipeline([
      new Stage("fetch", async (value: number): Promise<number> => {
        await Promise.resolve(value);
        throw failure;
      }),
      new Stage("later", later),
    ]);

    await expect(pipeline.run(1)).rejects.toSatisfy(
      (error: unknown) =>
        error instanceof StageExecutionError &&
        error.stageName === "fetch" &&
        error.originalError === failure,
    );
    expect(later).not.toHaveBeenCalled();
  });

  it("keeps a thrown non-Error value as originalError", async () => {
    const pipeline = new Pipeline([
      new Stage("throwsString", (): number => {
        throw "plain string";
      }),
    ]);
    const error: unknown = await pipeline.run(undefined).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(StageExecutionError);
    expect((error as StageExecutionError).originalError).toBe("plain string");
  });

  it("reports a stage timeout as a StageExecutionError whose originalError is a TimeoutError", async () => {
    vi.useFakeTimers();
    const later = vi.fn((value: number) => value);
    const pipeline = new Pipeline([
      new Stage("hangs", () => new Promise<number>(() => {}), { timeout: 100 }),
      new Stage("later", later),
    ]);
    const result = observe(pipeline.run(1));
    await vi.advanceTimersByTimeAsync(99);
    expect(result.status).toBe("pending");
    await vi.advanceTimersByTimeAsync(1);
    expect(result.status).toBe("rejected");
    const error = result.reason as StageExecutionError;
    expect(error).toBeInstanceOf(StageExecutionError);
    expect(error.stageName).toBe("hangs");
    expect(error.originalError).toBeInstanceOf(TimeoutError);
    expect((error.originalError as TimeoutError).timeout).toBe(100);
    expect(later).not.toHaveBeenCalled();
  });

  it("retries a stage and continues with its eventual output", async () => {
    let attempts = 0;
    const pipeline = new Pipeline([
      new Stage(
        "flaky",
        (value: number) => {
          attempts++;
          if (attempts < 3) throw new Error(`attempt ${String(attempts)}`);
          return value * 10;
        },
        { retries: 2 },
      ),
      new Stage("plusOne", (value: number) => value + 1),
    ]);
    await expect(pipeline.run(4)).resolves.toBe(41);
    expect(attempts).toBe(3);
  });

  it("treats an abort error thrown by a handler as an ordinary failure when the caller's signal did not abort", async () => {
    const controller = new AbortController();
    const ownAbort = new DOMException("inner abort", "AbortError");
    const pipeline = new Pipeline([
      new Stage("aborts", async (): Promise<number> => {
        throw ownAbort;
      }),
    ]);
    const error: unknown = await pipeline
      .run(1, { signal: controller.signal })
      .catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(StageExecutionError);
    expect((error as StageExecutionError).originalError).toBe(ownAbort);
  });
});

describe("new Pipeline: arguments", () => {
  const stage = new Stage("id", (value: number) => value);

  it("throws RangeError for an empty stage list", () => {
    expect(() => new Pipeline([] as unknown as [typeof stage])).toThrow(RangeError);
    expect(() => new Pipeline([] as unknown as [typeof stage])).toThrow(
      "Pipeline requires at least one stage",
    );
  });

  it.each([
    ["undefined", undefined],
    ["null", null],
    ["a string", "stages"],
    ["a Stage itself", stage],
    ["a Set of stages", new Set([stage])],
    ["an object", { 0: stage, length: 1 }],
  ])("throws TypeError when stages is %s", (_label, stages) => {
    expect(() => new Pipeline(stages as unknown as [typeof stage])).toThrow(TypeError);
  });

  it.each([
    ["null", null],
    ["a plain object", { name: "fake", run: () => 1 }],
    ["a function", (value: number) => value],
    ["a number", 3],
  ])("throws TypeError naming the position of a non-Stage entry (%s)", (_label, entry) => {
    expect(() => new Pipeline([stage, entry] as unknown as [typeof stage])).toThrow(TypeError);
    expect(() => new Pipeline([stage, entry] as unknown as [typeof stage])).toThrow(/stages\[1\]/);
  });

  it.each([
    ["options", "not an object"],
    ["beforeStage", { beforeStage: "log" }],
    ["afterStage", { afterStage: 42 }],
  ])("throws TypeError naming %s when it has the wrong type", (name, options) => {
    expect(() => new Pipeline([stage], options as never)).toThrow(TypeError);
    expect(() => new Pipeline([stage], options as never)).toThrow(name);
  });
});

describe("Pipeline.stages", () => {
  it("lists the stages in order", () => {
    const a = new Stage("a", (value: number) => value);
    const b = new Stage("b", (value: number) => String(value));
    const pipeline = new Pipeline([a, b]);
    expect(pipeline.stages).toHaveLength(2);
    expect(pipeline.stages[0]).toBe(a);
    expect(pipeline.stages[1]).toBe(b);
    expect(pipeline.stages.map((stage) => stage.name)).toEqual(["a", "b"]);
  });

  it("is frozen", () => {
    const pipeline = new Pipeline([new Stage("a", (value: number) => value)]);
    expect(Object.isFrozen(pipeline.stages)).toBe(true);
    expect(() => {
      (pipeline.stages as unknown[]).push(new Stage("b", (value: number) => value));
    }).toThrow(TypeError);
  });

  it("is a copy: changing the array given to the constructor changes neither the list nor what runs", async () => {
    const a = new Stage("a", (value: number) => value + 1);
    const stages: Stage<number, number>[] = [a];
    const pipeline = new Pipeline(stages);
    expect(pipeline.stages).not.toBe(stages);
    stages.push(new Stage("b", (value: number) => value * 100));
    stages[0] = new Stage("replaced", (value: number) => value - 1);
    expect(pipeline.stages).toEqual([a]);
    await expect(pipeline.run(1)).resolves.toBe(2);
  });
});

describe("Pipeline.run: options", () => {
  const pipeline = new Pipeline([new Stage("id", (value: number) => value)]);

  it("rejects (does not throw) with TypeError for a signal that is not an AbortSignal", async () => {
    let result: Promise<number> | undefined;
    expect(() => {
      result = pipeline.run(1, { signal: "abort" as unknown as AbortSignal });
    }).not.toThrow();
    await expect(result).rejects.toThrow(TypeError);
    await expect(result).rejects.toThrow(/signal/);
  });

  it("rejects with TypeError for a context that is not an object", async () => {
    await expect(pipeline.run(1, { context: 5 as never })).rejects.toThrow(TypeError);
    await expect(pipeline.run(1, { context: null as never })).rejects.toThrow(/context/);
  });

  it("rejects with TypeError for options that are not an object", async () => {
    await expect(pipeline.run(1, "options" as never)).rejects.toThrow(TypeError);
  });
});

describe("Pipeline.run: cancellation", () => {
  it("rejects with the exact reason of an already-aborted signal and runs nothing", async () => {
    const reason = new Error("cancelled before start");
    const handler = vi.fn((value: number) => value);
    const pipeline = new Pipeline([new Stage("never", handler)]);
    await expect(pipeline.run(1, { signal: AbortSignal.abort(reason) })).rejects.toBe(reason);
    expect(handler).not.toHaveBeenCalled();
  });

  it("rejects with a non-Error reason as is (not wrapped)", async () => {
    const controller = new AbortController();
    controller.abort("just a string");
    const pipeline = new Pipeline([new Stage("never", (value: number) => value)]);
    await expect(pipeline.run(1, { signal: controller.signal })).rejects.toBe("just a string");
  });

  it("rejects with the default AbortError reason when abort() is called without one", async () => {
    vi.useFakeTimers();
    const controller = new AbortController();
    const pipeline = new Pipeline([
      new Stage("slow", async (value: number) => {
        await sleep(1_000);
        return value;
      }),
    ]);
    const result = observe(pipeline.run(1, { signal: controller.signal }));
    await vi.advanceTimersByTimeAsync(10);
    controller.abort();
    await vi.advanceTimersByTimeAsync(0);
    expect(result.status).toBe("rejected");
    expect(result.reason).toBe(controller.signal.reason);
    expect((result.reason as DOMException).name).toBe("AbortError");
  });

  it("rejects promptly with the same reason when aborted mid-stage, even if the handler ignores the signal", async () => {
    vi.useFakeTimers();
    const reason = new Error("user cancelled");
    const controller = new AbortController();
    const later = vi.fn((value: number) => value);
    let finished = false;
    const pipeline = new Pipeline([
      new Stage("ignoresSignal", async (value: number) => {
        await sleep(10_000);
        finished = true;
        return value;
      }),
      new Stage("later", later),
    ]);
    const result = observe(pipeline.run(1, { signal: controller.signal }));
    await vi.advanceTimersByTimeAsync(100);
    expect(result.status).toBe("pending");

    controller.abort(reason);
    await vi.advanceTimersByTimeAsync(1);
    expect(result.status).toBe("rejected");
    expect(result.reason).toBe(reason);
    expect(finished).toBe(false);

    // The abandoned handler settling later changes nothing.
    await vi.advanceTimersByTimeAsync(10_000);
    expect(finished).toBe(true);
    expect(later).not.toHaveBeenCalled();
  });

  it("rejects with the reason, not a StageExecutionError, when a stage with a timeout is cancelled", async () => {
    vi.useFakeTimers();
    const reason = new Error("stop");
    const controller = new AbortController();
    const pipeline = new Pipeline([
      new Stage("timed", () => new Promise<number>(() => {}), { timeout: 1_000, retries: 3 }),
    ]);
    const result = observe(pipeline.run(1, { signal: controller.signal }));
    await vi.advanceTimersByTimeAsync(500);
    controller.abort(reason);
    await vi.advanceTimersByTimeAsync(0);
    expect(result).toMatchObject({ status: "rejected", reason });
  });

  it("aborts the handler's call.signal with the caller's reason", async () => {
    vi.useFakeTimers();
    const reason = new Error("stop");
    const controller = new AbortController();
    let seen: AbortSignal | undefined;
    const pipeline = new Pipeline([
      new Stage("watches", (value: number, _context, call) => {
        seen = call.signal;
        return new Promise<number>((resolve) => {
          setTimeout(() => {
            resolve(value);
          }, 60_000);
        });
      }),
    ]);
    const result = observe(pipeline.run(1, { signal: controller.signal }));
    await vi.advanceTimersByTimeAsync(0);
    expect(seen?.aborted).toBe(false);
    controller.abort(reason);
    await vi.advanceTimersByTimeAsync(0);
    expect(seen?.aborted).toBe(true);
    expect(seen?.reason).toBe(reason);
    expect(result).toMatchObject({ status: "rejected", reason });
  });

  it("also aborts call.signal of a stage with a timeout", async () => {
    vi.useFakeTimers();
    const reason = new Error("stop");
    const controller = new AbortController();
    let seen: AbortSignal | undefined;
    const pipeline = new Pipeline([
      new Stage(
        "watches",
        (_value: number, _context, call) => {
          seen = call.signal;
          return new Promise<number>(() => {});
        },
        { timeout: 5_000 },
      ),
    ]);
    const result = observe(pipeline.run(1, { signal: controller.signal }));
    await vi.advanceTimersByTimeAsync(10);
    controller.abort(reason);
    await vi.advanceTimersByTimeAsync(0);
    expect(seen?.reason).toBe(reason);
    expect(result).toMatchObject({ status: "rejected", reason });
  });

  it("starts no later stage once the signal has aborted, even between synchronous stages", async () => {
    const controller = new AbortController();
    const reason = new Error("aborted by stage one");
    const second = vi.fn((value: number) => value);
    const pipeline = new Pipeline([
      new Stage("first", (value: number) => {
        controller.abort(reason);
        return value;
      }),
      new Stage("second", second),
    ]);
    await expect(pipeline.run(1, { signal: controller.signal })).rejects.toBe(reason);
    expect(second).not.toHaveBeenCalled();
  });

  it("starts no later stage when aborted while an earlier async stage runs", async () => {
    vi.useFakeTimers();
    const controller = new AbortController();
    const reason = new Error("stop");
    const second = vi.fn((value: number) => value);
    const pipeline = new Pipeline([
      new Stage("first", async (value: number) => {
        await sleep(100);
        return value;
      }),
      new Stage("second", second),
    ]);
    const result = observe(pipeline.run(1, { signal: controller.signal }));
    await vi.advanceTimersByTimeAsync(50);
    controller.abort(reason);
    await vi.advanceTimersByTimeAsync(100);
    expect(result).toMatchObject({ status: "rejected", reason });
    expect(second).not.toHaveBeenCalled();
  });

  it("cuts a retry wait short and makes no further attempt", async () => {
    vi.useFakeTimers();
    const controller = new AbortController();
    const reason = new Error("stop");
    let attempts = 0;
    const pipeline = new Pipeline([
      new Stage(
        "flaky",
        async (): Promise<number> => {
          attempts++;
          throw new Error("fails");
        },
        { retries: 5, retryDelay: 1_000 },
      ),
    ]);
    const result = observe(pipeline.run(1, { signal: controller.signal }));
    await vi.advanceTimersByTimeAsync(100);
    expect(attempts).toBe(1);
    controller.abort(reason);
    await vi.advanceTimersByTimeAsync(0);
    expect(result).toMatchObject({ status: "rejected", reason });
    await vi.advanceTimersByTimeAsync(10_000);
    expect(attempts).toBe(1);
    expect(vi.getTimerCount()).toBe(0);
  });

  describe("leaves no listener on the caller's signal", () => {
    it("after a successful run", async () => {
      const controller = new AbortController();
      let during = -1;
      const pipeline = new Pipeline([
        new Stage("a", async (value: number) => {
          await Promise.resolve();
          during = abortListeners(controller.signal);
          return value + 1;
        }),
        new Stage("b", (value: number) => value * 2, { timeout: 1_000 }),
        new Stage("c", async (value: number) => value - 1, { timeout: 1_000, retries: 1 }),
      ]);
      await expect(pipeline.run(1, { signal: controller.signal })).resolves.toBe(3);
      expect(during).toBeGreaterThan(0);
      expect(abortListeners(controller.signal)).toBe(0);
    });

    it("after a failed run", async () => {
      const controller = new AbortController();
      const pipeline = new Pipeline([
        new Stage("a", async (value: number) => value + 1, { timeout: 1_000 }),
        new Stage(
          "fails",
          async (): Promise<number> => {
            throw new Error("no");
          },
          { retries: 2 },
        ),
      ]);
      await expect(pipeline.run(1, { signal: controller.signal })).rejects.toBeInstanceOf(
        StageExecutionError,
      );
      expect(abortListeners(controller.signal)).toBe(0);
    });

    it("after a timed-out run", async () => {
      vi.useFakeTimers();
      const controller = new AbortController();
      const pipeline = new Pipeline([
        new Stage("hangs", () => new Promise<number>(() => {}), { timeout: 50 }),
      ]);
      const result = observe(pipeline.run(1, { signal: controller.signal }));
      await vi.advanceTimersByTimeAsync(50);
      expect(result.status).toBe("rejected");
      expect(abortListeners(controller.signal)).toBe(0);
      expect(vi.getTimerCount()).toBe(0);
    });

    it("after a cancelled run", async () => {
      vi.useFakeTimers();
      const controller = new AbortController();
      const pipeline = new Pipeline([
        new Stage(
          "slow",
          async (value: number) => {
            await sleep(1_000);
            return value;
          },
          { timeout: 5_000 },
        ),
      ]);
      const result = observe(pipeline.run(1, { signal: controller.signal }));
      await vi.advanceTimersByTimeAsync(10);
      expect(abortListeners(controller.signal)).toBeGreaterThan(0);
      controller.abort(new Error("stop"));
      await vi.advanceTimersByTimeAsync(0);
      expect(result.status).toBe("rejected");
      expect(abortListeners(controller.signal)).toBe(0);
    });
  });
});

describe("aroundRun", () => {
  it("wraps each run with its input, context and signal, and may change the output", async () => {
    const seen: unknown[] = [];
    const pipeline = new Pipeline([new Stage("double", async (value: number) => value * 2)], {
      aroundRun: async (run, input, context, signal) => {
        seen.push({ input, context, signal });
        return `${String(await run())}!`;
      },
    });
    const context = { id: 1 };
    const controller = new AbortController();
    await expect(pipeline.run(4, { context, signal: controller.signal })).resolves.toBe("8!");
    expect(seen).toEqual([{ input: 4, context, signal: controller.signal }]);
    expect((seen[0] as { context: unknown }).context).toBe(context);
  });

  it("wraps every map item with that item's own context copy", async () => {
    const contexts: unknown[] = [];
    const pipeline = new Pipeline([new Stage("id", (value: number) => value)], {
      aroundRun: (run, _input, context) => {
        contexts.push(context);
        return run();
      },
    });
    const template = { tenant: "acme" };
    await expect(pipeline.map([1, 2, 3], 2, { context: template })).resolves.toEqual([1, 2, 3]);
    expect(contexts).toHaveLength(3);
    expect(new Set(contexts).size).toBe(3);
    for (const context of contexts) {
      expect(context).not.toBe(template);
      expect(context).toEqual(template);
    }
  });

  it("passes a stage's failure through run(), and its own errors, sync or async, to the caller", async () => {
    const failing = new Pipeline(
      [
        new Stage("boom", (): number => {
          throw new Error("boom");
        }),
      ],
      { aroundRun: (run) => run() },
    );
    await expect(failing.run(1)).rejects.toBeInstanceOf(StageExecutionError);
    const own = new Error("wrapper");
    const throwing = new Pipeline([new Stage("id", (value: number) => value)], {
      aroundRun: () => {
        throw own;
      },
    });
    await expect(throwing.run(1)).rejects.toBe(own);
    const settled = await throwing.mapSettled([1]);
    expect(settled).toEqual([{ status: "rejected", reason: own }]);
  });

  it("is checked at construction", () => {
    expect(
      () =>
        new Pipeline([new Stage("id", (value: number) => value)], {
          aroundRun: "no" as never,
        }),
    ).toThrow(new TypeError('aroundRun must be a function, got "no"'));
  });
});

describe("run with a signal: one listener per run", () => {
  it("adds one listener to the caller's signal for a whole run of several stages", async () => {
    const controller = new AbortController();
    const added = vi.spyOn(controller.signal, "addEventListener");
    const stages = Array.from(
      { length: 5 },
      (_, index) => new Stage(`s${String(index)}`, async (value: number) => value + 1),
    );
    const pipeline = new Pipeline(stages as unknown as [Stage<number, number>]);
    await expect(pipeline.run(0, { signal: controller.signal })).resolves.toBe(5);
    expect(added).toHaveBeenCalledTimes(1);
    expect(abortListeners(controller.signal)).toBe(0);
  });
});
