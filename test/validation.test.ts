import { describe, expect, it, vi } from "vitest";
import { Pipeline, Stage, type Handler, type Middleware, type StageOptions } from "../src/index.js";
import { closest, editDistance } from "../src/internal/known-keys.js";
import { loggingMiddleware, retryMiddleware, timeoutMiddleware } from "../src/middlewares/index.js";

const handler = (value: number): number => value;

function build(options: Record<string, unknown>): Stage<number, number> {
  return new Stage("s", handler, options);
}

type ErrorClass = typeof RangeError | typeof TypeError;

function expectInvalid(
  options: Record<string, unknown>,
  kind: ErrorClass,
  message: string | RegExp,
): void {
  let caught: unknown;
  try {
    build(options);
  } catch (error) {
    caught = error;
  }
  expect(caught, `expected ${Object.keys(options).join()} to be rejected`).toBeInstanceOf(kind);
  expect((caught as Error).message).toMatch(message);
}

describe("Stage options: timeout", () => {
  it.each([0, -1, -0, -Infinity])("rejects %s with a RangeError", (timeout) => {
    expectInvalid({ timeout }, RangeError, /^timeout must be greater than 0/);
  });

  it("rejects NaN with a RangeError naming timeout", () => {
    expectInvalid({ timeout: NaN }, RangeError, /timeout/);
  });

  it("rejects Infinity with a RangeError naming timeout", () => {
    expectInvalid({ timeout: Infinity }, RangeError, /timeout/);
  });

  it.each([["5"], [null], [true], [{}], [5n]])("rejects %o with a TypeError", (timeout) => {
    expectInvalid({ timeout }, TypeError, /timeout/);
  });

  it("accepts a small positive and a fractional timeout", () => {
    expect(build({ timeout: 1 }).timeout).toBe(1);
    expect(build({ timeout: 0.5 }).timeout).toBe(0.5);
  });
});

describe("Stage options: retries", () => {
  it("rejects -1 with a RangeError", () => {
    expectInvalid({ retries: -1 }, RangeError, /^retries must be greater than or equal to 0/);
  });

  it.each([1.5, NaN, Infinity])("rejects %s with a RangeError naming retries", (retries) => {
    expectInvalid({ retries }, RangeError, /retries/);
  });

  it.each([["2"], [null], [false]])("rejects %o with a TypeError", (retries) => {
    expectInvalid({ retries }, TypeError, /retries/);
  });

  it("accepts 0 and a large integer", () => {
    expect(build({ retries: 0 }).retries).toBe(0);
    expect(build({ retries: 1_000 }).retries).toBe(1_000);
  });
});

describe("Stage options: retryDelay", () => {
  it("rejects -1 with a RangeError", () => {
    expectInvalid({ retryDelay: -1 }, RangeError, /^retryDelay must be greater than or equal to 0/);
  });

  it.each([NaN, Infinity])("rejects %s with a RangeError naming retryDelay", (retryDelay) => {
    expectInvalid({ retryDelay }, RangeError, /retryDelay/);
  });

  it("rejects a string with a TypeError", () => {
    expectInvalid({ retryDelay: "100" }, TypeError, /retryDelay/);
  });
});

describe("Stage options: backoff", () => {
  it("rejects an unknown string with a RangeError listing the choices", () => {
    expectInvalid({ backoff: "linear" }, RangeError, /backoff must be "fixed" or "exponential"/);
  });

  it.each([[5], [null], [true]])("rejects %o with a TypeError", (backoff) => {
    expectInvalid({ backoff }, TypeError, /backoff must be "fixed" or "exponential"/);
  });

  it("is case-sensitive", () => {
    expectInvalid({ backoff: "Exponential" }, RangeError, /backoff/);
  });
});

describe("Stage options: maxRetryDelay", () => {
  it("rejects -1 with a RangeError", () => {
    expectInvalid(
      { maxRetryDelay: -1 },
      RangeError,
      /^maxRetryDelay must be greater than or equal to 0/,
    );
  });

  it.each([NaN, Infinity])("rejects %s with a RangeError naming maxRetryDelay", (value) => {
    expectInvalid({ maxRetryDelay: value }, RangeError, /maxRetryDelay/);
  });

  it("rejects a string with a TypeError", () => {
    expectInvalid({ maxRetryDelay: "1" }, TypeError, /maxRetryDelay/);
  });
});

describe("Stage options: jitter", () => {
  it.each([["yes"], [1], [null]])("rejects %o with a TypeError", (jitter) => {
    expectInvalid({ jitter }, TypeError, /jitter/);
  });
});

describe("Stage options: callbacks", () => {
  it.each([[true], ["fn"], [{}], [null]])("rejects shouldRetry %o with a TypeError", (value) => {
    expectInvalid({ shouldRetry: value }, TypeError, /shouldRetry/);
  });

  it.each([[true], ["fn"], [{}], [null]])("rejects onRetry %o with a TypeError", (value) => {
    expectInvalid({ onRetry: value }, TypeError, /onRetry/);
  });
});

describe("Stage options: the options argument itself", () => {
  it.each([[null], ["fast"], [5]])("rejects options %o with a TypeError", (options) => {
    expect(() => new Stage("s", handler, options as unknown as StageOptions)).toThrow(TypeError);
  });

  it("accepts undefined and an empty object", () => {
    expect(new Stage("s", handler, undefined).retries).toBe(0);
    expect(new Stage("s", handler, {}).retries).toBe(0);
  });
});

describe("Stage constructor: name and handler", () => {
  it("rejects an empty name with a RangeError naming name", () => {
    expect(() => new Stage("", handler)).toThrow(RangeError);
    expect(() => new Stage("", handler)).toThrow(/name/);
  });

  it.each<[unknown]>([[5], [undefined], [null], [{}], [Symbol("n")]])(
    "rejects a non-string name %o with a TypeError",
    (name) => {
      expect(() => new Stage(name as string, handler)).toThrow(TypeError);
      expect(() => new Stage(name as string, handler)).toThrow(/name/);
    },
  );

  it.each([[undefined], [null], ["handler"], [42], [{}]])(
    "rejects a non-function handler %o with a TypeError",
    (value) => {
      const bad = value as Handler<number, number>;
      expect(() => new Stage("s", bad)).toThrow(TypeError);
      expect(() => new Stage("s", bad)).toThrow(/handler/);
    },
  );

  it("validates synchronously, before any run", () => {
    const spy = vi.fn(handler);
    expect(() => new Stage("s", spy, { retries: -1 })).toThrow(RangeError);
    expect(spy).not.toHaveBeenCalled();
  });
});

describe("stage.run: argument checks", () => {
  it("rejects (does not throw) when signal is not an AbortSignal", async () => {
    const spy = vi.fn(handler);
    const stage = new Stage("s", spy);
    let result: Promise<number> | undefined;
    expect(() => {
      result = stage.run(1, { signal: {} as AbortSignal });
    }).not.toThrow();
    await expect(result).rejects.toThrow(TypeError);
    await expect(result).rejects.toThrow(/signal/);
    expect(spy).not.toHaveBeenCalled();
  });

  it.each([
    ["a string", "signal"],
    ["null", null],
    ["a number", 1],
  ])("rejects a signal that is %s with a TypeError", async (_label, signal) => {
    const stage = new Stage("s", handler);
    await expect(stage.run(1, { signal: signal as unknown as AbortSignal })).rejects.toThrow(
      TypeError,
    );
  });

  it("rejects when context is not an object", async () => {
    const spy = vi.fn(handler);
    const stage = new Stage("s", spy);
    const result = stage.run(1, { context: 5 as unknown as object });
    await expect(result).rejects.toThrow(TypeError);
    await expect(result).rejects.toThrow(/context/);
    expect(spy).not.toHaveBeenCalled();
  });

  it("rejects when the run options are not an object", async () => {
    const stage = new Stage("s", handler);
    await expect(stage.run(1, "options" as unknown as undefined)).rejects.toThrow(TypeError);
  });

  it("accepts an explicit undefined signal and context", async () => {
    const stage = new Stage("s", handler);
    await expect(stage.run(3, { signal: undefined, context: undefined })).resolves.toBe(3);
  });
});

describe("sparse arrays: every index is checked, holes included", () => {
  const stage = new Stage("s", handler);
  const middleware: Middleware<object> = (next, _name, value) => next(value);

  it("rejects a hole in stages with a TypeError naming its index", () => {
    // eslint-disable-next-line no-sparse-arrays -- the hole is under test
    const stages = [stage, , stage] as unknown as [typeof stage];
    expect(() => new Pipeline(stages)).toThrow(
      new TypeError("stages[1] must be a Stage, got a hole"),
    );
  });

  it("rejects holes left by a longer length, and an undefined entry, by index", () => {
    const stages = [stage];
    stages.length = 2;
    expect(() => new Pipeline(stages as [typeof stage])).toThrow(
      new TypeError("stages[1] must be a Stage, got a hole"),
    );
    expect(() => new Pipeline([stage, undefined] as unknown as [typeof stage])).toThrow(
      new TypeError("stages[1] must be a Stage, got undefined"),
    );
  });

  it("rejects a hole in middlewares at construction, instead of failing every run", () => {
    // eslint-disable-next-line no-sparse-arrays -- the hole is under test
    const middlewares = [, middleware] as unknown as Middleware<object>[];
    expect(() => new Pipeline([stage], { middlewares })).toThrow(
      new TypeError("middlewares[0] must be a function, got a hole"),
    );
    expect(() => new Pipeline([stage], { middlewares: [middleware, "no" as never] })).toThrow(
      new TypeError('middlewares[1] must be a function, got "no"'),
    );
  });

  it("reads each entry once, and keeps what it read", async () => {
    let reads = 0;
    const stages: unknown[] = [];
    Object.defineProperty(stages, 0, {
      get: () => {
        reads++;
        return reads === 1 ? stage : "changed";
      },
      enumerable: true,
    });
    const pipeline = new Pipeline(stages as [typeof stage]);
    expect(reads).toBe(1);
    expect(pipeline.stages).toEqual([stage]);
    await expect(pipeline.run(4)).resolves.toBe(4);
  });

  it("rejects stages and middlewares that are not arrays", () => {
    expect(() => new Pipeline("s" as never)).toThrow(
      new TypeError('stages must be an array, got "s"'),
    );
    expect(() => new Pipeline([stage], { middlewares: middleware as never })).toThrow(
      new TypeError("middlewares must be an array, got a function"),
    );
  });
});

/** A signal the library can fully use, that is not an `AbortSignal`: an `EventTarget` wrapper. */
class LookAlikeSignal {
  aborted = false;
  reason: unknown = undefined;
  readonly #target = new EventTarget();
  /** The listeners in place, each with whether it was added `once`. */
  readonly listeners = new Map<() => void, boolean>();

  addEventListener(type: string, listener: () => void, options?: AddEventListenerOptions): void {
    this.listeners.set(listener, options?.once === true);
    this.#target.addEventListener(type, listener, options);
  }

  removeEventListener(type: string, listener: () => void): void {
    this.listeners.delete(listener);
    this.#target.removeEventListener(type, listener);
  }

  abort(reason: unknown): void {
    this.aborted = true;
    this.reason = reason;
    this.#target.dispatchEvent(new Event("abort"));
    for (const [listener, once] of this.listeners) if (once) this.listeners.delete(listener);
  }
}

describe("signals: a look-alike is accepted when it can be fully used, else rejected", () => {
  const stage = new Stage("s", handler);
  const pipeline = new Pipeline([stage]);
  const hooked = new Pipeline([stage], { beforeStage: () => undefined });

  /** Every entry point that takes a signal, as a promise of its outcome. */
  const entryPoints: [string, (signal: AbortSignal) => Promise<unknown>][] = [
    ["Stage.run", (signal) => stage.run(1, { signal })],
    ["Pipeline.run", (signal) => pipeline.run(1, { signal })],
    ["Pipeline.run with hooks", (signal) => hooked.run(1, { signal })],
    ["map", (signal) => pipeline.map([1, 2], { signal })],
    ["mapSettled", (signal) => pipeline.mapSettled([1, 2], 1, { signal })],
    [
      "stream",
      async (signal) => {
        const outputs: unknown[] = [];
        for await (const output of pipeline.stream([1, 2], { signal })) outputs.push(output);
        return outputs;
      },
    ],
  ];

  const withoutRemove = {
    aborted: false,
    reason: undefined,
    addEventListener: (): undefined => undefined,
  };

  it.each(entryPoints)(
    "%s rejects a look-alike without removeEventListener with a TypeError naming signal",
    async (_name, call) => {
      await expect(call(withoutRemove as unknown as AbortSignal)).rejects.toThrow(
        new TypeError(
          "signal must be an AbortSignal (or an object with a boolean aborted, a reason, and " +
            "addEventListener and removeEventListener methods), got an object without a " +
            "removeEventListener method",
        ),
      );
    },
  );

  const noop = (): void => undefined;
  it.each<[string, object]>([
    ["a boolean aborted", { ...withoutRemove, aborted: "no", removeEventListener: noop }],
    ["a reason", { aborted: false, addEventListener: noop, removeEventListener: noop }],
    ["an addEventListener method", { aborted: false, reason: 1, removeEventListener: noop }],
  ])("rejects a look-alike without %s, saying so", async (missing, signal) => {
    for (const [, call] of entryPoints) {
      await expect(call(signal as unknown as AbortSignal)).rejects.toThrow(
        new RegExp(`^signal must be an AbortSignal .*got an object without ${missing}$`),
      );
    }
  });

  it.each(entryPoints)("%s works with a complete look-alike", async (name, call) => {
    const signal = new LookAlikeSignal();
    const outcome = await call(signal as unknown as AbortSignal);
    expect(outcome).toEqual(
      name === "mapSettled"
        ? [
            { status: "fulfilled", value: 1 },
            { status: "fulfilled", value: 2 },
          ]
        : name.includes("run")
          ? 1
          : [1, 2],
    );
    expect(signal.listeners.size).toBe(0);
  });

  it("cancels through a complete look-alike: rejects with its reason, leaves no listener", async () => {
    const signal = new LookAlikeSignal();
    const slow = new Pipeline([
      new Stage("hang", (_value: number, _context: object, call) => {
        return new Promise<number>((_resolve, reject) => {
          call.signal.addEventListener(
            "abort",
            () => {
              reject(new Error("stopped"));
            },
            { once: true },
          );
        });
      }),
    ]);
    const reason = new Error("user left");
    const run = slow.run(1, { signal: signal as unknown as AbortSignal });
    const batch = slow.map([1, 2, 3], { signal: signal as unknown as AbortSignal });
    signal.abort(reason);
    await expect(run).rejects.toBe(reason);
    await expect(batch).rejects.toBe(reason);
    expect(signal.listeners.size).toBe(0);
  });
});

describe("unknown option keys", () => {
  const stage = new Stage("s", handler);
  const pipeline = new Pipeline([stage]);

  it("rejects an unknown Stage option, naming it and the option meant", () => {
    expect(() => build({ retry: 3 })).toThrow(
      new TypeError('unknown option "retry" (did you mean "retries"?)'),
    );
    expect(() => build({ timout: 10 })).toThrow(
      new TypeError('unknown option "timout" (did you mean "timeout"?)'),
    );
    expect(() => build({ onretry: () => 0 })).toThrow(
      new TypeError('unknown option "onretry" (did you mean "onRetry"?)'),
    );
  });

  it("names no option when none is close", () => {
    expect(() => build({ colour: "red" })).toThrow(new TypeError('unknown option "colour"'));
  });

  it("rejects an unknown key whatever its value, undefined included", () => {
    expect(() => build({ retries: 1, onretry: undefined })).toThrow(
      new TypeError('unknown option "onretry" (did you mean "onRetry"?)'),
    );
  });

  it("ignores inherited and symbol keys", () => {
    const options = Object.create({ inherited: true }) as Record<PropertyKey, unknown>;
    options[Symbol("mine")] = 1;
    options.retries = 2;
    expect(build(options).retries).toBe(2);
  });

  it("rejects an unknown Pipeline option", () => {
    expect(() => new Pipeline([stage], { middleware: [] } as never)).toThrow(
      new TypeError('unknown option "middleware" (did you mean "middlewares"?)'),
    );
    expect(() => new Pipeline([stage], { before: () => 0 } as never)).toThrow(
      new TypeError('unknown option "before"'),
    );
  });

  it("rejects an unknown run option, as a rejection, for Stage.run and Pipeline.run", async () => {
    const message = 'unknown option "signl" (did you mean "signal"?)';
    let result: Promise<unknown> | undefined;
    expect(() => {
      result = pipeline.run(1, { signl: undefined } as never);
    }).not.toThrow();
    await expect(result).rejects.toThrow(new TypeError(message));
    await expect(stage.run(1, { signl: undefined } as never)).rejects.toThrow(
      new TypeError(message),
    );
    await expect(pipeline.run(1, { contxt: {} } as never)).rejects.toThrow(
      new TypeError('unknown option "contxt" (did you mean "context"?)'),
    );
  });

  it("rejects an unknown map and mapSettled option, in either argument form", async () => {
    const typo = new TypeError('unknown option "concurency" (did you mean "concurrency"?)');
    await expect(pipeline.map([1], { concurency: 2 } as never)).rejects.toThrow(typo);
    await expect(pipeline.mapSettled([1], { concurency: 2 } as never)).rejects.toThrow(typo);
    await expect(pipeline.map([1], 2, { concurency: 2 } as never)).rejects.toThrow(typo);
    // A stream option is not a map option, and the message says whose it is.
    await expect(pipeline.map([1], 2, { ordered: false } as never)).rejects.toThrow(
      new TypeError('unknown option "ordered" ("ordered" is an option of stream, not map)'),
    );
  });

  it("rejects an unknown stream option when the stream is first read", async () => {
    const stream = pipeline.stream([1], { setled: true } as never);
    await expect(stream.next()).rejects.toThrow(
      new TypeError('unknown option "setled" (did you mean "settled"?)'),
    );
    const outputs: unknown[] = [];
    for await (const output of pipeline.stream([1, 2], { buffer: 0, ordered: false })) {
      outputs.push(output);
    }
    expect(outputs.sort()).toEqual([1, 2]);
  });

  it("rejects unknown options of the built-in middlewares", () => {
    expect(() => retryMiddleware({ retry: 3 } as never)).toThrow(
      new TypeError('unknown option "retry" (did you mean "retries"?)'),
    );
    expect(() => loggingMiddleware({ loger: console } as never)).toThrow(
      new TypeError('unknown option "loger" (did you mean "logger"?)'),
    );
    expect(() => timeoutMiddleware({ timeout: 5, timeOut: 5 } as never)).toThrow(
      new TypeError('unknown option "timeOut" (did you mean "timeout"?)'),
    );
    expect(() => retryMiddleware({ retryDelay: 100, maxRetryDelay: 1_000 })).not.toThrow();
  });
});

describe("closest: the option a misspelt key meant", () => {
  const stageKeys = [
    "timeout",
    "retries",
    "retryDelay",
    "backoff",
    "maxRetryDelay",
    "jitter",
    "shouldRetry",
    "onRetry",
  ];

  it.each([
    ["retry", "retries"],
    ["reties", "retries"],
    ["retires", "retries"],
    ["Timeout", "timeout"],
    ["retrydelay", "retryDelay"],
    ["maxRetryDelays", "maxRetryDelay"],
    ["jiter", "jitter"],
    ["backof", "backoff"],
    ["onretries", "onRetry"],
    ["shouldretry", "shouldRetry"],
  ])("suggests for %s: %s", (word, meant) => {
    expect(closest(word, stageKeys)).toBe(meant);
  });

  it.each(["x", "colour", "name", "signal", "limit"])("suggests nothing for %s", (word) => {
    expect(closest(word, stageKeys)).toBeUndefined();
  });

  it("counts insertions, deletions, substitutions and swaps as one edit each", () => {
    expect(editDistance("", "abc")).toBe(3);
    expect(editDistance("abc", "")).toBe(3);
    expect(editDistance("abc", "abc")).toBe(0);
    expect(editDistance("abc", "acb")).toBe(1);
    expect(editDistance("abc", "abd")).toBe(1);
    expect(editDistance("kitten", "sitting")).toBe(3);
  });
});
