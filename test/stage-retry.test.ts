import { getEventListeners } from "node:events";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import {
  Stage,
  StageExecutionError,
  type Context,
  type RetryEvent,
  type StageCall,
  type StageOptions,
} from "../src/index.js";
import { rejectionOf, track, type Tracked } from "./support/promises.js";

/** A stage whose handler always rejects with a new Error naming the attempt. */
function failing(options: StageOptions, name = "flaky") {
  const attempts: number[] = [];
  const errors: Error[] = [];
  const stage = new Stage(
    name,
    async (_value: number, _context: Context, call: StageCall): Promise<number> => {
      attempts.push(call.attempt);
      const error = new Error(`attempt ${call.attempt} failed`);
      errors.push(error);
      throw error;
    },
    options,
  );
  return { stage, attempts, errors };
}

/** Starts attempt 1 and lets its failure be handled (the wait, if any, is now scheduled). */
async function startRun(stage: Stage<number, number>): Promise<Tracked<number>> {
  const run = track(stage.run(0));
  await vi.advanceTimersByTimeAsync(0);
  return run;
}

/** Checks that the next attempt starts exactly `wait` ms after the previous one failed. */
async function expectWait(attempts: readonly number[], wait: number): Promise<void> {
  const before = attempts.length;
  await vi.advanceTimersByTimeAsync(wait - 1);
  expect(attempts.length, `no new attempt ${wait - 1} ms into a ${wait} ms wait`).toBe(before);
  await vi.advanceTimersByTimeAsync(1);
  expect(attempts.length, `a new attempt after exactly ${wait} ms`).toBe(before + 1);
}

afterEach(() => {
  vi.useRealTimers();
  vi.restoreAllMocks();
});

describe("Stage retries: attempt count", () => {
  it.each([0, 1, 2, 5])("makes 1 + %i attempts when every attempt fails", async (retries) => {
    const { stage, attempts, errors } = failing({ retries });
    const error = (await rejectionOf(stage.run(0))) as StageExecutionError;
    expect(attempts).toEqual(Array.from({ length: retries + 1 }, (_, i) => i + 1));
    expect(error).toBeInstanceOf(StageExecutionError);
    expect(error.attempts).toBe(retries + 1);
    expect(error.originalError).toBe(errors.at(-1));
    expect(error.cause).toBe(errors.at(-1));
    expect(error.stageName).toBe("flaky");
    expect(error.message).toContain(`attempt ${retries + 1} failed`);
  });

  it("stops at the first success and resolves with its value", async () => {
    const handler = vi.fn((_value: number, _context: Context, call: StageCall) => {
      if (call.attempt < 3) throw new Error("not yet");
      return `done on ${call.attempt}`;
    });
    const stage = new Stage("eventually", handler, { retries: 5 });
    await expect(stage.run(0)).resolves.toBe("done on 3");
    expect(handler).toHaveBeenCalledTimes(3);
  });

  it("passes the same value and context to every attempt", async () => {
    const context = { id: "ctx" };
    const seen: [unknown, unknown][] = [];
    const stage = new Stage(
      "same",
      (value: { n: number }, ctx: Context, call: StageCall) => {
        seen.push([value, ctx]);
        if (call.attempt === 1) throw new Error("again");
        return value.n;
      },
      { retries: 1 },
    );
    const input = { n: 1 };
    await stage.run(input, { context });
    expect(seen).toHaveLength(2);
    for (const [value, ctx] of seen) {
      expect(value).toBe(input);
      expect(ctx).toBe(context);
    }
  });

  it("retries a synchronous throw", async () => {
    const handler = vi.fn((): number => {
      throw new Error("sync");
    });
    const stage = new Stage("syncRetry", handler, { retries: 2 });
    const error = (await rejectionOf(stage.run(0))) as StageExecutionError;
    expect(handler).toHaveBeenCalledTimes(3);
    expect(error.attempts).toBe(3);
  });

  it("retries a non-Error rejection and surfaces the last one", async () => {
    let count = 0;
    const stage = new Stage("strings", () => Promise.reject(`failure ${++count}`), {
      retries: 1,
    });
    const error = (await rejectionOf(stage.run(0))) as StageExecutionError;
    expect(error.originalError).toBe("failure 2");
    expect(error.attempts).toBe(2);
  });
});

describe("Stage retries: delays", () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });

  it("waits exactly retryDelay between attempts with fixed backoff", async () => {
    const { stage, attempts } = failing({ retries: 3, retryDelay: 100 });
    const run = await startRun(stage);
    expect(attempts).toEqual([1]);
    await expectWait(attempts, 100);
    await expectWait(attempts, 100);
    await expectWait(attempts, 100);
    await vi.advanceTimersByTimeAsync(0);
    expect(run.settled).toBe(true);
    const error = (await rejectionOf(run.promise)) as StageExecutionError;
    expect(error.attempts).toBe(4);
  });

  it("waits d, 2d, 4d with exponential backoff", async () => {
    const { stage, attempts } = failing({ retries: 3, retryDelay: 100, backoff: "exponential" });
    const run = await startRun(stage);
    await expectWait(attempts, 100);
    await expectWait(attempts, 200);
    await expectWait(attempts, 400);
    await expect(run.promise).rejects.toBeInstanceOf(StageExecutionError);
  });

  it("caps exponential delays at maxRetryDelay", async () => {
    const { stage, attempts } = failing({
      retries: 4,
      retryDelay: 100,
      backoff: "exponential",
      maxRetryDelay: 250,
    });
    const run = await startRun(stage);
    await expectWait(attempts, 100);
    await expectWait(attempts, 200);
    await expectWait(attempts, 250);
    await expectWait(attempts, 250);
    await expect(run.promise).rejects.toBeInstanceOf(StageExecutionError);
  });

  it("caps a fixed delay at maxRetryDelay", async () => {
    const { stage, attempts } = failing({ retries: 1, retryDelay: 500, maxRetryDelay: 200 });
    const run = await startRun(stage);
    await expectWait(attempts, 200);
    await expect(run.promise).rejects.toBeInstanceOf(StageExecutionError);
  });

  it("draws a jittered delay from [0, delay]: Math.random() = 0.5 waits half", async () => {
    const random = vi.spyOn(Math, "random").mockReturnValue(0.5);
    const { stage, attempts } = failing({ retries: 2, retryDelay: 100, jitter: true });
    const run = await startRun(stage);
    await expectWait(attempts, 50);
    await expectWait(attempts, 50);
    expect(random).toHaveBeenCalled();
    await expect(run.promise).rejects.toBeInstanceOf(StageExecutionError);
  });

  it("applies jitter after the cap", async () => {
    vi.spyOn(Math, "random").mockReturnValue(0.5);
    const { stage, attempts } = failing({
      retries: 2,
      retryDelay: 1_000,
      backoff: "exponential",
      maxRetryDelay: 1_200,
      jitter: true,
    });
    const run = await startRun(stage);
    await expectWait(attempts, 500);
    await expectWait(attempts, 600);
    await expect(run.promise).rejects.toBeInstanceOf(StageExecutionError);
  });

  it("applies jitter to each exponential delay", async () => {
    vi.spyOn(Math, "random").mockReturnValue(0.25);
    const { stage, attempts } = failing({
      retries: 2,
      retryDelay: 400,
      backoff: "exponential",
      jitter: true,
    });
    const run = await startRun(stage);
    await expectWait(attempts, 100);
    await expectWait(attempts, 200);
    await expect(run.promise).rejects.toBeInstanceOf(StageExecutionError);
  });

  it("does not consult Math.random without jitter", async () => {
    const random = vi.spyOn(Math, "random");
    const { stage, attempts } = failing({ retries: 1, retryDelay: 100 });
    const run = await startRun(stage);
    await expectWait(attempts, 100);
    await expect(run.promise).rejects.toBeInstanceOf(StageExecutionError);
    expect(random).not.toHaveBeenCalled();
  });

  it("sets no timer between attempts when retryDelay is 0", async () => {
    const timerCounts: number[] = [];
    const stage = new Stage(
      "noDelay",
      (_value: number, _context: Context, call: StageCall): Promise<number> => {
        timerCounts.push(vi.getTimerCount());
        return Promise.reject(new Error(`attempt ${call.attempt}`));
      },
      { retries: 3, onRetry: () => timerCounts.push(vi.getTimerCount()) },
    );
    const run = track(stage.run(0));
    for (let i = 0; i < 50 && !run.settled; i++) await Promise.resolve();
    expect(run.settled).toBe(true);
    expect(timerCounts).toEqual([0, 0, 0, 0, 0, 0, 0]);
    expect(vi.getTimerCount()).toBe(0);
    await expect(run.promise).rejects.toBeInstanceOf(StageExecutionError);
  });

  it("sets no timer when jitter draws 0", async () => {
    vi.spyOn(Math, "random").mockReturnValue(0);
    const { stage, attempts } = failing({ retries: 1, retryDelay: 100, jitter: true });
    const run = track(stage.run(0));
    for (let i = 0; i < 50 && !run.settled; i++) await Promise.resolve();
    expect(attempts).toEqual([1, 2]);
    expect(run.settled).toBe(true);
    await expect(run.promise).rejects.toBeInstanceOf(StageExecutionError);
  });

  it("leaves no timer after the run settles", async () => {
    const { stage } = failing({ retries: 2, retryDelay: 100 });
    const run = await startRun(stage);
    await vi.advanceTimersByTimeAsync(200);
    expect(run.settled).toBe(true);
    expect(vi.getTimerCount()).toBe(0);
    await expect(run.promise).rejects.toBeInstanceOf(StageExecutionError);
  });

  it("waits a delay past 2^31 - 1 ms in full, never early", async () => {
    const { stage, attempts } = failing({ retries: 1, retryDelay: 3_000_000_000 });
    const run = await startRun(stage);
    await vi.advanceTimersByTimeAsync(2_147_483_647 + 10);
    expect(attempts).toEqual([1]);
    await vi.advanceTimersByTimeAsync(3_000_000_000 - (2_147_483_647 + 10) - 1);
    expect(attempts).toEqual([1]);
    await vi.advanceTimersByTimeAsync(1);
    expect(attempts).toEqual([1, 2]);
    await expect(run.promise).rejects.toBeInstanceOf(StageExecutionError);
  });

  it("waits an exponential delay computed past 2^31 - 1 ms in full", async () => {
    const { stage, attempts } = failing({
      retries: 2,
      retryDelay: 2_000_000_000,
      backoff: "exponential",
    });
    const run = await startRun(stage);
    await expectWait(attempts, 2_000_000_000);
    await vi.advanceTimersByTimeAsync(2_147_483_647 + 10);
    expect(attempts).toEqual([1, 2]);
    await vi.advanceTimersByTimeAsync(4_000_000_000 - (2_147_483_647 + 10) - 1);
    expect(attempts).toEqual([1, 2]);
    await vi.advanceTimersByTimeAsync(1);
    expect(attempts).toEqual([1, 2, 3]);
    await expect(run.promise).rejects.toBeInstanceOf(StageExecutionError);
  });

  it("does not wait after the last attempt", async () => {
    const { stage } = failing({ retries: 1, retryDelay: 1_000 });
    const run = await startRun(stage);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(run.settled).toBe(true);
    expect(vi.getTimerCount()).toBe(0);
    await expect(run.promise).rejects.toBeInstanceOf(StageExecutionError);
  });
});

describe("Stage retries: shouldRetry", () => {
  it("receives the error and the failed attempt's number", async () => {
    const calls: [unknown, number][] = [];
    const { stage, errors } = failing({
      retries: 2,
      shouldRetry: (error, attempt) => {
        calls.push([error, attempt]);
        return true;
      },
    });
    await expect(stage.run(0)).rejects.toBeInstanceOf(StageExecutionError);
    expect(calls).toEqual([
      [errors[0], 1],
      [errors[1], 2],
    ]);
    expect(calls[0]?.[0]).toBe(errors[0]);
    expect(calls[1]?.[0]).toBe(errors[1]);
  });

  it("is not asked after the last attempt", async () => {
    const shouldRetry = vi.fn(() => true);
    const { stage } = failing({ retries: 1, shouldRetry });
    await expect(stage.run(0)).rejects.toBeInstanceOf(StageExecutionError);
    expect(shouldRetry).toHaveBeenCalledTimes(1);
  });

  it("stops at once with that attempt's error when it returns false", async () => {
    const { stage, attempts, errors } = failing({ retries: 5, shouldRetry: () => false });
    const error = (await rejectionOf(stage.run(0))) as StageExecutionError;
    expect(attempts).toEqual([1]);
    expect(error).toBeInstanceOf(StageExecutionError);
    expect(error.originalError).toBe(errors[0]);
    expect(error.attempts).toBe(1);
  });

  it("can stop on a later attempt, reporting the attempts made", async () => {
    const { stage, attempts, errors } = failing({
      retries: 5,
      shouldRetry: (_error, attempt) => attempt < 3,
    });
    const error = (await rejectionOf(stage.run(0))) as StageExecutionError;
    expect(attempts).toEqual([1, 2, 3]);
    expect(error.originalError).toBe(errors[2]);
    expect(error.attempts).toBe(3);
  });

  it("can decide from the error", async () => {
    let count = 0;
    const stage = new Stage(
      "byType",
      (): number => {
        count++;
        throw count === 1 ? new Error("transient") : new TypeError("permanent");
      },
      { retries: 5, shouldRetry: (error) => !(error instanceof TypeError) },
    );
    const error = (await rejectionOf(stage.run(0))) as StageExecutionError;
    expect(count).toBe(2);
    expect(error.originalError).toBeInstanceOf(TypeError);
  });

  it("awaits an async shouldRetry: resolving false stops", async () => {
    const { stage, attempts } = failing({
      retries: 3,
      shouldRetry: async () => {
        await Promise.resolve();
        return false;
      },
    });
    const error = (await rejectionOf(stage.run(0))) as StageExecutionError;
    expect(attempts).toEqual([1]);
    expect(error.attempts).toBe(1);
  });

  it("awaits an async shouldRetry: resolving true retries", async () => {
    const { stage, attempts } = failing({
      retries: 2,
      shouldRetry: async () => {
        await Promise.resolve();
        return true;
      },
    });
    await expect(stage.run(0)).rejects.toBeInstanceOf(StageExecutionError);
    expect(attempts).toEqual([1, 2, 3]);
  });

  it("stops with the attempt's error (not its own) when it throws", async () => {
    const { stage, attempts, errors } = failing({
      retries: 3,
      shouldRetry: () => {
        throw new Error("shouldRetry broke");
      },
    });
    const error = (await rejectionOf(stage.run(0))) as StageExecutionError;
    expect(attempts).toEqual([1]);
    expect(error).toBeInstanceOf(StageExecutionError);
    expect(error.originalError).toBe(errors[0]);
    expect(error.attempts).toBe(1);
  });

  it("stops with the attempt's error when it rejects", async () => {
    const { stage, attempts, errors } = failing({
      retries: 3,
      shouldRetry: () => Promise.reject(new Error("async shouldRetry broke")),
    });
    const error = (await rejectionOf(stage.run(0))) as StageExecutionError;
    expect(attempts).toEqual([1]);
    expect(error.originalError).toBe(errors[0]);
  });

  it("skips onRetry and the wait when it says no", async () => {
    vi.useFakeTimers();
    const onRetry = vi.fn();
    const { stage } = failing({
      retries: 3,
      retryDelay: 1_000,
      onRetry,
      shouldRetry: () => false,
    });
    const run = await startRun(stage);
    expect(run.settled).toBe(true);
    expect(vi.getTimerCount()).toBe(0);
    expect(onRetry).not.toHaveBeenCalled();
    await expect(run.promise).rejects.toBeInstanceOf(StageExecutionError);
  });
});

describe("Stage retries: onRetry", () => {
  it("receives a frozen { stageName, error, attempt, delay } before each retry", async () => {
    const events: RetryEvent[] = [];
    const { stage, errors } = failing(
      { retries: 2, onRetry: (event) => void events.push(event) },
      "notify",
    );
    await expect(stage.run(0)).rejects.toBeInstanceOf(StageExecutionError);
    expect(events).toHaveLength(2);
    expect(events[0]).toEqual({ stageName: "notify", error: errors[0], attempt: 1, delay: 0 });
    expect(events[1]).toEqual({ stageName: "notify", error: errors[1], attempt: 2, delay: 0 });
    expect(events[0]?.error).toBe(errors[0]);
    for (const event of events) expect(Object.isFrozen(event)).toBe(true);
  });

  it("reports the computed delay, after the cap and jitter", async () => {
    vi.useFakeTimers();
    vi.spyOn(Math, "random").mockReturnValue(0.5);
    const delays: number[] = [];
    const { stage } = failing({
      retries: 3,
      retryDelay: 100,
      backoff: "exponential",
      maxRetryDelay: 300,
      jitter: true,
      onRetry: ({ delay }) => void delays.push(delay),
    });
    const run = await startRun(stage);
    await vi.advanceTimersByTimeAsync(1_000);
    await expect(run.promise).rejects.toBeInstanceOf(StageExecutionError);
    expect(delays).toEqual([50, 100, 150]);
  });

  it("is called before the wait starts, and before the next attempt", async () => {
    vi.useFakeTimers();
    const observations: { timers: number; attempts: number; attempt: number }[] = [];
    const attempts: number[] = [];
    const stage = new Stage(
      "order",
      (_value: number, _context: Context, call: StageCall): number => {
        attempts.push(call.attempt);
        throw new Error("x");
      },
      {
        retries: 2,
        retryDelay: 100,
        onRetry: ({ attempt }) =>
          void observations.push({
            timers: vi.getTimerCount(),
            attempts: attempts.length,
            attempt,
          }),
      },
    );
    const run = await startRun(stage);
    expect(observations).toEqual([{ timers: 0, attempts: 1, attempt: 1 }]);
    await vi.advanceTimersByTimeAsync(100);
    expect(observations).toEqual([
      { timers: 0, attempts: 1, attempt: 1 },
      { timers: 0, attempts: 2, attempt: 2 },
    ]);
    await vi.advanceTimersByTimeAsync(100);
    await expect(run.promise).rejects.toBeInstanceOf(StageExecutionError);
  });

  it("is not called after the last attempt", async () => {
    const onRetry = vi.fn();
    const { stage } = failing({ retries: 1, onRetry });
    await expect(stage.run(0)).rejects.toBeInstanceOf(StageExecutionError);
    expect(onRetry).toHaveBeenCalledTimes(1);
  });

  it("is not called when the first attempt succeeds", async () => {
    const onRetry = vi.fn();
    const stage = new Stage("fine", (v: number) => v, { retries: 3, onRetry });
    await stage.run(1);
    expect(onRetry).not.toHaveBeenCalled();
  });

  it("is not awaited: a never-settling onRetry does not block the next attempt", async () => {
    const { stage, attempts } = failing({
      retries: 2,
      onRetry: () => new Promise<void>(() => {}),
    });
    const error = (await rejectionOf(stage.run(0))) as StageExecutionError;
    expect(attempts).toEqual([1, 2, 3]);
    expect(error.attempts).toBe(3);
  });

  it("is not awaited: the wait starts right away", async () => {
    vi.useFakeTimers();
    const { stage, attempts } = failing({
      retries: 1,
      retryDelay: 100,
      onRetry: () => new Promise<void>(() => {}),
    });
    const run = await startRun(stage);
    await expectWait(attempts, 100);
    await expect(run.promise).rejects.toBeInstanceOf(StageExecutionError);
  });

  it("ignores a synchronous throw from onRetry", async () => {
    const { stage, attempts } = failing({
      retries: 2,
      onRetry: () => {
        throw new Error("logger broke");
      },
    });
    const error = (await rejectionOf(stage.run(0))) as StageExecutionError;
    expect(attempts).toEqual([1, 2, 3]);
    expect((error.originalError as Error).message).toBe("attempt 3 failed");
  });

  it("ignores a rejection from onRetry, without an unhandled rejection", async () => {
    const unhandled = vi.fn();
    process.on("unhandledRejection", unhandled);
    try {
      const { stage, attempts } = failing({
        retries: 2,
        onRetry: () => Promise.reject(new Error("async logger broke")),
      });
      const error = (await rejectionOf(stage.run(0))) as StageExecutionError;
      expect(attempts).toEqual([1, 2, 3]);
      expect((error.originalError as Error).message).toBe("attempt 3 failed");
      await new Promise((resolve) => setTimeout(resolve, 10));
      expect(unhandled).not.toHaveBeenCalled();
    } finally {
      process.off("unhandledRejection", unhandled);
    }
  });

  it("may be given a RetryEvent type annotation", async () => {
    let captured: RetryEvent | undefined;
    const onRetry = (event: RetryEvent): void => {
      captured = event;
    };
    const { stage } = failing({ retries: 1, onRetry }, "typed");
    await expect(stage.run(0)).rejects.toBeInstanceOf(StageExecutionError);
    expect(captured?.stageName).toBe("typed");
    expect(captured?.attempt).toBe(1);
  });
});

describe("Stage retries: cancellation", () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });

  it("cuts a retry wait short: rejects with the reason, no further attempt, timer cleared", async () => {
    const controller = new AbortController();
    const reason = new Error("cancelled during wait");
    const attempts: number[] = [];
    const stage = new Stage(
      "cut",
      (_value: number, _context: Context, call: StageCall): number => {
        attempts.push(call.attempt);
        throw new Error("fail");
      },
      { retries: 3, retryDelay: 1_000 },
    );
    const run = track(stage.run(0, { signal: controller.signal }));
    await vi.advanceTimersByTimeAsync(500);
    expect(attempts).toEqual([1]);
    expect(run.settled).toBe(false);
    controller.abort(reason);
    await vi.advanceTimersByTimeAsync(0);
    expect(run.settled).toBe(true);
    await expect(run.promise).rejects.toBe(reason);
    expect(vi.getTimerCount()).toBe(0);
    expect(getEventListeners(controller.signal, "abort")).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(attempts).toEqual([1]);
  });

  it("makes no further attempt when aborted from onRetry", async () => {
    const controller = new AbortController();
    const reason = new Error("stop retrying");
    const { stage, attempts } = failing({
      retries: 3,
      retryDelay: 100,
      onRetry: () => {
        controller.abort(reason);
      },
    });
    const run = track(stage.run(0, { signal: controller.signal }));
    await vi.advanceTimersByTimeAsync(1_000);
    await expect(run.promise).rejects.toBe(reason);
    expect(attempts).toEqual([1]);
    expect(vi.getTimerCount()).toBe(0);
  });

  it("makes no further attempt when aborted from shouldRetry", async () => {
    const controller = new AbortController();
    const reason = new Error("stop");
    const { stage, attempts } = failing({
      retries: 3,
      shouldRetry: () => {
        controller.abort(reason);
        return true;
      },
    });
    const run = track(stage.run(0, { signal: controller.signal }));
    await vi.advanceTimersByTimeAsync(0);
    await expect(run.promise).rejects.toBe(reason);
    expect(attempts).toEqual([1]);
  });

  // Regression: an async shouldRetry used to be awaited without watching the caller's signal,
  // so a run aborted while it was pending waited for it (forever if it never resolved).
  it("rejects promptly with the reason when aborted while shouldRetry is pending", async () => {
    const controller = new AbortController();
    const reason = new Error("cancelled while deciding");
    const { stage, attempts } = failing({
      retries: 3,
      shouldRetry: () => new Promise<boolean>(() => {}),
    });
    const run = track(stage.run(0, { signal: controller.signal }));
    await vi.advanceTimersByTimeAsync(0);
    expect(attempts).toEqual([1]);
    controller.abort(reason);
    await vi.advanceTimersByTimeAsync(0);
    expect(run.settled).toBe(true);
    await expect(run.promise).rejects.toBe(reason);
  });

  // Regression: cancellation must win over a `false` verdict that arrives after the abort
  // ("cancellation is not failure").
  it("rejects with the reason when aborted while shouldRetry is pending and it says no", async () => {
    const controller = new AbortController();
    const reason = new Error("cancelled while deciding");
    const { stage } = failing({
      retries: 3,
      shouldRetry: () =>
        new Promise<boolean>((resolve) => {
          setTimeout(() => {
            resolve(false);
          }, 50);
        }),
    });
    const run = track(stage.run(0, { signal: controller.signal }));
    await vi.advanceTimersByTimeAsync(10);
    controller.abort(reason);
    await vi.advanceTimersByTimeAsync(50);
    expect(run.settled).toBe(true);
    await expect(run.promise).rejects.toBe(reason);
  });

  it("leaves no listener on the caller's signal after retries with waits", async () => {
    const controller = new AbortController();
    const { stage } = failing({ retries: 2, retryDelay: 50 });
    const run = track(stage.run(0, { signal: controller.signal }));
    await vi.advanceTimersByTimeAsync(200);
    await expect(run.promise).rejects.toBeInstanceOf(StageExecutionError);
    expect(getEventListeners(controller.signal, "abort")).toHaveLength(0);
  });

  it("gives every attempt a call.signal that is not aborted", async () => {
    const controller = new AbortController();
    const seen: boolean[] = [];
    const stage = new Stage(
      "fresh",
      (_value: number, _context: Context, call: StageCall): number => {
        seen.push(call.signal.aborted);
        throw new Error("x");
      },
      { retries: 2, retryDelay: 10 },
    );
    const run = track(stage.run(0, { signal: controller.signal }));
    await vi.advanceTimersByTimeAsync(100);
    await expect(run.promise).rejects.toBeInstanceOf(StageExecutionError);
    expect(seen).toEqual([false, false, false]);
  });
});
