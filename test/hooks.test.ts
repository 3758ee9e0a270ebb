import { afterEach, describe, expect, it, vi } from "vitest";
import { Pipeline, Stage, StageExecutionError } from "../src/index.js";
import { observe } from "./support/promises.js";
import { sleep } from "./support/time.js";

afterEach(() => {
  vi.useRealTimers();
});

describe("hooks: order and arguments", () => {
  it("calls beforeStage → stage → afterStage for each stage, in stage order", async () => {
    const events: unknown[][] = [];
    const pipeline = new Pipeline(
      [
        new Stage("addOne", (value: number) => {
          events.push(["stage addOne", value]);
          return value + 1;
        }),
        new Stage("double", async (value: number) => {
          events.push(["stage double", value]);
          return value * 2;
        }),
      ],
      {
        beforeStage: (name, input) => {
          events.push(["before", name, input]);
        },
        afterStage: (name, input, output, error) => {
          events.push(["after", name, input, output, error]);
        },
      },
    );

    await expect(pipeline.run(10)).resolves.toBe(22);
    expect(events).toEqual([
      ["before", "addOne", 10],
      ["stage addOne", 10],
      ["after", "addOne", 10, 11, undefined],
      ["before", "double", 11],
      ["stage double", 11],
      ["after", "double", 11, 22, undefined],
    ]);
  });

  it("works with only beforeStage or only afterStage", async () => {
    const before: string[] = [];
    const after: string[] = [];
    const stages = [
      new Stage("a", (value: number) => value + 1),
      new Stage("b", (value: number) => value + 1),
    ] as const;
    const onlyBefore = new Pipeline(stages, {
      beforeStage: (name) => {
        before.push(name);
      },
    });
    const onlyAfter = new Pipeline(stages, {
      afterStage: (name) => {
        after.push(name);
      },
    });
    await expect(onlyBefore.run(0)).resolves.toBe(2);
    await expect(onlyAfter.run(0)).resolves.toBe(2);
    expect(before).toEqual(["a", "b"]);
    expect(after).toEqual(["a", "b"]);
  });

  it("gives afterStage output undefined and the StageExecutionError the run rejects with when a stage fails", async () => {
    const calls: unknown[][] = [];
    const boom = new Error("boom");
    const pipeline = new Pipeline(
      [
        new Stage("ok", (value: number) => value + 1),
        new Stage("broken", (): number => {
          throw boom;
        }),
        new Stage("never", (value: number) => value),
      ],
      {
        beforeStage: (name) => {
          calls.push(["before", name]);
        },
        afterStage: (name, input, output, error) => {
          calls.push(["after", name, input, output, error]);
        },
      },
    );

    const error: unknown = await pipeline.run(1).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(StageExecutionError);
    expect((error as StageExecutionError).originalError).toBe(boom);
    expect(calls).toEqual([
      ["before", "ok"],
      ["after", "ok", 1, 2, undefined],
      ["before", "broken"],
      ["after", "broken", 2, undefined, error],
    ]);
    expect(calls[3]?.[4]).toBe(error);
  });

  it("runs the hooks around every item of map", async () => {
    const calls: string[] = [];
    const pipeline = new Pipeline([new Stage("double", (value: number) => value * 2)], {
      beforeStage: (name, input) => {
        calls.push(`before ${name} ${String(input)}`);
      },
      afterStage: (name, _input, output) => {
        calls.push(`after ${name} ${String(output)}`);
      },
    });
    await expect(pipeline.map([1, 2, 3], 1)).resolves.toEqual([2, 4, 6]);
    expect(calls).toEqual([
      "before double 1",
      "after double 2",
      "before double 2",
      "after double 4",
      "before double 3",
      "after double 6",
    ]);
  });
});

describe("hooks: arity decides whether the context is passed", () => {
  it("passes the context to a beforeStage that declares three parameters", async () => {
    const context = { requestId: "r1" };
    const seen: unknown[] = [];
    const pipeline = new Pipeline([new Stage("s", (value: number) => value)], {
      beforeStage: (_name, _input, ctx) => {
        seen.push(ctx);
      },
    });
    await pipeline.run(1, { context });
    expect(seen).toHaveLength(1);
    expect(seen[0]).toBe(context);
  });

  it("calls a beforeStage that declares two parameters with exactly two arguments", async () => {
    const argumentCounts: number[] = [];
    const names: string[] = [];
    const pipeline = new Pipeline([new Stage("s", (value: number) => value)], {
      beforeStage: function (name: string, input: unknown) {
        argumentCounts.push(arguments.length);
        names.push(`${name}:${String(input)}`);
      },
    });
    await pipeline.run(1, { context: { requestId: "r1" } });
    expect(argumentCounts).toEqual([2]);
    expect(names).toEqual(["s:1"]);
  });

  it("passes the context to an afterStage that declares five parameters", async () => {
    const context = { requestId: "r1" };
    const seen: unknown[] = [];
    const pipeline = new Pipeline([new Stage("s", (value: number) => value + 1)], {
      afterStage: (name, input, output, error, ctx) => {
        seen.push(name, input, output, error, ctx);
      },
    });
    await pipeline.run(1, { context });
    expect(seen).toEqual(["s", 1, 2, undefined, context]);
    expect(seen[4]).toBe(context);
  });

  it("calls an afterStage that declares four parameters with exactly four arguments", async () => {
    const argumentCounts: number[] = [];
    const seen: unknown[] = [];
    const pipeline = new Pipeline([new Stage("s", (value: number) => value)], {
      afterStage: function (name: string, input: unknown, output: unknown, error: unknown) {
        argumentCounts.push(arguments.length);
        seen.push([name, input, output, error]);
      },
    });
    await pipeline.run(1, { context: { requestId: "r1" } });
    expect(argumentCounts).toEqual([4]);
    expect(seen).toEqual([["s", 1, 1, undefined]]);
  });

  it("passes the per-run context to hooks when the caller gave none", async () => {
    const seen: unknown[] = [];
    const pipeline = new Pipeline([new Stage("s", (value: number) => value)], {
      beforeStage: (_name, _input, ctx) => {
        seen.push(ctx);
      },
      afterStage: (_name, _input, _output, _error, ctx) => {
        seen.push(ctx);
      },
    });
    await pipeline.run(1);
    expect(seen).toHaveLength(2);
    expect(seen[0]).toEqual({});
    expect(seen[1]).toBe(seen[0]);
  });
});

describe("hooks: sync and async hooks are awaited", () => {
  it("starts the stage only after an async beforeStage has completed", async () => {
    vi.useFakeTimers();
    const events: string[] = [];
    const pipeline = new Pipeline(
      [
        new Stage("s", (value: number) => {
          events.push("stage");
          return value;
        }),
      ],
      {
        beforeStage: async () => {
          events.push("before start");
          await sleep(100);
          events.push("before end");
        },
      },
    );
    const result = observe(pipeline.run(1));
    await vi.advanceTimersByTimeAsync(99);
    expect(events).toEqual(["before start"]);
    expect(result.status).toBe("pending");
    await vi.advanceTimersByTimeAsync(1);
    expect(events).toEqual(["before start", "before end", "stage"]);
    expect(result).toMatchObject({ status: "fulfilled", value: 1 });
  });

  it("awaits an async afterStage before the next stage starts and before run resolves", async () => {
    vi.useFakeTimers();
    const events: string[] = [];
    const pipeline = new Pipeline(
      [
        new Stage("a", (value: number) => {
          events.push("stage a");
          return value;
        }),
        new Stage("b", (value: number) => {
          events.push("stage b");
          return value;
        }),
      ],
      {
        afterStage: async (name) => {
          await sleep(50);
          events.push(`after ${name}`);
        },
      },
    );
    const result = observe(pipeline.run(1));
    await vi.advanceTimersByTimeAsync(49);
    expect(events).toEqual(["stage a"]);
    await vi.advanceTimersByTimeAsync(1);
    expect(events).toEqual(["stage a", "after a", "stage b"]);
    expect(result.status).toBe("pending");
    await vi.advanceTimersByTimeAsync(50);
    expect(events).toEqual(["stage a", "after a", "stage b", "after b"]);
    expect(result).toMatchObject({ status: "fulfilled", value: 1 });
  });

  it("awaits a thenable returned by a hook", async () => {
    vi.useFakeTimers();
    const events: string[] = [];
    const pipeline = new Pipeline(
      [
        new Stage("s", (value: number) => {
          events.push("stage");
          return value;
        }),
      ],
      {
        beforeStage: () => ({
          then(resolve: () => void) {
            setTimeout(() => {
              events.push("thenable resolved");
              resolve();
            }, 30);
          },
        }),
      },
    );
    const result = observe(pipeline.run(1));
    await vi.advanceTimersByTimeAsync(29);
    expect(events).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(events).toEqual(["thenable resolved", "stage"]);
    expect(result.status).toBe("fulfilled");
  });
});

describe("hooks: failures are ignored", () => {
  it("continues the pipeline when beforeStage throws", async () => {
    const handler = vi.fn((value: number) => value + 1);
    const pipeline = new Pipeline([new Stage("s", handler), new Stage("t", handler)], {
      beforeStage: () => {
        throw new Error("hook failed");
      },
    });
    await expect(pipeline.run(1)).resolves.toBe(3);
    expect(handler).toHaveBeenCalledTimes(2);
  });

  it("continues the pipeline when an async beforeStage rejects", async () => {
    const pipeline = new Pipeline(
      [new Stage("s", (value: number) => value + 1), new Stage("t", (value: number) => value * 3)],
      {
        beforeStage: async () => {
          await Promise.resolve();
          throw new Error("async hook failed");
        },
      },
    );
    await expect(pipeline.run(1)).resolves.toBe(6);
  });

  it("continues the pipeline when afterStage throws or rejects", async () => {
    const throwing = new Pipeline(
      [new Stage("s", (value: number) => value + 1), new Stage("t", (value: number) => value * 3)],
      {
        afterStage: () => {
          throw new Error("hook failed");
        },
      },
    );
    const rejecting = new Pipeline(
      [new Stage("s", (value: number) => value + 1), new Stage("t", (value: number) => value * 3)],
      {
        afterStage: () => Promise.reject(new Error("async hook failed")),
      },
    );
    await expect(throwing.run(1)).resolves.toBe(6);
    await expect(rejecting.run(1)).resolves.toBe(6);
  });

  it("continues the pipeline when a hook throws a non-Error value", async () => {
    const pipeline = new Pipeline([new Stage("s", (value: number) => value + 1)], {
      beforeStage: () => {
        throw undefined;
      },
      afterStage: () => {
        throw null;
      },
    });
    await expect(pipeline.run(1)).resolves.toBe(2);
  });

  it("never replaces the stage's error with a throwing afterStage's error", async () => {
    const boom = new Error("stage failed");
    const pipeline = new Pipeline(
      [
        new Stage("broken", (): number => {
          throw boom;
        }),
      ],
      {
        beforeStage: () => {
          throw new Error("before failed");
        },
        afterStage: () => {
          throw new Error("after failed");
        },
      },
    );
    const error: unknown = await pipeline.run(1).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(StageExecutionError);
    expect((error as StageExecutionError).originalError).toBe(boom);
  });

  it("never replaces the stage's error with a rejecting afterStage's error", async () => {
    const boom = new Error("stage failed");
    const pipeline = new Pipeline(
      [
        new Stage("broken", async (): Promise<number> => {
          throw boom;
        }),
      ],
      {
        afterStage: async () => {
          throw new Error("after failed");
        },
      },
    );
    const error: unknown = await pipeline.run(1).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(StageExecutionError);
    expect((error as StageExecutionError).originalError).toBe(boom);
  });
});

describe("hooks and cancellation", () => {
  it("calls afterStage with the abort reason when the caller's signal aborts mid-stage", async () => {
    vi.useFakeTimers();
    const reason = new Error("user cancelled");
    const controller = new AbortController();
    const calls: unknown[][] = [];
    const pipeline = new Pipeline(
      [
        new Stage("slow", async (value: number) => {
          await sleep(10_000);
          return value;
        }),
      ],
      {
        afterStage: (name, input, output, error) => {
          calls.push([name, input, output, error]);
        },
      },
    );
    const result = observe(pipeline.run(7, { signal: controller.signal }));
    await vi.advanceTimersByTimeAsync(100);
    expect(calls).toEqual([]);
    controller.abort(reason);
    await vi.advanceTimersByTimeAsync(0);
    expect(calls).toEqual([["slow", 7, undefined, reason]]);
    expect(calls[0]?.[3]).toBe(reason);
    expect(result).toMatchObject({ status: "rejected", reason });
  });

  it("starts no later beforeStage or stage after the caller's signal aborts", async () => {
    vi.useFakeTimers();
    const reason = new Error("stop");
    const controller = new AbortController();
    const before: string[] = [];
    const after: string[] = [];
    const second = vi.fn((value: number) => value);
    const pipeline = new Pipeline(
      [
        new Stage("first", async (value: number) => {
          await sleep(100);
          return value;
        }),
        new Stage("second", second),
      ],
      {
        beforeStage: (name) => {
          before.push(name);
        },
        afterStage: (name) => {
          after.push(name);
        },
      },
    );
    const result = observe(pipeline.run(1, { signal: controller.signal }));
    await vi.advanceTimersByTimeAsync(50);
    controller.abort(reason);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(result).toMatchObject({ status: "rejected", reason });
    expect(before).toEqual(["first"]);
    expect(after).toEqual(["first"]);
    expect(second).not.toHaveBeenCalled();
  });

  it("starts no later stage when the signal aborts during an afterStage hook", async () => {
    vi.useFakeTimers();
    const reason = new Error("stop");
    const controller = new AbortController();
    const before: string[] = [];
    const second = vi.fn((value: number) => value);
    const pipeline = new Pipeline(
      [new Stage("first", (value: number) => value), new Stage("second", second)],
      {
        beforeStage: (name) => {
          before.push(name);
        },
        afterStage: async () => {
          await sleep(100);
        },
      },
    );
    const result = observe(pipeline.run(1, { signal: controller.signal }));
    await vi.advanceTimersByTimeAsync(50);
    controller.abort(reason);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(result).toMatchObject({ status: "rejected", reason });
    expect(before).toEqual(["first"]);
    expect(second).not.toHaveBeenCalled();
  });

  it("does not run the stage when the signal aborts during its async beforeStage, and afterStage closes it with the reason", async () => {
    vi.useFakeTimers();
    const reason = new Error("stop");
    const controller = new AbortController();
    const handler = vi.fn((value: number) => value);
    const after: unknown[][] = [];
    const pipeline = new Pipeline([new Stage("guarded", handler)], {
      beforeStage: async () => {
        await sleep(100);
      },
      afterStage: (name, input, output, error) => {
        after.push([name, input, output, error]);
      },
    });
    const result = observe(pipeline.run(1, { signal: controller.signal }));
    await vi.advanceTimersByTimeAsync(50);
    controller.abort(reason);
    await vi.advanceTimersByTimeAsync(100);
    expect(result).toMatchObject({ status: "rejected", reason });
    expect(handler).not.toHaveBeenCalled();
    expect(after).toEqual([["guarded", 1, undefined, reason]]);
  });

  it("calls no hook at all when the signal was aborted before run", async () => {
    const beforeStage = vi.fn();
    const afterStage = vi.fn();
    const pipeline = new Pipeline([new Stage("s", (value: number) => value)], {
      beforeStage,
      afterStage,
    });
    const reason = new Error("already");
    await expect(pipeline.run(1, { signal: AbortSignal.abort(reason) })).rejects.toBe(reason);
    expect(beforeStage).not.toHaveBeenCalled();
    expect(afterStage).not.toHaveBeenCalled();
  });

  it("calls afterStage promptly with the abort reason when a map batch is cancelled mid-stage", async () => {
    vi.useFakeTimers();
    const reason = new Error("batch cancelled");
    const controller = new AbortController();
    const after: unknown[][] = [];
    const pipeline = new Pipeline(
      [
        new Stage("slow", async (value: number) => {
          await sleep(10_000);
          return value;
        }),
      ],
      {
        afterStage: (name, input, output, error) => {
          after.push([name, input, output, error]);
        },
      },
    );
    const result = observe(pipeline.map([1], { signal: controller.signal }));
    await vi.advanceTimersByTimeAsync(100);
    controller.abort(reason);
    await vi.advanceTimersByTimeAsync(1);
    expect(result).toMatchObject({ status: "rejected", reason });
    expect(after).toEqual([["slow", 1, undefined, reason]]);
  });
});
