/**
 * Cancellation that must never be missed (issue 11, items 1, 2, 3 and 10): an abort made
 * synchronously inside user code, an `aroundRun` that awaits before calling `run()`, a
 * stream left with `return()` or `throw()` while a `next()` is pending, and the library's
 * own promises settling once.
 */
import { afterEach, describe, expect, it, vi } from "vitest";
import { Pipeline, Stage, type Middleware, type StageCall } from "../src/index.js";
import { counted, range } from "./support/iterables.js";
import { never, observe, rejectionOf } from "./support/promises.js";
import { abortListeners } from "./support/signals.js";
import { flush, sleep } from "./support/time.js";

afterEach(() => {
  vi.useRealTimers();
});

/** A handler that aborts its caller's controller, then ignores every signal and hangs or answers late. */
function abortingHandler(controller: AbortController, outcome: "hang" | "late") {
  return (value: number): Promise<number> => {
    controller.abort(new Error("aborted inside the handler"));
    return outcome === "hang" ? never<number>() : sleep(50).then(() => value);
  };
}

describe("cancellation: an abort made synchronously inside user code", () => {
  it.each(["hang", "late"] as const)(
    "run without hooks rejects at once when the handler aborts the signal (%s)",
    async (outcome) => {
      vi.useFakeTimers();
      const controller = new AbortController();
      const pipeline = new Pipeline([new Stage("s", abortingHandler(controller, outcome))]);
      const run = observe(pipeline.run(1, { signal: controller.signal }));
      await vi.advanceTimersByTimeAsync(0);
      expect(run.status).toBe("rejected");
      expect(run.reason).toBe(controller.signal.reason);
      await vi.advanceTimersByTimeAsync(100);
      expect(abortListeners(controller.signal)).toBe(0);
    },
  );

  it("run rejects when a synchronous stage aborts the signal and returns a value", async () => {
    const controller = new AbortController();
    const pipeline = new Pipeline([
      new Stage("s", (value: number) => {
        controller.abort("stop");
        return value;
      }),
    ]);
    await expect(pipeline.run(1, { signal: controller.signal })).rejects.toBe("stop");
  });

  it("run rejects at once when shouldRetry aborts the signal and the retry hangs", async () => {
    vi.useFakeTimers();
    const controller = new AbortController();
    let calls = 0;
    const pipeline = new Pipeline([
      new Stage(
        "s",
        (): Promise<number> => (++calls === 1 ? Promise.reject(new Error("first")) : never()),
        {
          retries: 1,
          shouldRetry: () => {
            controller.abort("stop");
            return true;
          },
        },
      ),
    ]);
    const run = observe(pipeline.run(1, { signal: controller.signal }));
    await vi.advanceTimersByTimeAsync(0);
    expect(run).toMatchObject({ status: "rejected", reason: "stop" });
    expect(calls).toBe(1);
  });

  it("run with a middleware rejects at once when the middleware aborts the signal", async () => {
    vi.useFakeTimers();
    const controller = new AbortController();
    const aborting: Middleware = async (next, _name, value) => {
      controller.abort("stop");
      await sleep(1_000);
      return next(value);
    };
    const pipeline = new Pipeline([new Stage("s", (value: number) => value)], {
      middlewares: [aborting],
    });
    const run = observe(pipeline.run(1, { signal: controller.signal }));
    await vi.advanceTimersByTimeAsync(0);
    expect(run).toMatchObject({ status: "rejected", reason: "stop" });
  });

  it.each(["map", "mapSettled"] as const)(
    "%s rejects at once when a handler aborts the caller's signal",
    async (method) => {
      vi.useFakeTimers();
      const controller = new AbortController();
      const pipeline = new Pipeline([new Stage("s", abortingHandler(controller, "hang"))]);
      const batch = observe<unknown>(pipeline[method]([1, 2, 3], 2, { signal: controller.signal }));
      await vi.advanceTimersByTimeAsync(0);
      expect(batch.status).toBe("rejected");
      expect(batch.reason).toBe(controller.signal.reason);
    },
  );

  it("a hooked run rejects at once when beforeStage aborts the signal and then hangs", async () => {
    const controller = new AbortController();
    const handler = vi.fn((value: number) => value);
    const after = vi.fn();
    const pipeline = new Pipeline([new Stage("s", handler)], {
      beforeStage: () => {
        controller.abort("stop");
        return never();
      },
      afterStage: after,
    });
    await expect(pipeline.run(1, { signal: controller.signal })).rejects.toBe("stop");
    expect(handler).not.toHaveBeenCalled();
    expect(after).toHaveBeenCalledWith("s", 1, undefined, "stop");
  });

  it("a hooked run rejects when afterStage aborts the signal after the last stage", async () => {
    const controller = new AbortController();
    const pipeline = new Pipeline([new Stage("s", (value: number) => value)], {
      afterStage: () => {
        controller.abort("stop");
      },
    });
    await expect(pipeline.run(1, { signal: controller.signal })).rejects.toBe("stop");
  });
});

describe("cancellation: aroundRun that awaits before calling run()", () => {
  it("starts no stage when the signal aborts while aroundRun waits", async () => {
    vi.useFakeTimers();
    const controller = new AbortController();
    const handler = vi.fn(() => never<number>());
    const pipeline = new Pipeline([new Stage("s", handler)], {
      aroundRun: async (run) => {
        await sleep(100);
        return run();
      },
    });
    const run = observe(pipeline.run(1, { signal: controller.signal }));
    await vi.advanceTimersByTimeAsync(50);
    controller.abort("stop");
    await vi.advanceTimersByTimeAsync(100);
    expect(run).toMatchObject({ status: "rejected", reason: "stop" });
    expect(handler).not.toHaveBeenCalled();
  });

  it("starts no stage when aroundRun aborts the signal itself", async () => {
    const controller = new AbortController();
    const handler = vi.fn((value: number) => value);
    const pipeline = new Pipeline([new Stage("s", handler)], {
      aroundRun: (run) => {
        controller.abort("stop");
        return run();
      },
    });
    await expect(pipeline.run(1, { signal: controller.signal })).rejects.toBe("stop");
    expect(handler).not.toHaveBeenCalled();
  });

  it("map: items whose aroundRun was waiting start nothing after the batch failed", async () => {
    vi.useFakeTimers();
    const started: number[] = [];
    const pipeline = new Pipeline(
      [
        new Stage("s", (value: number) => {
          started.push(value);
          if (value === 0) throw new Error("boom");
          return value;
        }),
      ],
      {
        aroundRun: async (run, input) => {
          if (input !== 0) await sleep(100);
          return run();
        },
      },
    );
    const map = observe(pipeline.map(range(4), 4));
    await vi.advanceTimersByTimeAsync(200);
    expect(map.status).toBe("rejected");
    expect(started).toEqual([0]);
  });

  it("stream: items whose aroundRun was waiting start nothing after the consumer left", async () => {
    vi.useFakeTimers();
    const started: number[] = [];
    const pipeline = new Pipeline(
      [
        new Stage("s", (value: number) => {
          started.push(value);
          return value;
        }),
      ],
      {
        aroundRun: async (run, input) => {
          if (input !== 0) await sleep(100);
          return run();
        },
      },
    );
    for await (const value of pipeline.stream(range(4), 4)) {
      expect(value).toBe(0);
      break;
    }
    await vi.advanceTimersByTimeAsync(200);
    expect(started).toEqual([0]);
  });
});

describe("cancellation: leaving a stream while a next() is pending", () => {
  /** A stream of items that hang until their call.signal aborts, and what their signals did. */
  function hangingStream() {
    const signals: AbortSignal[] = [];
    const { source, items } = counted();
    const pipeline = new Pipeline([
      new Stage("hang", (_value: number, _context: object, call: StageCall) => {
        signals.push(call.signal);
        return never<number>();
      }),
    ]);
    return { stream: pipeline.stream(items, 3), signals, source };
  }

  it("return() settles at once, ends the pending next(), aborts in-flight items and closes the input", async () => {
    const { stream, signals, source } = hangingStream();
    const pending = observe(stream.next());
    await flush();
    expect(signals).toHaveLength(3);
    await expect(stream.return()).resolves.toEqual({ done: true, value: undefined });
    await flush();
    expect(pending).toMatchObject({ status: "fulfilled", value: { done: true } });
    expect(signals.every((signal) => signal.aborted)).toBe(true);
    expect(source.closed).toBe(true);
    await expect(stream.next()).resolves.toEqual({ done: true, value: undefined });
  });

  it("throw() settles at once with its error and stops everything the same way", async () => {
    const { stream, signals, source } = hangingStream();
    const pending = observe(stream.next());
    await flush();
    const error = new Error("consumer failed");
    await expect(stream.throw(error)).rejects.toBe(error);
    await flush();
    expect(pending).toMatchObject({ status: "fulfilled", value: { done: true } });
    expect(signals.every((signal) => signal.aborted)).toBe(true);
    expect(source.closed).toBe(true);
    await expect(stream.next()).resolves.toEqual({ done: true, value: undefined });
  });

  it("throw() before the first next() runs nothing and rejects with its error", async () => {
    const { stream, signals, source } = hangingStream();
    await expect(stream.throw("nope")).rejects.toBe("nope");
    expect(signals).toHaveLength(0);
    expect(source.pulled).toBe(0);
    await expect(stream.next()).resolves.toEqual({ done: true, value: undefined });
  });

  it("several pending next() calls all end when the consumer returns", async () => {
    const { stream } = hangingStream();
    const reads = [observe(stream.next()), observe(stream.next())];
    await flush();
    await stream.return();
    await flush();
    expect(reads.map((read) => read.value)).toEqual([
      { done: true, value: undefined },
      { done: true, value: undefined },
    ]);
  });
});

describe("cancellation: the library's promises settle once", () => {
  it("a cancelled run whose abandoned work settles later fires no multipleResolves", async () => {
    const events: unknown[] = [];
    const onMultiple = (type: string): void => {
      events.push(type);
    };
    process.on("multipleResolves", onMultiple);
    try {
      const scenarios = [
        new Pipeline([new Stage("s", (value: number) => sleep(5).then(() => value))]),
        new Pipeline([
          new Stage("s", () => sleep(5).then(() => Promise.reject(new Error("late")))),
        ]),
        new Pipeline([new Stage("s", (value: number) => sleep(5).then(() => value))], {
          middlewares: [(next, _name, value) => next(value)],
        }),
      ];
      for (const pipeline of scenarios) {
        const controller = new AbortController();
        const run = rejectionOf(pipeline.run(1, { signal: controller.signal }));
        controller.abort("stop");
        expect(await run).toBe("stop");
      }
      await sleep(20);
    } finally {
      process.off("multipleResolves", onMultiple);
    }
    expect(events).toEqual([]);
  });
});
