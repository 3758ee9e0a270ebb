import { getEventListeners } from "node:events";
import { afterEach, describe, expect, it, vi } from "vitest";
import {
  PipelineError,
  Stage,
  StageExecutionError,
  type Context,
  type StageCall,
} from "../src/index.js";
import { never, rejectionOf, track } from "./support/promises.js";

async function flushMicrotasks(): Promise<void> {
  for (let i = 0; i < 20; i++) await Promise.resolve();
}

afterEach(() => {
  vi.useRealTimers();
  vi.restoreAllMocks();
});

describe("Stage: handlers", () => {
  it("runs a sync handler and resolves with its return value", async () => {
    const stage = new Stage("double", (value: number) => value * 2);
    await expect(stage.run(21)).resolves.toBe(42);
  });

  it("returns a promise even when the handler is synchronous", () => {
    const stage = new Stage("double", (value: number) => value * 2);
    const result = stage.run(1);
    expect(result).toBeInstanceOf(Promise);
    return result;
  });

  it("runs an async handler and resolves with its awaited value", async () => {
    const stage = new Stage("double", async (value: number) => {
      await Promise.resolve();
      return value * 2;
    });
    await expect(stage.run(4)).resolves.toBe(8);
  });

  it("awaits a non-promise thenable returned by the handler", async () => {
    const thenable: PromiseLike<string> = {
      then<A = string, B = never>(
        onFulfilled?: ((value: string) => A | PromiseLike<A>) | null,
        onRejected?: ((reason: unknown) => B | PromiseLike<B>) | null,
      ): PromiseLike<A | B> {
        return Promise.resolve("from thenable").then(onFulfilled, onRejected);
      },
    };
    const stage = new Stage("thenable", () => thenable);
    await expect(stage.run(undefined)).resolves.toBe("from thenable");
  });

  it("passes the input object through by identity", async () => {
    const input = { id: 1 };
    const stage = new Stage("identity", (value: { id: number }) => value);
    await expect(stage.run(input)).resolves.toBe(input);
  });

  it("calls the handler once per successful run", async () => {
    const handler = vi.fn((value: number) => value + 1);
    const stage = new Stage("once", handler);
    await stage.run(1);
    expect(handler).toHaveBeenCalledTimes(1);
  });
});

describe("Stage: handler arguments", () => {
  it("calls a one-parameter handler with the value alone", async () => {
    let received: unknown[] = [];
    const handler = (...args: unknown[]): string => {
      received = args;
      return "ok";
    };
    Object.defineProperty(handler, "length", { value: 1 });
    await new Stage("one", handler).run("input", { context: { a: 1 } });
    expect(received).toEqual(["input"]);
  });

  it("calls a zero-parameter handler with the value alone", async () => {
    let received: unknown[] = [];
    const stage = new Stage("rest", (...args: unknown[]) => {
      received = args;
      return args.length;
    });
    await expect(stage.run("input")).resolves.toBe(1);
    expect(received).toEqual(["input"]);
  });

  it("does not count a second parameter with a default value (handler.length is 1)", async () => {
    const fallback = { fallback: true };
    let seenContext: unknown = "not called";
    function defaulted(value: number, context: object = fallback): number {
      seenContext = context;
      return value;
    }
    expect(defaulted.length).toBe(1);
    await new Stage("defaulted", defaulted).run(1, { context: { real: true } });
    expect(seenContext).toBe(fallback);
  });

  it("calls a handler declaring two parameters with (value, context, call)", async () => {
    let received: unknown[] = [];
    const handler = (...args: unknown[]): string => {
      received = args;
      return "ok";
    };
    Object.defineProperty(handler, "length", { value: 2 });
    const context = { tag: "ctx" };
    await new Stage("two", handler).run("input", { context });
    expect(received).toHaveLength(3);
    expect(received[0]).toBe("input");
    expect(received[1]).toBe(context);
    expect(received[2]).toMatchObject({ attempt: 1, stageName: "two" });
  });

  it("gives a three-parameter handler call.attempt 1, call.stageName and an AbortSignal", async () => {
    let call: StageCall | undefined;
    const stage = new Stage("named", (value: number, _context: Context, c: StageCall) => {
      call = c;
      return value;
    });
    await stage.run(1);
    expect(call?.attempt).toBe(1);
    expect(call?.stageName).toBe("named");
    expect(call?.signal).toBeInstanceOf(AbortSignal);
    expect(call?.signal.aborted).toBe(false);
  });

  it("gives call.signal as an AbortSignal when the caller passed no signal but a timeout is set", async () => {
    let signal: AbortSignal | undefined;
    const stage = new Stage(
      "timed",
      async (value: number, _context: Context, call: StageCall) => {
        signal = call.signal;
        return value;
      },
      { timeout: 1_000 },
    );
    await stage.run(1);
    expect(signal).toBeInstanceOf(AbortSignal);
    expect(signal?.aborted).toBe(false);
  });

  it("reads call fields by destructuring", async () => {
    const stage = new Stage(
      "destructure",
      (_value: number, _context: Context, { signal, attempt, stageName }: StageCall) => ({
        aborted: signal.aborted,
        attempt,
        stageName,
      }),
    );
    await expect(stage.run(0)).resolves.toEqual({
      aborted: false,
      attempt: 1,
      stageName: "destructure",
    });
  });

  it("passes the context given to run by identity", async () => {
    const context = { requestId: "r1" };
    let seen: unknown;
    const stage = new Stage("ctx", (value: number, ctx: Context) => {
      seen = ctx;
      return value;
    });
    await stage.run(1, { context });
    expect(seen).toBe(context);
  });

  it("lets the handler mutate the caller's context", async () => {
    const context: { seen: number[] } = { seen: [] };
    const stage = new Stage<number, number, { seen: number[] }>("push", (value, ctx) => {
      ctx.seen.push(value);
      return value;
    });
    await stage.run(7, { context });
    expect(context.seen).toEqual([7]);
  });

  it("accepts a class instance as context and passes it by identity", async () => {
    class Session {
      user = "ada";
    }
    const session = new Session();
    let seen: unknown;
    const stage = new Stage("session", (value: number, ctx: Session) => {
      seen = ctx;
      return value;
    });
    await stage.run(1, { context: session });
    expect(seen).toBe(session);
    expect(seen).toBeInstanceOf(Session);
  });

  it("gives a fresh empty object as context when none is passed", async () => {
    const seen: unknown[] = [];
    const stage = new Stage("fresh", (value: number, ctx: Context) => {
      seen.push(ctx);
      ctx.mark = value;
      return value;
    });
    await stage.run(1);
    await stage.run(2);
    await stage.run(3, { context: undefined });
    expect(seen).toHaveLength(3);
    expect(seen[0]).toEqual({ mark: 1 });
    expect(seen[1]).toEqual({ mark: 2 });
    expect(seen[0]).not.toBe(seen[1]);
    expect(seen[1]).not.toBe(seen[2]);
    expect(Object.getPrototypeOf(seen[0])).toBe(Object.prototype);
  });

  it("gives each run's handler the caller's signal state through call.signal", async () => {
    const controller = new AbortController();
    let signal: AbortSignal | undefined;
    const stage = new Stage("sig", (value: number, _context: Context, call: StageCall) => {
      signal = call.signal;
      return value;
    });
    await stage.run(1, { signal: controller.signal });
    expect(signal).toBeInstanceOf(AbortSignal);
    expect(signal?.aborted).toBe(false);
  });
});

describe("Stage: getters", () => {
  const handler = (value: number): number => value;

  it("exposes the defaults", () => {
    const stage = new Stage("plain", handler);
    expect(stage.name).toBe("plain");
    expect(stage.timeout).toBeUndefined();
    expect(stage.retries).toBe(0);
    expect(stage.retryDelay).toBe(0);
    expect(stage.backoff).toBe("fixed");
    expect(stage.maxRetryDelay).toBeUndefined();
    expect(stage.jitter).toBe(false);
  });

  it("exposes every configured option", () => {
    const stage = new Stage("configured", handler, {
      timeout: 1_500,
      retries: 3,
      retryDelay: 250,
      backoff: "exponential",
      maxRetryDelay: 2_000,
      jitter: true,
    });
    expect(stage.name).toBe("configured");
    expect(stage.timeout).toBe(1_500);
    expect(stage.retries).toBe(3);
    expect(stage.retryDelay).toBe(250);
    expect(stage.backoff).toBe("exponential");
    expect(stage.maxRetryDelay).toBe(2_000);
    expect(stage.jitter).toBe(true);
  });

  it("treats options given as undefined as defaults", () => {
    const stage = new Stage("undef", handler, {
      timeout: undefined,
      retries: undefined,
      retryDelay: undefined,
      backoff: undefined,
      maxRetryDelay: undefined,
      jitter: undefined,
      shouldRetry: undefined,
      onRetry: undefined,
    });
    expect(stage.timeout).toBeUndefined();
    expect(stage.retries).toBe(0);
    expect(stage.retryDelay).toBe(0);
    expect(stage.backoff).toBe("fixed");
    expect(stage.maxRetryDelay).toBeUndefined();
    expect(stage.jitter).toBe(false);
  });

  it("accepts a zero retryDelay and zero maxRetryDelay", () => {
    const stage = new Stage("zeros", handler, { retryDelay: 0, maxRetryDelay: 0, retries: 0 });
    expect(stage.retryDelay).toBe(0);
    expect(stage.maxRetryDelay).toBe(0);
    expect(stage.retries).toBe(0);
  });

  it("does not let options be changed through the getters", () => {
    const stage = new Stage("ro", handler, { retries: 1 });
    expect(() => {
      (stage as unknown as { retries: number }).retries = 5;
    }).toThrow(TypeError);
    expect(stage.retries).toBe(1);
  });

  it("keeps its options when the caller mutates the options object afterwards", async () => {
    const options = { retries: 0 };
    const fail = vi.fn(() => {
      throw new Error("nope");
    });
    const stage = new Stage("snapshot", fail, options);
    options.retries = 5;
    expect(stage.retries).toBe(0);
    await expect(stage.run(undefined)).rejects.toBeInstanceOf(StageExecutionError);
    expect(fail).toHaveBeenCalledTimes(1);
  });
});

describe("Stage: failures", () => {
  it("wraps a sync throw in StageExecutionError", async () => {
    const original = new RangeError("bad value");
    const stage = new Stage("broken", (): number => {
      throw original;
    });
    const error = await rejectionOf(stage.run(undefined));
    expect(error).toBeInstanceOf(StageExecutionError);
    expect(error).toBeInstanceOf(PipelineError);
    expect(error).toBeInstanceOf(Error);
    const failure = error as StageExecutionError;
    expect(failure.name).toBe("StageExecutionError");
    expect(failure.stageName).toBe("broken");
    expect(failure.originalError).toBe(original);
    expect(failure.cause).toBe(original);
    expect(failure.attempts).toBe(1);
    expect(failure.message).toContain("broken");
    expect(failure.message).toContain("bad value");
  });

  it("wraps an async rejection in StageExecutionError", async () => {
    const original = new Error("async failure");
    const stage = new Stage("asyncBroken", async (): Promise<number> => {
      await Promise.resolve();
      throw original;
    });
    const error = (await rejectionOf(stage.run(undefined))) as StageExecutionError;
    expect(error).toBeInstanceOf(StageExecutionError);
    expect(error.originalError).toBe(original);
    expect(error.cause).toBe(original);
    expect(error.stageName).toBe("asyncBroken");
    expect(error.attempts).toBe(1);
    expect(error.message).toContain("asyncBroken");
    expect(error.message).toContain("async failure");
  });

  it.each([
    ["a string", "plain string failure"],
    ["undefined", undefined],
    ["null", null],
    ["a number", 42],
    ["a plain object", { code: "E_BAD" }],
  ])("wraps %s thrown synchronously", async (_label, thrown) => {
    const stage = new Stage("odd", (): number => {
      throw thrown;
    });
    const error = (await rejectionOf(stage.run(undefined))) as StageExecutionError;
    expect(error).toBeInstanceOf(StageExecutionError);
    expect(error.originalError).toBe(thrown);
    expect(error.cause).toBe(thrown);
    expect("cause" in error).toBe(true);
    expect(error.attempts).toBe(1);
    expect(error.message).toContain("odd");
  });

  it.each([
    ["a string", "rejected string"],
    ["undefined", undefined],
  ])("wraps %s rejected asynchronously", async (_label, thrown) => {
    const stage = new Stage("oddAsync", () => Promise.reject(thrown));
    const error = (await rejectionOf(stage.run(undefined))) as StageExecutionError;
    expect(error).toBeInstanceOf(StageExecutionError);
    expect(error.originalError).toBe(thrown);
    expect(error.cause).toBe(thrown);
  });

  it("names a thrown string in the message", async () => {
    const stage = new Stage("stringy", (): number => {
      throw "disk full";
    });
    const error = (await rejectionOf(stage.run(undefined))) as StageExecutionError;
    expect(error.message).toContain("stringy");
    expect(error.message).toContain("disk full");
  });

  it("wraps a failure also when the handler takes (value, context, call)", async () => {
    const original = new Error("three-arg failure");
    const stage = new Stage("threeArg", (_v: number, _c: Context, call: StageCall): number => {
      if (call.attempt === 1) throw original;
      return 0;
    });
    const error = (await rejectionOf(stage.run(1))) as StageExecutionError;
    expect(error.originalError).toBe(original);
    expect(error.attempts).toBe(1);
  });

  it("wraps a failure also when the caller passed a (never aborted) signal", async () => {
    const original = new Error("with signal");
    const controller = new AbortController();
    const sync = new Stage("syncSig", (): number => {
      throw original;
    });
    const asyncStage = new Stage("asyncSig", () => Promise.reject(original));
    const syncError = await rejectionOf(sync.run(1, { signal: controller.signal }));
    const asyncError = await rejectionOf(asyncStage.run(1, { signal: controller.signal }));
    expect(syncError).toBeInstanceOf(StageExecutionError);
    expect((syncError as StageExecutionError).originalError).toBe(original);
    expect(asyncError).toBeInstanceOf(StageExecutionError);
    expect((asyncError as StageExecutionError).originalError).toBe(original);
  });
});

describe("Stage: cancellation", () => {
  const configurations: [string, { timeout?: number; retries?: number }][] = [
    ["no options", {}],
    ["retries", { retries: 2 }],
    ["a timeout", { timeout: 60_000 }],
    ["a timeout and retries", { timeout: 60_000, retries: 2 }],
  ];

  describe.each(configurations)("with %s", (_label, options) => {
    it("rejects with the exact signal.reason and never calls the handler when already aborted", async () => {
      const reason = new Error("cancelled before start");
      const handler = vi.fn(async (value: number) => value);
      const stage = new Stage("pre", handler, options);
      await expect(stage.run(1, { signal: AbortSignal.abort(reason) })).rejects.toBe(reason);
      expect(handler).not.toHaveBeenCalled();
    });

    it("rejects with the exact reason when aborted during an attempt that ignores the signal", async () => {
      const controller = new AbortController();
      const reason = new Error("user cancelled");
      let callSignal: AbortSignal | undefined;
      const stage = new Stage(
        "ignoring",
        (_value: number, _context: Context, call: StageCall): Promise<number> => {
          callSignal = call.signal;
          return never();
        },
        options,
      );
      const run = track(stage.run(1, { signal: controller.signal }));
      await flushMicrotasks();
      expect(run.settled).toBe(false);
      controller.abort(reason);
      await flushMicrotasks();
      expect(run.settled).toBe(true);
      await expect(run.promise).rejects.toBe(reason);
      expect(callSignal?.aborted).toBe(true);
      expect(callSignal?.reason).toBe(reason);
    });

    it("rejects with the reason for a one-parameter handler too", async () => {
      const controller = new AbortController();
      const reason = new Error("stop");
      const stage = new Stage("oneParam", (): Promise<number> => never(), options);
      const run = stage.run(1, { signal: controller.signal });
      controller.abort(reason);
      await expect(run).rejects.toBe(reason);
    });

    it("leaves no listener on the caller's signal after success", async () => {
      const controller = new AbortController();
      const stage = new Stage(
        "ok",
        async (value: number, _context: Context, call: StageCall) => {
          await Promise.resolve();
          return call.signal.aborted ? -1 : value;
        },
        options,
      );
      await expect(stage.run(5, { signal: controller.signal })).resolves.toBe(5);
      expect(getEventListeners(controller.signal, "abort")).toHaveLength(0);
    });

    it("leaves no listener on the caller's signal after failure", async () => {
      const controller = new AbortController();
      const stage = new Stage(
        "bad",
        async (_value: number, _context: Context, call: StageCall): Promise<number> => {
          await Promise.resolve();
          throw new Error(`attempt ${call.attempt} failed`);
        },
        options,
      );
      await expect(stage.run(5, { signal: controller.signal })).rejects.toBeInstanceOf(
        StageExecutionError,
      );
      expect(getEventListeners(controller.signal, "abort")).toHaveLength(0);
    });

    it("leaves no listener on the caller's signal after a synchronous result", async () => {
      const controller = new AbortController();
      const stage = new Stage(
        "sync",
        (value: number, _context: Context, call: StageCall) => (call.signal.aborted ? -1 : value),
        options,
      );
      await stage.run(5, { signal: controller.signal });
      expect(getEventListeners(controller.signal, "abort")).toHaveLength(0);
    });

    it("leaves no listener on the caller's signal after abort", async () => {
      const controller = new AbortController();
      let callSignal: AbortSignal | undefined;
      const stage = new Stage(
        "aborted",
        (_value: number, _context: Context, call: StageCall): Promise<number> => {
          callSignal = call.signal;
          return never();
        },
        options,
      );
      const run = stage.run(5, { signal: controller.signal });
      controller.abort(new Error("x"));
      await expect(run).rejects.toThrow("x");
      expect(callSignal?.aborted).toBe(true);
      expect(getEventListeners(controller.signal, "abort")).toHaveLength(0);
    });
  });

  // Regression: a result whose `then` getter throws used to leave the timeout's forwarding
  // listener on the caller's signal.
  it("leaves no listener when the handler's result has a throwing then getter", async () => {
    const controller = new AbortController();
    const hostile = Object.defineProperty({}, "then", {
      get(): never {
        throw new Error("then getter broke");
      },
    }) as number;
    const stage = new Stage(
      "hostileThen",
      (_value: number, _context: Context, call: StageCall) => (call.attempt > 0 ? hostile : 0),
      { timeout: 1_000 },
    );
    await expect(stage.run(1, { signal: controller.signal })).rejects.toBeInstanceOf(
      StageExecutionError,
    );
    expect(getEventListeners(controller.signal, "abort")).toHaveLength(0);
  });

  it("rejects with a non-Error reason as is", async () => {
    const controller = new AbortController();
    const stage = new Stage("str", (): Promise<number> => never());
    const run = stage.run(1, { signal: controller.signal });
    controller.abort("just a string");
    await expect(run).rejects.toBe("just a string");
  });

  it("rejects with the default AbortError reason when aborted without a reason", async () => {
    const controller = new AbortController();
    const stage = new Stage("default", (): Promise<number> => never());
    const run = stage.run(1, { signal: controller.signal });
    controller.abort();
    const error = await rejectionOf(run);
    expect(error).toBe(controller.signal.reason);
    expect(error).toBeInstanceOf(DOMException);
    expect((error as DOMException).name).toBe("AbortError");
  });

  it("does not wrap the abort reason when the handler rejects because of the abort", async () => {
    const controller = new AbortController();
    const reason = new Error("cancelled");
    const stage = new Stage(
      "cooperative",
      (_value: number, _context: Context, call: StageCall) =>
        new Promise<number>((_resolve, reject) => {
          call.signal.addEventListener("abort", () => {
            reject(new Error("handler saw abort"));
          });
        }),
      { retries: 3 },
    );
    const run = stage.run(1, { signal: controller.signal });
    controller.abort(reason);
    await expect(run).rejects.toBe(reason);
  });

  it("rejects with the reason when a sync handler aborts the caller's signal and throws", async () => {
    const controller = new AbortController();
    const reason = new Error("aborted inside");
    const handler = vi.fn((): number => {
      controller.abort(reason);
      throw new Error("after abort");
    });
    const stage = new Stage("selfAbort", handler, { retries: 2 });
    await expect(stage.run(1, { signal: controller.signal })).rejects.toBe(reason);
    expect(handler).toHaveBeenCalledTimes(1);
  });

  it("treats a handler's own AbortError as an ordinary failure: wrapped", async () => {
    const own = new DOMException("x", "AbortError");
    const controller = new AbortController();
    const stage = new Stage("ownAbort", async (): Promise<number> => {
      await Promise.resolve();
      throw own;
    });
    const error = await rejectionOf(stage.run(1, { signal: controller.signal }));
    expect(error).toBeInstanceOf(StageExecutionError);
    expect((error as StageExecutionError).originalError).toBe(own);
  });

  it("treats a handler's own AbortError as an ordinary failure: retried", async () => {
    const handler = vi.fn(async (): Promise<number> => {
      await Promise.resolve();
      throw new DOMException("x", "AbortError");
    });
    const stage = new Stage("ownAbortRetried", handler, { retries: 2 });
    const error = await rejectionOf(stage.run(1, { signal: new AbortController().signal }));
    expect(handler).toHaveBeenCalledTimes(3);
    expect(error).toBeInstanceOf(StageExecutionError);
    expect((error as StageExecutionError).attempts).toBe(3);
    expect((error as StageExecutionError).originalError).toBeInstanceOf(DOMException);
  });

  it("treats a sync AbortError throw without a caller signal as an ordinary failure", async () => {
    const own = new DOMException("x", "AbortError");
    const stage = new Stage("ownAbortSync", (): number => {
      throw own;
    });
    const error = await rejectionOf(stage.run(1));
    expect(error).toBeInstanceOf(StageExecutionError);
    expect((error as StageExecutionError).originalError).toBe(own);
  });

  it("makes no further attempt after an abort during an attempt", async () => {
    vi.useFakeTimers();
    const controller = new AbortController();
    const handler = vi.fn((): Promise<number> => never());
    const stage = new Stage("noMore", handler, { retries: 5, timeout: 100 });
    const run = track(stage.run(1, { signal: controller.signal }));
    await vi.advanceTimersByTimeAsync(50);
    controller.abort(new Error("stop"));
    await vi.advanceTimersByTimeAsync(10_000);
    expect(run.settled).toBe(true);
    expect(handler).toHaveBeenCalledTimes(1);
    expect(vi.getTimerCount()).toBe(0);
  });
});
