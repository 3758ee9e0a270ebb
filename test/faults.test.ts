/**
 * Fault injection: handlers that throw values that are not errors, return non-native
 * thenables that reject or call back twice, or throw synchronously from a function that looks
 * async; hooks and middleware that throw or hang; inputs whose `next()` throws or rejects, and
 * async inputs that must be closed when a batch stops early. Faults whose symptom is an
 * unhandled rejection run in a child process with `--unhandled-rejections=strict`
 * (test/fixtures/unhandled.ts).
 */
import { afterEach, describe, expect, it, vi } from "vitest";
import {
  Pipeline,
  Stage,
  StageExecutionError,
  type Middleware,
  type StageCall,
  type StageOptions,
} from "../src/index.js";
import { reports, runFixture } from "./fixtures/child.js";
import { never, observe, rejectionOf } from "./support/promises.js";
import { abortListeners } from "./support/signals.js";
import { flush } from "./support/time.js";

afterEach(() => {
  vi.useRealTimers();
});

// -----------------------------------------------------------------------------------------------
// Values that are not errors
// -----------------------------------------------------------------------------------------------

const oddValues: [string, unknown][] = [
  ["undefined", undefined],
  ["null", null],
  ["0", 0],
  ["NaN", NaN],
  ["an empty string", ""],
  ["a string", "plain text"],
  ["a symbol", Symbol("thrown")],
  ["a bigint", 42n],
  ["an object without prototype", Object.create(null) as object],
  [
    "an object whose toString throws",
    {
      toString: () => {
        throw new Error("no");
      },
    },
  ],
  ["a function", () => 1],
  ["an array", [1, 2]],
  ["an error-like object", { name: "Fake", message: "not an Error" }],
  ["false", false],
];

/** Ways a handler can fail with `value`. */
const failures: [string, (value: unknown) => (input: number) => unknown][] = [
  [
    "thrown synchronously",
    (value) => () => {
      throw value;
    },
  ],
  ["rejected by an async function", (value) => async () => Promise.reject(value)],
  [
    "rejected by a non-native thenable",
    (value) => () => ({
      then: (_onFulfilled: unknown, onRejected: (reason: unknown) => void) => {
        onRejected(value);
      },
    }),
  ],
];

/** The paths a stage takes inside the library, chosen by options and the run's signal. */
const paths: [string, StageOptions, boolean][] = [
  ["plain", {}, false],
  ["with a caller signal", {}, true],
  ["with a timeout", { timeout: 1_000 }, false],
  ["with a timeout and a caller signal", { timeout: 1_000 }, true],
  ["with retries", { retries: 1 }, false],
  ["with retries, a timeout and a caller signal", { retries: 1, timeout: 1_000 }, true],
];

function expectWrapped(error: unknown, value: unknown, attempts: number): void {
  expect(error).toBeInstanceOf(StageExecutionError);
  const wrapped = error as StageExecutionError;
  expect(Object.is(wrapped.originalError, value)).toBe(true);
  expect(Object.is(wrapped.cause, value)).toBe(true);
  expect(wrapped.attempts).toBe(attempts);
  expect(wrapped.stageName).toBe("odd");
  expect(typeof wrapped.message).toBe("string");
  expect(wrapped.message).toContain('Stage "odd" failed');
}

describe("faults: a handler fails with a value that is not an Error", () => {
  describe.each(oddValues)("%s", (_label, value) => {
    it.each(failures)("%s: every path wraps it in a StageExecutionError", async (_how, make) => {
      for (const [, options, withSignal] of paths) {
        const stage = new Stage("odd", make(value), options);
        const controller = new AbortController();
        const error = await rejectionOf(
          stage.run(1, withSignal ? { signal: controller.signal } : {}),
        );
        expectWrapped(error, value, (options.retries ?? 0) + 1);
        expect(abortListeners(controller.signal)).toBe(0);
      }
    });

    it("reaches map, mapSettled, stream and afterStage as the originalError", async () => {
      const errors: unknown[] = [];
      const pipeline = new Pipeline([new Stage("odd", failures[1]![1](value))], {
        afterStage: (_name, _input, _output, error) => {
          errors.push(error);
        },
      });
      expectWrapped(await rejectionOf(pipeline.map([1, 2], 2)), value, 1);
      const settled = await pipeline.mapSettled([1], 1);
      expect(settled[0]?.status).toBe("rejected");
      expectWrapped((settled[0] as PromiseRejectedResult).reason, value, 1);
      const stream = pipeline.stream([1], 1);
      expectWrapped(await rejectionOf(stream.next()), value, 1);
      expect(errors.length).toBeGreaterThanOrEqual(3);
      for (const error of errors) expectWrapped(error, value, 1);
    });
  });

  it.each([
    ["a string", "stop"],
    ["0", 0],
    ["null", null],
    ["a symbol", Symbol("stop")],
    ["an object without prototype", Object.create(null) as object],
  ])(
    "rejects run, map, mapSettled and stream with an abort reason that is %s, unwrapped",
    async (_label, reason) => {
      const pipeline = new Pipeline([new Stage("hang", () => never<number>())]);
      const controller = new AbortController();
      const { signal } = controller;
      const run = observe(pipeline.run(1, { signal }));
      const map = observe(pipeline.map([1, 2], 2, { signal }));
      const settled = observe(pipeline.mapSettled([1, 2], 2, { signal }));
      const stream = observe(pipeline.stream([1, 2], 2, { signal }).next());
      await flush();
      controller.abort(reason);
      await flush();
      for (const observed of [run, map, settled, stream]) {
        expect(observed.status).toBe("rejected");
        expect(Object.is(observed.reason, reason)).toBe(true);
      }
      expect(abortListeners(signal)).toBe(0);
    },
  );
});

// -----------------------------------------------------------------------------------------------
// Thenables that are not native promises
// -----------------------------------------------------------------------------------------------

/** A thenable that calls back more than once, both ways, then throws. */
function unruly<T>(first: { value: T } | { error: unknown }): PromiseLike<T> {
  return {
    then(onFulfilled, onRejected) {
      if ("value" in first) onFulfilled?.(first.value);
      else onRejected?.(first.error);
      onFulfilled?.(first as T);
      onRejected?.(new Error("second call"));
      setTimeout(() => {
        onFulfilled?.("later" as T);
      }, 0);
      throw new Error("then threw after calling back");
    },
  };
}

describe("faults: non-native thenables", () => {
  it.each(paths)(
    "the first callback of a thenable that calls back twice wins (%s)",
    async (_label, options, withSignal) => {
      const controller = new AbortController();
      const signal = withSignal ? { signal: controller.signal } : {};
      const ok = new Stage("odd", () => unruly({ value: 7 }), options);
      await expect(ok.run(1, signal)).resolves.toBe(7);
      const boom = new Error("first");
      const ko = new Stage("odd", () => unruly<number>({ error: boom }), options);
      expectWrapped(await rejectionOf(ko.run(1, signal)), boom, (options.retries ?? 0) + 1);
      expect(abortListeners(controller.signal)).toBe(0);
    },
  );

  it("the first callback wins through middleware, hooks and map", async () => {
    const boom = new Error("first");
    const pipeline = new Pipeline(
      [
        new Stage("odd", (value: number) =>
          value === 2 ? unruly<number>({ error: boom }) : unruly({ value: value * 10 }),
        ),
      ],
      {
        middlewares: [
          // A thenable of its own that calls back twice with what next() gave.
          (next, _name, value) => ({
            then(onFulfilled: (output: unknown) => void, onRejected: (error: unknown) => void) {
              next(value).then(
                (output) => {
                  onFulfilled(output);
                  onFulfilled("again");
                },
                (error: unknown) => {
                  onRejected(error);
                  onRejected("again");
                },
              );
            },
          }),
        ],
        beforeStage: () => unruly({ value: undefined }),
        afterStage: () => unruly({ error: new Error("ignored") }),
      },
    );
    await expect(pipeline.map([0, 1], 2)).resolves.toEqual([0, 10]);
    const settled = await pipeline.mapSettled([1, 2], 2);
    expect(settled[0]).toEqual({ status: "fulfilled", value: 10 });
    expectWrapped((settled[1] as PromiseRejectedResult).reason, boom, 1);
  });

  it.each(paths)(
    "a thenable whose then() throws before calling back is a failure (%s)",
    async (_label, options, withSignal) => {
      const boom = new Error("then() threw");
      const stage = new Stage(
        "odd",
        () => ({
          then() {
            throw boom;
          },
        }),
        options,
      );
      const controller = new AbortController();
      const error = await rejectionOf(
        stage.run(1, withSignal ? { signal: controller.signal } : {}),
      );
      expectWrapped(error, boom, (options.retries ?? 0) + 1);
      expect(abortListeners(controller.signal)).toBe(0);
    },
  );

  // Regression: reading the result's `then` ran outside the try on the plain path, so a
  // throwing getter escaped unwrapped.
  it("a result whose `then` getter throws is a failure, on the plain path", async () => {
    const boom = new Error("then getter");
    const hostile = {
      get then(): never {
        throw boom;
      },
    };
    const stage = new Stage<number, number>("odd", () => hostile);
    expectWrapped(await rejectionOf(stage.run(1)), boom, 1);
    const settled = await new Pipeline([stage]).mapSettled([1], 1);
    expectWrapped((settled[0] as PromiseRejectedResult).reason, boom, 1);
  });

  it.each(paths.filter(([, options, withSignal]) => options.timeout !== undefined || withSignal))(
    "a result whose `then` getter throws is a failure and leaves no listener (%s)",
    async (_label, options, withSignal) => {
      const boom = new Error("then getter");
      const hostile = {
        get then(): never {
          throw boom;
        },
      };
      const stage = new Stage(
        "odd",
        // eslint-disable-next-line @typescript-eslint/no-unused-vars -- three parameters: the (value, context, call) path
        (_value: number, _context: object, _call: StageCall) => hostile,
        options,
      );
      const controller = new AbortController();
      const error = await rejectionOf(
        stage.run(1, withSignal ? { signal: controller.signal } : {}),
      );
      expectWrapped(error, boom, (options.retries ?? 0) + 1);
      expect(abortListeners(controller.signal)).toBe(0);
    },
  );
});

// -----------------------------------------------------------------------------------------------
// A synchronous throw from a function that looks async
// -----------------------------------------------------------------------------------------------

describe("faults: a handler throws synchronously from a function that returns promises", () => {
  /** Returns a promise on later attempts, but throws synchronously on the first. */
  function lookalike(boom: Error) {
    let calls = 0;
    return (value: number, _context: object, call: StageCall): Promise<number> => {
      calls++;
      if (call.attempt === 1) throw boom;
      return new Promise((resolve) =>
        setTimeout(() => {
          resolve(value + calls);
        }, 10),
      );
    };
  }

  it.each(paths)(
    "fails or retries like any failure, leaving no timer or listener (%s)",
    async (_label, options, withSignal) => {
      vi.useFakeTimers();
      const boom = new Error("sync throw");
      const controller = new AbortController();
      const stage = new Stage("odd", lookalike(boom), options);
      const run = observe(stage.run(1, withSignal ? { signal: controller.signal } : {}));
      await vi.advanceTimersByTimeAsync(100);
      if ((options.retries ?? 0) > 0) {
        expect(run.status).toBe("fulfilled");
        expect(run.value).toBe(3);
      } else {
        expect(run.status).toBe("rejected");
        expectWrapped(run.reason, boom, 1);
      }
      expect(vi.getTimerCount()).toBe(0);
      expect(abortListeners(controller.signal)).toBe(0);
    },
  );

  it("fails the item in map and mapSettled, and fails map fast", async () => {
    const boom = new Error("sync throw");
    const started: number[] = [];
    const pipeline = new Pipeline([
      new Stage("odd", (value: number): Promise<number> => {
        started.push(value);
        if (value === 1) throw boom;
        return Promise.resolve(value);
      }),
    ]);
    const error = await rejectionOf(pipeline.map([0, 1, 2, 3], 1));
    expectWrapped(error, boom, 1);
    expect(started).toEqual([0, 1]);
    const settled = await pipeline.mapSettled([0, 1, 2], 3);
    expect(settled.map((entry) => entry.status)).toEqual(["fulfilled", "rejected", "fulfilled"]);
  });
});

// -----------------------------------------------------------------------------------------------
// Hooks and middleware that throw
// -----------------------------------------------------------------------------------------------

describe("faults: hooks that throw or reject are ignored", () => {
  const bad: [string, () => unknown][] = [
    [
      "throw an Error",
      () => {
        throw new Error("hook");
      },
    ],
    [
      "throw undefined",
      () => {
        throw undefined;
      },
    ],
    ["reject", () => Promise.reject(new Error("hook"))],
    [
      "return a thenable whose then() throws",
      () => ({
        then() {
          throw new Error("hook");
        },
      }),
    ],
    [
      "return an object whose then getter throws",
      () => ({
        get then(): never {
          throw new Error("hook");
        },
      }),
    ],
  ];

  it.each(bad)("hooks that %s change no outcome", async (_label, hook) => {
    const calls: string[] = [];
    const boom = new Error("stage failed");
    const pipeline = new Pipeline(
      [
        new Stage("a", async (value: number) => value + 1),
        new Stage("b", (value: number) => {
          if (value === 3) throw boom;
          return value * 10;
        }),
      ],
      {
        beforeStage: (name) => {
          calls.push(`before ${name}`);
          return hook();
        },
        afterStage: (name) => {
          calls.push(`after ${name}`);
          return hook();
        },
      },
    );
    await expect(pipeline.run(1)).resolves.toBe(20);
    expect(calls).toEqual(["before a", "after a", "before b", "after b"]);
    const error = await rejectionOf(pipeline.run(2));
    expect(error).toBeInstanceOf(StageExecutionError);
    expect((error as StageExecutionError).originalError).toBe(boom);
    await expect(pipeline.map([1, 4], 2)).resolves.toEqual([20, 50]);
    const settled = await pipeline.mapSettled([1, 2], 2);
    expect(settled.map((entry) => entry.status)).toEqual(["fulfilled", "rejected"]);
  });
});

describe("faults: middleware that throws", () => {
  const values: [string, unknown][] = [
    ["an Error", new Error("middleware")],
    ["undefined", undefined],
    ["a string", "middleware"],
    ["null", null],
  ];

  it.each(values)(
    "a synchronous throw of %s reaches the caller and afterStage as thrown",
    async (_label, value) => {
      const errors: unknown[] = [];
      const handler = vi.fn((input: number) => input);
      const throwing: Middleware = () => {
        throw value;
      };
      const pipeline = new Pipeline([new Stage("s", handler)], {
        middlewares: [throwing],
        afterStage: (_name, _input, output, error) => {
          errors.push(output, error);
        },
      });
      const error = await rejectionOf(pipeline.run(1));
      expect(Object.is(error, value)).toBe(true);
      expect(errors).toHaveLength(2);
      expect(errors[0]).toBeUndefined();
      expect(Object.is(errors[1], value)).toBe(true);
      expect(handler).not.toHaveBeenCalled();
      const mapError = await rejectionOf(pipeline.map([1, 2], 2));
      expect(Object.is(mapError, value)).toBe(true);
      const settled = await pipeline.mapSettled([1], 1);
      expect(settled[0]?.status).toBe("rejected");
      expect(Object.is((settled[0] as PromiseRejectedResult).reason, value)).toBe(true);
    },
  );

  it.each(values)(
    "a rejection with %s, after next() ran, reaches the caller as thrown",
    async (_label, value) => {
      const rejecting: Middleware = async (next, _name, input) => {
        await next(input);
        throw value;
      };
      const thenable: Middleware = (next, _name, input) => ({
        then: (_onFulfilled: unknown, onRejected: (reason: unknown) => void) => {
          void next(input).then(() => {
            onRejected(value);
          });
        },
      });
      for (const middleware of [rejecting, thenable]) {
        const pipeline = new Pipeline([new Stage("s", (input: number) => input)], {
          middlewares: [middleware],
        });
        expect(Object.is(await rejectionOf(pipeline.run(1)), value)).toBe(true);
      }
    },
  );
});

// -----------------------------------------------------------------------------------------------
// Hangs: a stage that never settles, a middleware that never settles
// -----------------------------------------------------------------------------------------------

describe("faults: the caller's signal still ends a run promptly while a stage hangs", () => {
  const shapes: [string, () => Pipeline<number, number>][] = [
    [
      "a plain pipeline",
      () => new Pipeline([new Stage<number, number>("hang", () => never<number>())]),
    ],
    [
      "a pipeline with hooks",
      () =>
        new Pipeline([new Stage<number, number>("hang", () => never<number>())], {
          beforeStage: () => undefined,
          afterStage: () => undefined,
        }),
    ],
    [
      "a pipeline with middleware",
      () =>
        new Pipeline([new Stage<number, number>("hang", () => never<number>())], {
          middlewares: [(next, _name, value) => next(value)],
        }),
    ],
    [
      "a stage with retries and a long timeout",
      () =>
        new Pipeline([
          new Stage<number, number>("hang", () => never<number>(), { retries: 3, timeout: 60_000 }),
        ]),
    ],
    [
      "a second stage that hangs",
      () =>
        new Pipeline([
          new Stage("first", async (value: number) => value),
          new Stage<number, number>("hang", () => never<number>()),
        ]),
    ],
  ];

  it.each(shapes)(
    "%s: run, map, mapSettled and stream reject with the reason, and nothing is left",
    async (_label, make) => {
      vi.useFakeTimers();
      const pipeline = make();
      const controller = new AbortController();
      const { signal } = controller;
      const reason = new Error("cancelled");
      const run = observe(pipeline.run(1, { signal }));
      const map = observe(pipeline.map([1, 2, 3], 2, { signal }));
      const settled = observe(pipeline.mapSettled([1, 2, 3], 2, { signal }));
      const stream = observe(pipeline.stream([1, 2, 3], 2, { signal }).next());
      await vi.advanceTimersByTimeAsync(1_000);
      expect([run.status, map.status, settled.status, stream.status]).toEqual([
        "pending",
        "pending",
        "pending",
        "pending",
      ]);
      controller.abort(reason);
      await flush(); // no timer advances: promptly means now
      for (const observed of [run, map, settled, stream]) {
        expect(observed.status).toBe("rejected");
        expect(observed.reason).toBe(reason);
      }
      expect(abortListeners(signal)).toBe(0);
      expect(vi.getTimerCount()).toBe(0);
    },
  );

  it("map and mapSettled do not wait for a hook that hangs when the caller aborts", async () => {
    const pipeline = new Pipeline([new Stage("s", (value: number) => value)], {
      beforeStage: () => never(),
    });
    const controller = new AbortController();
    const reason = new Error("cancelled");
    const map = observe(pipeline.map([1, 2], 2, { signal: controller.signal }));
    const settled = observe(pipeline.mapSettled([1, 2], 2, { signal: controller.signal }));
    await flush();
    controller.abort(reason);
    await flush();
    expect(map.reason).toBe(reason);
    expect(settled.reason).toBe(reason);
    expect(abortListeners(controller.signal)).toBe(0);
  });

  it("run rejects promptly when a middleware that ignores its signal hangs", async () => {
    const pipeline = new Pipeline([new Stage("s", (value: number) => value)], {
      middlewares: [() => never()],
    });
    const controller = new AbortController();
    const reason = new Error("cancelled");
    const run = observe(pipeline.run(1, { signal: controller.signal }));
    await flush();
    controller.abort(reason);
    await flush();
    expect(run.status).toBe("rejected");
    expect(run.reason).toBe(reason);
    expect(abortListeners(controller.signal)).toBe(0);
  });

  it("starts no further attempt, stage or item after the abort", async () => {
    vi.useFakeTimers();
    const started: string[] = [];
    const controller = new AbortController();
    const pipeline = new Pipeline([
      new Stage(
        "first",
        (value: number) => {
          started.push(`first ${String(value)}`);
          return new Promise<number>((_, reject) =>
            setTimeout(() => {
              reject(new Error("late"));
            }, 50),
          );
        },
        { retries: 5, retryDelay: 10 },
      ),
      new Stage("second", (value: number) => {
        started.push(`second ${String(value)}`);
        return value;
      }),
    ]);
    const map = observe(pipeline.map([1, 2, 3, 4], 2, { signal: controller.signal }));
    await vi.advanceTimersByTimeAsync(20);
    controller.abort(new Error("cancelled"));
    await vi.advanceTimersByTimeAsync(10_000);
    expect(map.status).toBe("rejected");
    expect(started).toEqual(["first 1", "first 2"]);
  });
});

// -----------------------------------------------------------------------------------------------
// Listeners on a signal shared by concurrent runs
// -----------------------------------------------------------------------------------------------

describe("faults: a signal shared by many concurrent runs", () => {
  const slow = (value: number): Promise<number> =>
    new Promise((resolve) =>
      setTimeout(() => {
        resolve(value);
      }, 10),
    );

  it.each([
    ["a one-parameter handler with a timeout", new Stage("s", slow, { timeout: 1_000 })],
    [
      "a three-parameter handler without a timeout",
      // eslint-disable-next-line @typescript-eslint/no-unused-vars -- three parameters: the (value, context, call) path
      new Stage("s", (value: number, _context: object, _call: StageCall) => slow(value)),
    ],
  ])("carries one listener however many runs are pending: %s", async (_label, stage) => {
    vi.useFakeTimers();
    const controller = new AbortController();
    const runs = [1, 2, 3, 4].map((input) => stage.run(input, { signal: controller.signal }));
    expect(abortListeners(controller.signal)).toBe(1);
    await vi.advanceTimersByTimeAsync(10);
    await expect(Promise.all(runs)).resolves.toEqual([1, 2, 3, 4]);
    expect(abortListeners(controller.signal)).toBe(0);
  });

  // Regression: a timed attempt of a three-parameter handler used to add two listeners to the
  // caller's signal (one to forward the abort, one to race it); then one per run.
  it("carries one listener however many runs are pending: a three-parameter handler with a timeout", async () => {
    vi.useFakeTimers();
    const stage = new Stage(
      "s",
      // eslint-disable-next-line @typescript-eslint/no-unused-vars -- three parameters: the (value, context, call) path
      (value: number, _context: object, _call: StageCall) => slow(value),
      { timeout: 1_000 },
    );
    const controller = new AbortController();
    const runs = [1, 2, 3, 4].map((input) => stage.run(input, { signal: controller.signal }));
    expect(abortListeners(controller.signal)).toBe(1);
    await vi.advanceTimersByTimeAsync(10);
    await Promise.all(runs);
    expect(abortListeners(controller.signal)).toBe(0);
  });
});

// -----------------------------------------------------------------------------------------------
// Inputs that fail
// -----------------------------------------------------------------------------------------------

/** A hand-written iterator (sync or async) that records its calls. */
function scriptedSource(
  kind: "sync" | "async",
  script: (index: number) => IteratorResult<number> | Promise<IteratorResult<number>> | "throw",
  failure: unknown,
) {
  const log = { next: 0, return: 0 };
  const iterator = {
    next: () => {
      const step = script(log.next++);
      if (step === "throw") throw failure;
      return step;
    },
    return: () => {
      log.return++;
      const done = { done: true as const, value: undefined };
      return kind === "async" ? Promise.resolve(done) : done;
    },
  };
  const items =
    kind === "async"
      ? ({ [Symbol.asyncIterator]: () => iterator } as AsyncIterable<number>)
      : ({ [Symbol.iterator]: () => iterator } as Iterable<number>);
  return { log, items };
}

const value = (index: number): IteratorResult<number> => ({ done: false, value: index });

describe("faults: inputs whose next() fails", () => {
  const boom = new Error("the input failed");
  const cases: [
    string,
    "sync" | "async",
    (index: number) => ReturnType<Parameters<typeof scriptedSource>[1]>,
  ][] = [
    ["a sync next() that throws", "sync", (index) => (index < 3 ? value(index) : "throw")],
    [
      "an async next() that throws synchronously",
      "async",
      (index) => (index < 3 ? Promise.resolve(value(index)) : "throw"),
    ],
    [
      "an async next() that rejects",
      "async",
      (index) => (index < 3 ? Promise.resolve(value(index)) : Promise.reject(boom)),
    ],
    [
      "an async next() that rejects at once",
      "async",
      (index) => (index < 0 ? value(index) : Promise.reject(boom)),
    ],
    [
      "an async next() that returns plain results, then throws",
      "async",
      (index) => (index < 3 ? value(index) : "throw"),
    ],
  ];

  it.each(cases)(
    "%s: map, mapSettled and stream reject with its error, and do not call return()",
    async (_label, kind, script) => {
      const pipeline = new Pipeline([new Stage("s", async (input: number) => input)]);
      for (const form of ["map", "mapSettled", "stream"] as const) {
        const { log, items } = scriptedSource(kind, script, boom);
        const promise =
          form === "stream"
            ? (async () => {
                for await (const output of pipeline.stream(items, 2))
                  expect(output).toBeTypeOf("number");
              })()
            : pipeline[form](items, 2);
        expect(await rejectionOf(promise)).toBe(boom);
        expect(log.return).toBe(0);
      }
    },
  );

  it.each([
    [
      "[Symbol.iterator]()",
      {
        [Symbol.iterator]: () => {
          throw new Error("no iterator");
        },
      },
    ],
    [
      "[Symbol.asyncIterator]()",
      {
        [Symbol.asyncIterator]: () => {
          throw new Error("no iterator");
        },
      },
    ],
  ] as [string, Iterable<number>][])("rejects when %s throws", async (_label, items) => {
    const pipeline = new Pipeline([new Stage("s", (input: number) => input)]);
    expect(await rejectionOf(pipeline.map(items))).toMatchObject({ message: "no iterator" });
    expect(await rejectionOf(pipeline.mapSettled(items))).toMatchObject({ message: "no iterator" });
    expect(await rejectionOf(pipeline.stream(items).next())).toMatchObject({
      message: "no iterator",
    });
  });

  it("map: a throwing input aborts the items in flight, which start no further stage", async () => {
    vi.useFakeTimers();
    const { items } = scriptedSource("sync", (index) => (index < 2 ? value(index) : "throw"), boom);
    const signals: AbortSignal[] = [];
    const second = vi.fn((input: number) => input);
    const pipeline = new Pipeline([
      new Stage("first", (input: number, _context: object, call: StageCall) => {
        signals.push(call.signal);
        return new Promise<number>((resolve) =>
          setTimeout(() => {
            resolve(input);
          }, 10),
        );
      }),
      new Stage("second", second),
    ]);
    const map = observe(pipeline.map(items, 4));
    await vi.advanceTimersByTimeAsync(100);
    expect(map.reason).toBe(boom);
    expect(signals.map((signal) => signal.aborted)).toEqual([true, true]);
    expect(second).not.toHaveBeenCalled();
  });

  // Regression: without a caller signal, mapSettled gave its items no signal, so when the input
  // threw, the items in flight went on after mapSettled had rejected.
  it("mapSettled: a throwing input stops the items in flight", async () => {
    vi.useFakeTimers();
    const { items } = scriptedSource("sync", (index) => (index < 2 ? value(index) : "throw"), boom);
    const second = vi.fn((input: number) => input);
    const pipeline = new Pipeline([
      new Stage(
        "first",
        (input: number) =>
          new Promise<number>((resolve) =>
            setTimeout(() => {
              resolve(input);
            }, 10),
          ),
      ),
      new Stage("second", second),
    ]);
    const settled = observe(pipeline.mapSettled(items, 4));
    await vi.advanceTimersByTimeAsync(100);
    expect(settled.reason).toBe(boom);
    expect(second).not.toHaveBeenCalled();
  });
});

// -----------------------------------------------------------------------------------------------
// Closing the input when a batch stops early
// -----------------------------------------------------------------------------------------------

describe("faults: an async input is closed when the batch stops early", () => {
  type Stop = "fail-fast" | "abort" | "stream break";

  async function stopEarly(
    items: AsyncIterable<number> | Iterable<number>,
    stop: Stop,
  ): Promise<void> {
    const controller = new AbortController();
    const pipeline = new Pipeline([
      new Stage("s", async (input: number) => {
        await flush();
        if (stop === "fail-fast" && input === 2) throw new Error("item 2 failed");
        if (stop === "abort" && input === 2) controller.abort(new Error("cancelled"));
        return input;
      }),
    ]);
    if (stop === "stream break") {
      for await (const output of pipeline.stream(items, 2, { signal: controller.signal })) {
        if (output === 2) break;
      }
      return;
    }
    await rejectionOf(pipeline.map(items, 2, { signal: controller.signal }));
  }

  const stops: Stop[] = ["fail-fast", "abort", "stream break"];

  it.each(stops)("%s: return() of a hand-written async iterator is called once", async (stop) => {
    const { log, items } = scriptedSource("async", (index) => Promise.resolve(value(index)), null);
    await stopEarly(items, stop);
    await flush();
    expect(log.return).toBe(1);
  });

  it.each(stops)("%s: an async generator's finally runs", async (stop) => {
    const state = { closed: false };
    async function* generate(): AsyncGenerator<number> {
      try {
        for (let index = 0; ; index++) {
          await flush();
          yield index;
        }
      } finally {
        state.closed = true;
      }
    }
    await stopEarly(generate(), stop);
    for (let turn = 0; turn < 5 && !state.closed; turn++) await flush();
    expect(state.closed).toBe(true);
  });

  it.each(stops)("%s: a sync generator's finally runs", async (stop) => {
    const state = { closed: false };
    function* generate(): Generator<number> {
      try {
        for (let index = 0; ; index++) yield index;
      } finally {
        state.closed = true;
      }
    }
    await stopEarly(generate(), stop);
    expect(state.closed).toBe(true);
  });

  it("mapSettled aborted by the caller closes the input", async () => {
    const { log, items } = scriptedSource("async", (index) => Promise.resolve(value(index)), null);
    const controller = new AbortController();
    const pipeline = new Pipeline([new Stage<number, number>("s", () => never<number>())]);
    const settled = observe(pipeline.mapSettled(items, 2, { signal: controller.signal }));
    await flush();
    controller.abort(new Error("cancelled"));
    await flush();
    expect(settled.status).toBe("rejected");
    expect(log.return).toBe(1);
  });

  it("an abort while next() is pending rejects at once and calls return()", async () => {
    const { log, items } = scriptedSource("async", () => never<IteratorResult<number>>(), null);
    const controller = new AbortController();
    const pipeline = new Pipeline([new Stage("s", (input: number) => input)]);
    const map = observe(pipeline.map(items, 2, { signal: controller.signal }));
    await flush();
    const reason = new Error("cancelled");
    controller.abort(reason);
    await flush();
    expect(map.reason).toBe(reason);
    expect(log.return).toBe(1);
  });

  it("does not call return() when the input ends by itself", async () => {
    const { log, items } = scriptedSource(
      "async",
      (index) => Promise.resolve(index < 3 ? value(index) : { done: true, value: undefined }),
      null,
    );
    const pipeline = new Pipeline([new Stage("s", (input: number) => input)]);
    await expect(pipeline.map(items, 2)).resolves.toEqual([0, 1, 2]);
    expect(log.return).toBe(0);
  });

  it.each([
    [
      "throws",
      () => {
        throw new Error("return() failed");
      },
    ],
    ["rejects", () => Promise.reject(new Error("return() failed"))],
    ["returns a non-object", () => 42],
  ])("keeps the batch's own error when return() %s", async (_label, close) => {
    const boom = new Error("item failed");
    const items: AsyncIterable<number> = {
      [Symbol.asyncIterator]: () => ({
        next: () => Promise.resolve(value(1)),
        return: close as () => Promise<IteratorResult<number>>,
      }),
    };
    const pipeline = new Pipeline([
      new Stage("s", (): number => {
        throw boom;
      }),
    ]);
    const error = await rejectionOf(pipeline.map(items, 1));
    expect((error as StageExecutionError).originalError).toBe(boom);
    await flush();
  });

  it("works with an iterator that has no return()", async () => {
    const items: AsyncIterable<number> = {
      [Symbol.asyncIterator]: () => ({ next: () => Promise.resolve(value(1)) }),
    };
    const pipeline = new Pipeline([
      new Stage("s", (): number => {
        throw new Error("item failed");
      }),
    ]);
    expect(await rejectionOf(pipeline.map(items, 1))).toBeInstanceOf(StageExecutionError);
  });
});

// -----------------------------------------------------------------------------------------------
// Faults whose symptom is an unhandled rejection: child processes, strict mode
// -----------------------------------------------------------------------------------------------

describe("faults: no unhandled rejection (child process, --unhandled-rejections=strict)", () => {
  const passing = [
    "late-rejection-after-timeout",
    "late-rejection-after-timeout-with-retries",
    "late-rejection-after-abort",
    "late-rejection-of-a-thenable-after-timeout",
    "late-rejections-after-fail-fast",
    "late-rejections-after-fail-fast-with-hooks",
    "late-rejections-after-stream-break",
    "late-rejection-under-timeout-middleware",
    "late-rejection-of-next-after-abort",
    "rejecting-input-return",
    "rejecting-hooks",
    "rejecting-on-retry",
    "abort-inside-middleware-then-reject",
    "async-next-resolves-to-a-non-object",
  ];

  it("abandoned attempts, failing hooks, callbacks and return() never reject unhandled", async () => {
    const result = await runFixture("unhandled.ts", passing);
    const lines = reports(result.stdout);
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    expect(lines.at(-1)).toEqual({ end: true });
    const outcomes = Object.fromEntries(
      lines
        .filter((line) => "outcome" in line)
        .map((line) => [String(line.scenario), line.outcome] as const),
    );
    expect(outcomes).toEqual({
      "late-rejection-after-timeout": 'rejected Stage "s" failed: Stage "s" timed out after 10 ms',
      "late-rejection-after-timeout-with-retries":
        'rejected Stage "s" failed: Stage "s" timed out after 10 ms',
      "late-rejection-after-abort": "rejected cancelled",
      "late-rejection-of-a-thenable-after-timeout":
        'rejected Stage "s" failed: Stage "s" timed out after 10 ms',
      "late-rejections-after-fail-fast": 'rejected Stage "s" failed: first',
      "late-rejections-after-fail-fast-with-hooks": 'rejected Stage "s" failed: first',
      "late-rejections-after-stream-break": "broke",
      "late-rejection-under-timeout-middleware": 'rejected Stage "s" timed out after 10 ms',
      "late-rejection-of-next-after-abort": "rejected cancelled",
      "rejecting-input-return": 'rejected Stage "s" failed: item failed',
      "rejecting-hooks": "fulfilled [2,3,4]",
      "rejecting-on-retry": "fulfilled 3",
      "abort-inside-middleware-then-reject": "rejected found it",
      "async-next-resolves-to-a-non-object":
        "rejected Iterator result is not an object after 1 calls",
    });
  }, 30_000);

  // Regression: an attempt whose signal had already aborted when its promise came back was
  // abandoned without a rejection handler (an unhandled rejection if it then rejected).
  it.each([
    "abort-inside-handler-then-reject",
    "abort-inside-handler-then-reject-in-map-with-hooks",
  ])(
    "%s: the handler's rejection after the caller's abort is handled",
    async (scenario) => {
      const result = await runFixture("unhandled.ts", [scenario]);
      expect(result.stderr).toBe("");
      expect(result.code).toBe(0);
      expect(reports(result.stdout).find((line) => "outcome" in line)?.outcome).toBe(
        "rejected found it",
      );
    },
    30_000,
  );
});
