import { getEventListeners } from "node:events";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import {
  PipelineError,
  Stage,
  StageExecutionError,
  TimeoutError,
  type Context,
  type StageCall,
} from "../src/index.js";
import { never, rejectionOf, track } from "./support/promises.js";
import { sleep } from "./support/time.js";

beforeEach(() => {
  vi.useFakeTimers();
});

afterEach(() => {
  vi.useRealTimers();
  vi.restoreAllMocks();
});

describe("Stage timeout: an attempt that outlives it", () => {
  it("rejects with StageExecutionError whose originalError is a TimeoutError", async () => {
    const stage = new Stage("slow", (): Promise<number> => never(), { timeout: 100 });
    const run = track(stage.run(1));
    await vi.advanceTimersByTimeAsync(100);
    expect(run.settled).toBe(true);
    const error = (await rejectionOf(run.promise)) as StageExecutionError;
    expect(error).toBeInstanceOf(StageExecutionError);
    expect(error.stageName).toBe("slow");
    expect(error.attempts).toBe(1);
    expect(error.originalError).toBeInstanceOf(TimeoutError);
    expect(error.cause).toBe(error.originalError);
    const timeout = error.originalError as TimeoutError;
    expect(timeout).toBeInstanceOf(PipelineError);
    expect(timeout.name).toBe("TimeoutError");
    expect(timeout.timeout).toBe(100);
    expect(timeout.stageName).toBe("slow");
    expect(timeout.message).toContain("slow");
    expect(timeout.message).toContain("100");
    expect(error.message).toContain("slow");
  });

  it("does not fire one millisecond early", async () => {
    const stage = new Stage("edge", (): Promise<number> => never(), { timeout: 100 });
    const run = track(stage.run(1));
    await vi.advanceTimersByTimeAsync(99);
    expect(run.settled).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(run.settled).toBe(true);
    await expect(run.promise).rejects.toBeInstanceOf(StageExecutionError);
  });

  it("resolves normally when the attempt finishes in time", async () => {
    const stage = new Stage(
      "quick",
      async (value: number) => {
        await new Promise((resolve) => setTimeout(resolve, 99));
        return value * 2;
      },
      { timeout: 100 },
    );
    const run = track(stage.run(21));
    await vi.advanceTimersByTimeAsync(99);
    await expect(run.promise).resolves.toBe(42);
  });

  it("rejects with the handler's own error when it fails before the timeout", async () => {
    const original = new Error("early failure");
    const stage = new Stage(
      "early",
      async (): Promise<number> => {
        await new Promise((resolve) => setTimeout(resolve, 10));
        throw original;
      },
      { timeout: 100 },
    );
    const run = track(stage.run(1));
    await vi.advanceTimersByTimeAsync(10);
    const error = (await rejectionOf(run.promise)) as StageExecutionError;
    expect(error.originalError).toBe(original);
  });

  it("times out a handler that takes the value alone", async () => {
    const stage = new Stage(
      "valueOnly",
      async (value: number): Promise<number> => {
        await never();
        return value;
      },
      { timeout: 50 },
    );
    const run = track(stage.run(1));
    await vi.advanceTimersByTimeAsync(50);
    const error = (await rejectionOf(run.promise)) as StageExecutionError;
    expect(error.originalError).toBeInstanceOf(TimeoutError);
  });

  it("times out when the caller also passed a signal, without aborting the caller's signal", async () => {
    const controller = new AbortController();
    const stage = new Stage("withSignal", (): Promise<number> => never(), { timeout: 50 });
    const run = track(stage.run(1, { signal: controller.signal }));
    await vi.advanceTimersByTimeAsync(50);
    const error = (await rejectionOf(run.promise)) as StageExecutionError;
    expect(error).toBeInstanceOf(StageExecutionError);
    expect(error.originalError).toBeInstanceOf(TimeoutError);
    expect(controller.signal.aborted).toBe(false);
    expect(getEventListeners(controller.signal, "abort")).toHaveLength(0);
  });
});

describe("Stage timeout: call.signal", () => {
  it("aborts with the TimeoutError as its reason", async () => {
    let signal: AbortSignal | undefined;
    const stage = new Stage(
      "watched",
      (_value: number, _context: Context, call: StageCall): Promise<number> => {
        signal = call.signal;
        return never();
      },
      { timeout: 100 },
    );
    const run = track(stage.run(1));
    await vi.advanceTimersByTimeAsync(99);
    expect(signal?.aborted).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    const error = (await rejectionOf(run.promise)) as StageExecutionError;
    expect(signal?.aborted).toBe(true);
    expect(signal?.reason).toBeInstanceOf(TimeoutError);
    expect(signal?.reason).toBe(error.originalError);
  });

  it("aborts with the TimeoutError also when the caller passed a signal", async () => {
    const controller = new AbortController();
    let signal: AbortSignal | undefined;
    const stage = new Stage(
      "watchedWithCaller",
      (_value: number, _context: Context, call: StageCall): Promise<number> => {
        signal = call.signal;
        return never();
      },
      { timeout: 100 },
    );
    const run = track(stage.run(1, { signal: controller.signal }));
    await vi.advanceTimersByTimeAsync(100);
    const error = (await rejectionOf(run.promise)) as StageExecutionError;
    expect(signal?.reason).toBe(error.originalError);
    expect(controller.signal.aborted).toBe(false);
  });

  it("lets a cooperative handler stop on the abort event", async () => {
    let sawAbort = false;
    const stage = new Stage(
      "cooperative",
      (_value: number, _context: Context, call: StageCall) =>
        new Promise<number>((_resolve, reject) => {
          call.signal.addEventListener("abort", () => {
            sawAbort = true;
            reject(call.signal.reason as Error);
          });
        }),
      { timeout: 100 },
    );
    const run = track(stage.run(1));
    await vi.advanceTimersByTimeAsync(100);
    const error = (await rejectionOf(run.promise)) as StageExecutionError;
    expect(sawAbort).toBe(true);
    expect(error.originalError).toBeInstanceOf(TimeoutError);
  });

  it("aborts with the caller's reason when the caller aborts first", async () => {
    const controller = new AbortController();
    const reason = new Error("caller");
    let signal: AbortSignal | undefined;
    const stage = new Stage(
      "callerFirst",
      (_value: number, _context: Context, call: StageCall): Promise<number> => {
        signal = call.signal;
        return never();
      },
      { timeout: 100 },
    );
    const run = track(stage.run(1, { signal: controller.signal }));
    await vi.advanceTimersByTimeAsync(40);
    controller.abort(reason);
    await vi.advanceTimersByTimeAsync(0);
    await expect(run.promise).rejects.toBe(reason);
    expect(signal?.reason).toBe(reason);
    expect(vi.getTimerCount()).toBe(0);
    expect(getEventListeners(controller.signal, "abort")).toHaveLength(0);
  });

  it("gives each attempt its own signal: a retry's signal is not aborted", async () => {
    const signals: AbortSignal[] = [];
    const stage = new Stage(
      "perAttempt",
      (_value: number, _context: Context, call: StageCall): Promise<string> => {
        signals.push(call.signal);
        return call.attempt === 1 ? never() : Promise.resolve("second");
      },
      { timeout: 100, retries: 1 },
    );
    const run = track(stage.run(1));
    await vi.advanceTimersByTimeAsync(100);
    await expect(run.promise).resolves.toBe("second");
    expect(signals).toHaveLength(2);
    expect(signals[0]?.aborted).toBe(true);
    expect(signals[1]?.aborted).toBe(false);
    expect(signals[0]).not.toBe(signals[1]);
  });
});

describe("Stage timeout: synchronous handlers", () => {
  it("never times out a sync handler, however long it blocks", async () => {
    const stage = new Stage(
      "blocking",
      (value: number) => {
        vi.advanceTimersByTime(1_000);
        return value + 1;
      },
      { timeout: 100 },
    );
    await expect(stage.run(1)).resolves.toBe(2);
    expect(vi.getTimerCount()).toBe(0);
  });

  it("never times out a sync three-parameter handler, and leaves its signal alone", async () => {
    let signal: AbortSignal | undefined;
    const stage = new Stage(
      "blocking3",
      (value: number, _context: Context, call: StageCall) => {
        signal = call.signal;
        vi.advanceTimersByTime(1_000);
        return value + 1;
      },
      { timeout: 100 },
    );
    await expect(stage.run(1)).resolves.toBe(2);
    expect(signal?.aborted).toBe(false);
    expect(vi.getTimerCount()).toBe(0);
  });

  it("surfaces a slow sync handler's throw, not a TimeoutError", async () => {
    const original = new Error("sync failure");
    const stage = new Stage(
      "blockingThrow",
      (): number => {
        vi.advanceTimersByTime(1_000);
        throw original;
      },
      { timeout: 100 },
    );
    const error = (await rejectionOf(stage.run(1))) as StageExecutionError;
    expect(error.originalError).toBe(original);
  });

  it("does not time out a sync handler that busy-waits past the timeout in real time", async () => {
    vi.useRealTimers();
    const stage = new Stage(
      "busy",
      (value: number) => {
        const end = Date.now() + 30;
        while (Date.now() < end) {
          // busy wait: a synchronous handler cannot be interrupted
        }
        return value;
      },
      { timeout: 5 },
    );
    await expect(stage.run(7)).resolves.toBe(7);
    await sleep(20);
  });
});

describe("Stage timeout: timers", () => {
  it("leaves no timer after a success", async () => {
    const stage = new Stage("ok", async (value: number) => value, { timeout: 1_000 });
    await expect(stage.run(1)).resolves.toBe(1);
    expect(vi.getTimerCount()).toBe(0);
  });

  it("leaves no timer after a failure", async () => {
    const stage = new Stage("bad", () => Promise.reject(new Error("x")), { timeout: 1_000 });
    await expect(stage.run(1)).rejects.toBeInstanceOf(StageExecutionError);
    expect(vi.getTimerCount()).toBe(0);
  });

  it("leaves no timer after a timeout", async () => {
    const stage = new Stage("late", (): Promise<number> => never(), { timeout: 100 });
    const run = track(stage.run(1));
    await vi.advanceTimersByTimeAsync(100);
    await expect(run.promise).rejects.toBeInstanceOf(StageExecutionError);
    expect(vi.getTimerCount()).toBe(0);
  });

  it("leaves no timer and no listener after retries that all time out", async () => {
    const controller = new AbortController();
    const signals: AbortSignal[] = [];
    const stage = new Stage(
      "allLate",
      (_value: number, _context: Context, call: StageCall): Promise<number> => {
        signals.push(call.signal);
        return never();
      },
      { timeout: 100, retries: 2, retryDelay: 10 },
    );
    const run = track(stage.run(1, { signal: controller.signal }));
    await vi.advanceTimersByTimeAsync(320);
    expect(run.settled).toBe(true);
    await expect(run.promise).rejects.toBeInstanceOf(StageExecutionError);
    expect(vi.getTimerCount()).toBe(0);
    expect(getEventListeners(controller.signal, "abort")).toHaveLength(0);
    expect(signals.map((signal) => signal.reason instanceof TimeoutError)).toEqual([
      true,
      true,
      true,
    ]);
  });

  it("uses the global setTimeout installed after the stage was built", async () => {
    vi.useRealTimers();
    const stage = new Stage("late", (): Promise<number> => never(), { timeout: 60_000 });
    vi.useFakeTimers();
    const run = track(stage.run(1));
    await vi.advanceTimersByTimeAsync(60_000);
    expect(run.settled).toBe(true);
    await expect(run.promise).rejects.toBeInstanceOf(StageExecutionError);
  });
});

describe("Stage timeout: retries", () => {
  it("retries a timed-out attempt", async () => {
    const attempts: number[] = [];
    const stage = new Stage(
      "retryTimeout",
      (_value: number, _context: Context, call: StageCall): Promise<string> => {
        attempts.push(call.attempt);
        return call.attempt === 1 ? never() : Promise.resolve(`attempt ${call.attempt}`);
      },
      { timeout: 100, retries: 1 },
    );
    const run = track(stage.run(1));
    await vi.advanceTimersByTimeAsync(99);
    expect(attempts).toEqual([1]);
    await vi.advanceTimersByTimeAsync(1);
    await expect(run.promise).resolves.toBe("attempt 2");
    expect(attempts).toEqual([1, 2]);
  });

  it("applies the timeout to each attempt, not to the whole run", async () => {
    const stage = new Stage(
      "perAttempt",
      async (_value: number, _context: Context, call: StageCall): Promise<string> => {
        if (call.attempt === 1) return never();
        await new Promise((resolve) => setTimeout(resolve, 90));
        return "second";
      },
      { timeout: 100, retries: 1 },
    );
    const run = track(stage.run(1));
    await vi.advanceTimersByTimeAsync(189);
    expect(run.settled).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    await expect(run.promise).resolves.toBe("second");
  });

  it("reports every attempt when all time out", async () => {
    const stage = new Stage("alwaysLate", (): Promise<number> => never(), {
      timeout: 100,
      retries: 2,
    });
    const run = track(stage.run(1));
    await vi.advanceTimersByTimeAsync(299);
    expect(run.settled).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    const error = (await rejectionOf(run.promise)) as StageExecutionError;
    expect(error.attempts).toBe(3);
    expect(error.originalError).toBeInstanceOf(TimeoutError);
  });

  it("passes the TimeoutError to shouldRetry and onRetry", async () => {
    const seen: unknown[] = [];
    const stage = new Stage("observed", (): Promise<number> => never(), {
      timeout: 100,
      retries: 1,
      shouldRetry: (error) => {
        seen.push(error);
        return true;
      },
      onRetry: ({ error }) => void seen.push(error),
    });
    const run = track(stage.run(1));
    await vi.advanceTimersByTimeAsync(200);
    await expect(run.promise).rejects.toBeInstanceOf(StageExecutionError);
    expect(seen).toHaveLength(2);
    expect(seen[0]).toBeInstanceOf(TimeoutError);
    expect(seen[1]).toBe(seen[0]);
  });

  it("ignores a timed-out attempt that resolves after the retry started", async () => {
    const resolvers: ((value: string) => void)[] = [];
    const stage = new Stage(
      "lateIgnored",
      (_value: number, _context: Context, call: StageCall) =>
        new Promise<string>((resolve) => {
          resolvers[call.attempt - 1] = resolve;
        }),
      { timeout: 100, retries: 1 },
    );
    const run = track(stage.run(1));
    await vi.advanceTimersByTimeAsync(100);
    expect(resolvers).toHaveLength(2);
    resolvers[0]?.("late from attempt 1");
    await vi.advanceTimersByTimeAsync(10);
    expect(run.settled).toBe(false);
    resolvers[1]?.("from attempt 2");
    await expect(run.promise).resolves.toBe("from attempt 2");
  });
});

describe("Stage timeout: abandoned attempts", () => {
  it("never turns a timed-out attempt's later rejection into an unhandled rejection", async () => {
    const unhandled = vi.fn();
    process.on("unhandledRejection", unhandled);
    try {
      const rejecters: ((error: Error) => void)[] = [];
      const stage = new Stage(
        "abandoned",
        () =>
          new Promise<number>((_resolve, reject) => {
            rejecters.push(reject);
          }),
        { timeout: 100 },
      );
      const run = track(stage.run(1));
      await vi.advanceTimersByTimeAsync(100);
      const error = (await rejectionOf(run.promise)) as StageExecutionError;
      expect(error.originalError).toBeInstanceOf(TimeoutError);
      expect(rejecters).toHaveLength(1);
      rejecters[0]?.(new Error("too late"));
      vi.useRealTimers();
      await sleep(5);
      await sleep(5);
      expect(unhandled).not.toHaveBeenCalled();
    } finally {
      process.off("unhandledRejection", unhandled);
    }
  });

  it("never turns a cancelled attempt's later rejection into an unhandled rejection", async () => {
    const unhandled = vi.fn();
    process.on("unhandledRejection", unhandled);
    try {
      const controller = new AbortController();
      const reason = new Error("cancel");
      const rejecters: ((error: Error) => void)[] = [];
      const stage = new Stage(
        "abandonedByAbort",
        () =>
          new Promise<number>((_resolve, reject) => {
            rejecters.push(reject);
          }),
        { timeout: 1_000 },
      );
      const run = track(stage.run(1, { signal: controller.signal }));
      await vi.advanceTimersByTimeAsync(10);
      controller.abort(reason);
      await expect(run.promise).rejects.toBe(reason);
      rejecters[0]?.(new Error("too late"));
      vi.useRealTimers();
      await sleep(5);
      await sleep(5);
      expect(unhandled).not.toHaveBeenCalled();
    } finally {
      process.off("unhandledRejection", unhandled);
    }
  });
});

describe("Stage timeout: durations past 2^31 - 1 ms", () => {
  const MAX = 2_147_483_647;

  it("does not fire a 3_000_000_000 ms timeout early", async () => {
    const stage = new Stage("long", (): Promise<number> => never(), { timeout: 3_000_000_000 });
    expect(stage.timeout).toBe(3_000_000_000);
    const run = track(stage.run(1));
    await vi.advanceTimersByTimeAsync(MAX + 10);
    expect(run.settled).toBe(false);
    await vi.advanceTimersByTimeAsync(3_000_000_000 - (MAX + 10) - 1);
    expect(run.settled).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(run.settled).toBe(true);
    const error = (await rejectionOf(run.promise)) as StageExecutionError;
    expect((error.originalError as TimeoutError).timeout).toBe(3_000_000_000);
    expect(vi.getTimerCount()).toBe(0);
  });

  it("fires a timeout of exactly 2^31 - 1 ms on time", async () => {
    const stage = new Stage("max", (): Promise<number> => never(), { timeout: MAX });
    const run = track(stage.run(1));
    await vi.advanceTimersByTimeAsync(MAX - 1);
    expect(run.settled).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(run.settled).toBe(true);
    await expect(run.promise).rejects.toBeInstanceOf(StageExecutionError);
  });

  it("fires a timeout of 2^31 ms on time", async () => {
    const stage = new Stage("maxPlusOne", (): Promise<number> => never(), { timeout: MAX + 1 });
    const run = track(stage.run(1));
    await vi.advanceTimersByTimeAsync(MAX);
    expect(run.settled).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(run.settled).toBe(true);
    await expect(run.promise).rejects.toBeInstanceOf(StageExecutionError);
  });

  it("clears a long timeout's timer when the attempt finishes first", async () => {
    let finish: (value: number) => void = () => {};
    const stage = new Stage(
      "longOk",
      () =>
        new Promise<number>((resolve) => {
          finish = resolve;
        }),
      { timeout: 5_000_000_000 },
    );
    const run = track(stage.run(1));
    await vi.advanceTimersByTimeAsync(MAX + 100);
    expect(run.settled).toBe(false);
    finish(9);
    await expect(run.promise).resolves.toBe(9);
    expect(vi.getTimerCount()).toBe(0);
  });
});
