import { Writable } from "node:stream";
import { formatWithOptions } from "node:util";
import pino from "pino";
import { afterEach, describe, expect, it, vi } from "vitest";
import winston from "winston";
import {
  Pipeline,
  PipelineError,
  Stage,
  StageExecutionError,
  TimeoutError,
  type Context,
  type Middleware,
  type RetryEvent,
  type StageCall,
} from "../src/index.js";
import {
  loggingMiddleware,
  retryMiddleware,
  timeoutMiddleware,
  timingMiddleware,
  type LogFields,
  type Logger,
  type LoggingOptions,
  type TimingContext,
} from "../src/middlewares/index.js";
import { never, observe, rejectionOf } from "./support/promises.js";
import { abortListeners } from "./support/signals.js";
import { sleep } from "./support/time.js";

/** A logger that records every call. */
function recordingLogger(): Logger & {
  debug: (...args: unknown[]) => void;
  lines: { level: string; args: unknown[] }[];
} {
  const lines: { level: string; args: unknown[] }[] = [];
  const method =
    (level: string) =>
    (...args: unknown[]) => {
      lines.push({ level, args });
    };
  return { lines, info: method("info"), error: method("error"), debug: method("debug") };
}

/** Fakes the timers and `performance.now`, so that durations are exact. */
function fakeClock(): void {
  vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "performance", "Date"] });
}

/** A writable stream that keeps every JSON line written to it, parsed. */
function jsonLines(): { stream: Writable; entries: Record<string, unknown>[] } {
  const entries: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer | string, _encoding, done) {
      for (const line of String(chunk).split("\n")) {
        if (line !== "") entries.push(JSON.parse(line) as Record<string, unknown>);
      }
      done();
    },
  });
  return { stream, entries };
}

/** A one-stage pipeline that fails with `error`, logged by `logger`. */
function failingPipeline(error: unknown, options: LoggingOptions = {}) {
  return new Pipeline(
    [
      new Stage("broken", (): number => {
        throw error;
      }),
    ],
    { middlewares: [loggingMiddleware(options)] },
  );
}

afterEach(() => {
  vi.useRealTimers();
  vi.restoreAllMocks();
});

describe("loggingMiddleware", () => {
  it("logs a start line and a success line, each with its fields object", async () => {
    const logger = recordingLogger();
    const pipeline = new Pipeline([new Stage("double", (value: number) => value * 2)], {
      middlewares: [loggingMiddleware({ logger })],
    });

    await expect(pipeline.run(2)).resolves.toBe(4);
    expect(logger.lines).toHaveLength(2);
    const [start, success] = logger.lines;
    expect(start).toEqual({
      level: "info",
      args: ['stage "double" started', { stageName: "double" }],
    });
    expect(success?.level).toBe("info");
    expect(success?.args[0]).toMatch(/^stage "double" succeeded in \d+\.\d ms$/);
    const fields = success?.args[1] as LogFields;
    expect(Object.keys(fields)).toEqual(["stageName", "durationMs"]);
    expect(fields.stageName).toBe("double");
    expect(success?.args[0]).toContain(`in ${fields.durationMs!.toFixed(1)} ms`);
  });

  it("writes the measured duration with one decimal, in the line and as durationMs", async () => {
    fakeClock();
    const logger = recordingLogger();
    const pipeline = new Pipeline(
      [
        new Stage("wait", async (value: number) => {
          await sleep(50);
          return value;
        }),
      ],
      { middlewares: [loggingMiddleware({ logger })] },
    );

    const run = observe(pipeline.run(1));
    await vi.advanceTimersByTimeAsync(50);
    expect(run.status).toBe("fulfilled");
    expect(logger.lines.map((line) => line.args)).toEqual([
      ['stage "wait" started', { stageName: "wait" }],
      ['stage "wait" succeeded in 50.0 ms', { stageName: "wait", durationMs: 50 }],
    ]);
  });

  it("logs one error line with the error's message, the attempt and the error, and rethrows it", async () => {
    const logger = recordingLogger();
    const pipeline = failingPipeline(new RangeError("nope"), { logger });

    const error = await rejectionOf(pipeline.run(1));
    expect(error).toBeInstanceOf(StageExecutionError);
    expect(logger.lines).toHaveLength(2);
    const failure = logger.lines[1]!;
    expect(failure.level).toBe("error");
    expect(failure.args).toHaveLength(2);
    expect(failure.args[0]).toMatch(/^stage "broken" failed in \d+\.\d ms: RangeError: nope$/);
    expect(failure.args[1]).toEqual({
      stageName: "broken",
      durationMs: expect.any(Number) as number,
      attempt: 1,
      error,
    });
    expect((failure.args[1] as LogFields).error).toBe(error);
  });

  it("reports the stage's last attempt number after its retries", async () => {
    const logger = recordingLogger();
    const pipeline = new Pipeline(
      [
        new Stage(
          "flaky",
          (_value: number, _context: Context, call: StageCall): number => {
            throw new Error(`attempt ${String(call.attempt)}`);
          },
          { retries: 2 },
        ),
      ],
      { middlewares: [loggingMiddleware({ logger })] },
    );

    await rejectionOf(pipeline.run(1));
    const failure = logger.lines[1]!;
    expect(failure.args[0]).toMatch(/: Error: attempt 3$/);
    expect((failure.args[1] as LogFields).attempt).toBe(3);
  });

  it("logs a middleware's own error without an attempt, which no middleware can know", async () => {
    const logger = recordingLogger();
    const pipeline = new Pipeline([new Stage("hang", () => never<number>())], {
      middlewares: [loggingMiddleware({ logger }), timeoutMiddleware({ timeout: 10 })],
    });

    const error = await rejectionOf(pipeline.run(1));
    expect(error).toBeInstanceOf(TimeoutError);
    const failure = logger.lines[1]!;
    expect(failure.args[0]).toMatch(
      /^stage "hang" failed in \d+\.\d ms: TimeoutError: Stage "hang" timed out after 10 ms$/,
    );
    expect(Object.keys(failure.args[1] as LogFields)).toEqual(["stageName", "durationMs", "error"]);
  });

  it("describes whatever was thrown in the line, and never fails describing it", async () => {
    const described = async (thrown: unknown): Promise<string> => {
      const logger = recordingLogger();
      await rejectionOf(failingPipeline(thrown, { logger }).run(1));
      return String(logger.lines[1]!.args[0]).replace(/^.* ms: /, "");
    };
    expect(await described("a plain string")).toBe("a plain string");
    expect(await described(42)).toBe("42");
    expect(await described(new TypeError(""))).toBe("TypeError");
    const unprintable = {
      toString(): string {
        throw new Error("no string for you");
      },
    };
    expect(await described(unprintable)).toBe("(an error that cannot be described)");
    const hostile = new Error("x");
    Object.defineProperty(hostile, "message", {
      get(): string {
        throw new Error("no message either");
      },
    });
    expect(await described(hostile)).toBe("(an error that cannot be described)");
  });

  it("logs no value by default", async () => {
    const logger = recordingLogger();
    const pipeline = new Pipeline([new Stage("secret", (token: string) => token.length)], {
      middlewares: [loggingMiddleware({ logger })],
    });

    await pipeline.run("hunter2");
    await rejectionOf(failingPipeline("x", { logger }).run(1));
    for (const line of logger.lines) {
      expect(line.args[1]).not.toHaveProperty("value");
      expect(line.args[1]).not.toHaveProperty("output");
      expect(JSON.stringify(line.args)).not.toContain("hunter2");
    }
  });

  it("includeValue: the input on the start and failure lines, the output on the success line", async () => {
    const logger = recordingLogger();
    const pipeline = new Pipeline(
      [
        new Stage("parse", (line: string) => JSON.parse(line) as { n: number }),
        new Stage("read", (record: { n: number }) => record.n),
      ],
      { middlewares: [loggingMiddleware({ logger, includeValue: true })] },
    );

    await pipeline.run('{"n":1}');
    const fields = logger.lines.map((line) => line.args[1] as LogFields);
    expect(fields[0]).toEqual({ stageName: "parse", value: '{"n":1}' });
    expect(fields[1]).toMatchObject({ stageName: "parse", output: { n: 1 } });
    expect(fields[1]).not.toHaveProperty("value");
    expect(fields[2]).toEqual({ stageName: "read", value: { n: 1 } });
    expect(fields[3]).toMatchObject({ stageName: "read", output: 1 });

    await rejectionOf(pipeline.run("not json"));
    expect(logger.lines.at(-1)?.args[1]).toMatchObject({ stageName: "parse", value: "not json" });
  });

  it("level: the start and success lines go to that method, failures still to error", async () => {
    const logger = recordingLogger();
    const ok = new Pipeline([new Stage("quiet", (value: number) => value)], {
      middlewares: [loggingMiddleware({ logger, level: "debug" })],
    });
    await ok.run(1);
    await rejectionOf(failingPipeline("x", { logger, level: "debug" }).run(1));
    expect(logger.lines.map((line) => line.level)).toEqual(["debug", "debug", "debug", "error"]);
  });

  it("order: fields-first calls (fields, message) and puts the error under err", async () => {
    const logger = recordingLogger();
    const pipeline = failingPipeline(new Error("nope"), { logger, order: "fields-first" });

    const error = await rejectionOf(pipeline.run(1));
    expect(logger.lines[0]?.args).toEqual([{ stageName: "broken" }, 'stage "broken" started']);
    const [fields, message] = logger.lines[1]!.args as [LogFields, string];
    expect(message).toMatch(/^stage "broken" failed in \d+\.\d ms: Error: nope$/);
    expect(fields.err).toBe(error);
    expect(fields).not.toHaveProperty("error");
  });

  it("looks each method up when it writes, so a spy installed later sees the lines", async () => {
    const logger = recordingLogger();
    const middleware = loggingMiddleware({ logger });
    const pipeline = new Pipeline([new Stage("s", (value: number) => value)], {
      middlewares: [middleware],
    });
    const spy = vi.spyOn(logger, "info");

    await pipeline.run(1);
    expect(spy).toHaveBeenCalledTimes(2);
  });

  it("logs each stage of a pipeline under its own name", async () => {
    const logger = recordingLogger();
    const pipeline = new Pipeline(
      [
        new Stage("parse", (line: string) => Number(line)),
        new Stage("inc", async (n: number) => n + 1),
      ],
      { middlewares: [loggingMiddleware({ logger })] },
    );

    await expect(pipeline.run("1")).resolves.toBe(2);
    const messages = logger.lines.map((line) => line.args[0] as string);
    expect(messages).toHaveLength(4);
    expect(messages[0]).toBe('stage "parse" started');
    expect(messages[1]).toMatch(/^stage "parse" succeeded in .* ms$/);
    expect(messages[2]).toBe('stage "inc" started');
    expect(messages[3]).toMatch(/^stage "inc" succeeded in .* ms$/);
    expect(logger.lines.map((line) => (line.args[1] as LogFields).stageName)).toEqual([
      "parse",
      "parse",
      "inc",
      "inc",
    ]);
  });

  it("does not change the outcome when the logger throws", async () => {
    const throwing: Logger = {
      info: () => {
        throw new Error("logger info broke");
      },
      error: () => {
        throw new Error("logger error broke");
      },
    };
    const ok = new Pipeline([new Stage("ok", (value: number) => value + 1)], {
      middlewares: [loggingMiddleware({ logger: throwing })],
    });
    await expect(ok.run(1)).resolves.toBe(2);

    const original = new Error("stage failure");
    const error = (await rejectionOf(
      failingPipeline(original, { logger: throwing }).run(1),
    )) as StageExecutionError;
    expect(error).toBeInstanceOf(StageExecutionError);
    expect(error.originalError).toBe(original);
  });

  // Regression: an async logger's rejection used to be left unhandled (which terminates a Node
  // process by default). This test hands the middleware a rejecting thenable and checks that the
  // rejection is observed (subscribed to); a real rejected promise would be unhandled.
  it("handles a rejection from an async logger instead of leaving it unhandled", async () => {
    const subscribed: string[] = [];
    const rejecting = (level: string): PromiseLike<never> => ({
      then<R1, R2>(
        _onFulfilled?: ((value: never) => R1 | PromiseLike<R1>) | null,
        onRejected?: ((reason: unknown) => R2 | PromiseLike<R2>) | null,
      ): PromiseLike<R1 | R2> {
        subscribed.push(level);
        if (onRejected) void onRejected(new Error(`${level} failed`));
        return never();
      },
    });
    const logger: Logger = { info: () => rejecting("info"), error: () => rejecting("error") };
    const pipeline = new Pipeline([new Stage("s", (value: number) => value)], {
      middlewares: [loggingMiddleware({ logger })],
    });

    await expect(pipeline.run(1)).resolves.toBe(1);
    expect(subscribed).toEqual(["info", "info"]);
  });

  it("logs to console by default: (message, fields), the error inside the fields", async () => {
    const info = vi.spyOn(console, "info").mockImplementation(() => {});
    const error = vi.spyOn(console, "error").mockImplementation(() => {});
    const pipeline = new Pipeline([new Stage("viaConsole", (value: number) => value)], {
      middlewares: [loggingMiddleware()],
    });

    await pipeline.run(1);
    expect(info).toHaveBeenCalledTimes(2);
    expect(info.mock.calls[0]).toEqual(['stage "viaConsole" started', { stageName: "viaConsole" }]);
    expect(String(info.mock.calls[1]?.[0])).toMatch(/stage "viaConsole" succeeded in .* ms/);
    expect(info.mock.calls[1]?.[1]).toMatchObject({ stageName: "viaConsole" });
    expect(error).not.toHaveBeenCalled();

    const thrown = await rejectionOf(failingPipeline(new Error("x"), {}).run(1));
    expect(error).toHaveBeenCalledTimes(1);
    expect(String(error.mock.calls[0]?.[0])).toMatch(/stage "broken" failed in .* ms: Error: x/);
    expect(error.mock.calls[0]?.[1]).toMatchObject({ stageName: "broken", attempt: 1 });
    expect((error.mock.calls[0]?.[1] as LogFields).error).toBe(thrown);
  });

  it("console with level debug: console.debug, and console prints the fields", async () => {
    const printed: string[] = [];
    const debug = vi.spyOn(console, "debug").mockImplementation((...args: unknown[]) => {
      printed.push(formatWithOptions({ colors: false }, ...args));
    });
    const pipeline = new Pipeline([new Stage("double", (value: number) => value * 2)], {
      middlewares: [loggingMiddleware({ logger: console, level: "debug", includeValue: true })],
    });

    await pipeline.run(21);
    expect(debug).toHaveBeenCalledTimes(2);
    expect(printed[0]).toBe(`stage "double" started { stageName: 'double', value: 21 }`);
    expect(printed[1]).toMatch(
      /^stage "double" succeeded in \d+\.\d ms \{ stageName: 'double', durationMs: [\d.]+, output: 42 \}$/,
    );
  });

  it("pino: detected, called (fields, message); its JSON has the fields, msg and a serialized err", async () => {
    const { stream, entries } = jsonLines();
    const logger = pino({ level: "debug", base: null, timestamp: false }, stream);
    const child = logger.child({ job: "nightly" });
    const ok = new Pipeline([new Stage("double", (value: number) => value * 2)], {
      middlewares: [loggingMiddleware({ logger: child, level: "debug", includeValue: true })],
    });

    await ok.run(21);
    expect(entries[0]).toEqual({
      level: 20,
      job: "nightly",
      stageName: "double",
      value: 21,
      msg: 'stage "double" started',
    });
    expect(entries[1]).toMatchObject({ level: 20, stageName: "double", output: 42 });
    expect(entries[1]?.durationMs).toEqual(expect.any(Number));
    expect(entries[1]?.msg).toMatch(/^stage "double" succeeded in \d+\.\d ms$/);

    await rejectionOf(failingPipeline(new RangeError("nope"), { logger }).run(1));
    const failure = entries.at(-1)!;
    expect(failure).toMatchObject({ level: 50, stageName: "broken", attempt: 1 });
    expect(failure.msg).toMatch(/^stage "broken" failed in \d+\.\d ms: RangeError: nope$/);
    const err = failure.err as Record<string, unknown>;
    expect(err.type).toBe("StageExecutionError");
    // pino's serializer appends the messages of the error's cause chain.
    expect(err.message).toMatch(/^Stage "broken" failed: nope/);
    expect(err.stack).toContain("StageExecutionError");
    expect(failure).not.toHaveProperty("error");
  });

  it("pino with order message-first: the fields are lost, which is why pino is detected", async () => {
    const { stream, entries } = jsonLines();
    const logger = pino({ base: null, timestamp: false }, stream);
    const pipeline = new Pipeline([new Stage("s", (value: number) => value)], {
      middlewares: [loggingMiddleware({ logger, order: "message-first" })],
    });

    await pipeline.run(1);
    expect(entries[0]).toEqual({ level: 30, msg: 'stage "s" started' });
  });

  it("winston: the fields merge into its entry, and the line carries the error's message", async () => {
    const { stream, entries } = jsonLines();
    // The documented format that copies a nested error's stack into the entry.
    const errorStack = winston.format((info) => {
      if (info.error instanceof Error) info.stack = info.error.stack;
      return info;
    });
    const logger = winston.createLogger({
      level: "verbose",
      format: winston.format.combine(errorStack(), winston.format.json()),
      // winston's types declare this transport as an interface over its TransportStream class.
      // eslint-disable-next-line @typescript-eslint/no-unsafe-class-instance-assignment
      transports: [new winston.transports.Stream({ stream })],
    });
    const ok = new Pipeline([new Stage("double", (value: number) => value * 2)], {
      middlewares: [loggingMiddleware({ logger, level: "verbose" })],
    });

    await ok.run(2);
    await rejectionOf(failingPipeline(new RangeError("nope"), { logger }).run(1));
    await vi.waitFor(() => {
      expect(entries).toHaveLength(4);
    });
    expect(entries[0]).toEqual({
      level: "verbose",
      message: 'stage "double" started',
      stageName: "double",
    });
    expect(entries[1]).toMatchObject({ level: "verbose", stageName: "double" });
    expect(entries[1]?.durationMs).toEqual(expect.any(Number));
    const failure = entries[3]!;
    expect(failure).toMatchObject({ level: "error", stageName: "broken", attempt: 1 });
    expect(failure.message).toMatch(/^stage "broken" failed in \d+\.\d ms: RangeError: nope$/);
    expect(failure.stack).toMatch(/^StageExecutionError: Stage "broken" failed: nope\n/);
  });

  it("throws TypeError or RangeError for bad options, naming the option", () => {
    expect(() => loggingMiddleware({ logger: {} as Logger })).toThrow(TypeError);
    expect(() => loggingMiddleware({ logger: { info: () => {} } as unknown as Logger })).toThrow(
      /logger/,
    );
    expect(() =>
      loggingMiddleware({ logger: { info: "x", error: () => {} } as unknown as Logger }),
    ).toThrow(TypeError);
    // @ts-expect-error -- checked at run time too
    expect(() => loggingMiddleware(null)).toThrow(TypeError);
    // @ts-expect-error -- checked at run time too
    expect(() => loggingMiddleware("console")).toThrow(TypeError);
    expect(() => loggingMiddleware({ logger: recordingLogger(), level: "verbose" })).toThrow(
      new TypeError('level must name a method of the logger, got "verbose"'),
    );
    // @ts-expect-error -- checked at run time too
    expect(() => loggingMiddleware({ level: 2 })).toThrow(
      new TypeError("level must be a string, got 2"),
    );
    // @ts-expect-error -- checked at run time too
    expect(() => loggingMiddleware({ includeValue: "yes" })).toThrow(
      new TypeError('includeValue must be a boolean, got "yes"'),
    );
    // @ts-expect-error -- checked at run time too
    expect(() => loggingMiddleware({ order: "pino" })).toThrow(
      new RangeError('order must be "message-first" or "fields-first", got "pino"'),
    );
    expect(() => loggingMiddleware({ includeValues: true } as LoggingOptions)).toThrow(
      new TypeError('unknown option "includeValues" (did you mean "includeValue"?)'),
    );
    expect(() =>
      loggingMiddleware({ logger: console, level: "warn", includeValue: false, order: undefined }),
    ).not.toThrow();
  });
});

describe("timingMiddleware", () => {
  it("pushes one duration per stage run onto context.timings[stageName]", async () => {
    const pipeline = new Pipeline(
      [
        new Stage("a", (value: number) => value + 1),
        new Stage("b", async (value: number) => value * 2),
      ],
      { middlewares: [timingMiddleware()] },
    );
    const context: TimingContext = {};

    await expect(pipeline.run(1, { context })).resolves.toBe(4);
    expect(Object.keys(context.timings ?? {})).toEqual(["a", "b"]);
    expect(context.timings?.a).toHaveLength(1);
    expect(context.timings?.b).toHaveLength(1);
    for (const duration of [...context.timings!.a!, ...context.timings!.b!]) {
      expect(typeof duration).toBe("number");
      expect(duration).toBeGreaterThanOrEqual(0);
      expect(Number.isFinite(duration)).toBe(true);
    }

    await pipeline.run(5, { context });
    expect(context.timings?.a).toHaveLength(2);
    expect(context.timings?.b).toHaveLength(2);
  });

  it("records the duration measured with performance.now (fake timers: exactly 50 ms)", async () => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "performance"] });
    const pipeline = new Pipeline(
      [
        new Stage("wait", async (value: number) => {
          await sleep(50);
          return value;
        }),
        new Stage("instant", (value: number) => value),
      ],
      { middlewares: [timingMiddleware()] },
    );
    const context: TimingContext = {};

    const run = observe(pipeline.run(1, { context }));
    await vi.advanceTimersByTimeAsync(50);
    expect(run.status).toBe("fulfilled");
    expect(context.timings).toEqual({ wait: [50], instant: [0] });
  });

  it("records a failed stage too, and the failure reaches the caller unchanged", async () => {
    const original = new Error("fail");
    const pipeline = new Pipeline(
      [
        new Stage("bad", async (): Promise<number> => {
          throw original;
        }),
      ],
      { middlewares: [timingMiddleware()] },
    );
    const context: TimingContext = {};

    const error = (await rejectionOf(pipeline.run(1, { context }))) as StageExecutionError;
    expect(error).toBeInstanceOf(StageExecutionError);
    expect(error.originalError).toBe(original);
    expect(context.timings?.bad).toHaveLength(1);
  });

  it("keeps existing entries and other stages' arrays in context.timings", async () => {
    const pipeline = new Pipeline([new Stage("s", (value: number) => value)], {
      middlewares: [timingMiddleware()],
    });
    const context: TimingContext = { timings: { s: [7], other: [1, 2] } };

    await pipeline.run(1, { context });
    expect(context.timings?.s).toHaveLength(2);
    expect(context.timings?.s?.[0]).toBe(7);
    expect(context.timings?.other).toEqual([1, 2]);
  });

  it("leaves a frozen context alone without failing", async () => {
    const pipeline = new Pipeline([new Stage("s", (value: number) => value * 2)], {
      middlewares: [timingMiddleware()],
    });
    const context = Object.freeze({});

    await expect(pipeline.run(4, { context })).resolves.toBe(8);
    expect(context).toEqual({});
    expect(Object.keys(context)).toEqual([]);
  });

  it("leaves a context whose timings is a string alone without failing", async () => {
    const pipeline = new Pipeline([new Stage("s", (value: number) => value * 2)], {
      middlewares: [timingMiddleware()],
    });
    const context = { timings: "not a record" };

    await expect(pipeline.run(4, { context })).resolves.toBe(8);
    expect(context).toEqual({ timings: "not a record" });
  });

  it("leaves a frozen timings record, a null timings, or a non-array entry alone", async () => {
    const pipeline = new Pipeline([new Stage("s", (value: number) => value)], {
      middlewares: [timingMiddleware()],
    });
    const frozenRecord = { timings: Object.freeze({}) };
    const nullTimings = { timings: null };
    const notArray = { timings: { s: "x" } };

    await expect(pipeline.run(1, { context: frozenRecord })).resolves.toBe(1);
    await expect(pipeline.run(1, { context: nullTimings })).resolves.toBe(1);
    await expect(pipeline.run(1, { context: notArray })).resolves.toBe(1);
    expect(frozenRecord.timings).toEqual({});
    expect(nullTimings.timings).toBeNull();
    expect(notArray.timings).toEqual({ s: "x" });
  });

  it("does not change the outcome when writing to the context throws", async () => {
    const pipeline = new Pipeline([new Stage("s", (value: number) => value)], {
      middlewares: [timingMiddleware()],
    });
    const context = {
      get timings(): never {
        throw new Error("getter");
      },
    };

    await expect(pipeline.run(1, { context })).resolves.toBe(1);
  });

  // Regression: plain assignment of `timings["__proto__"]` used to hit the __proto__ setter, so
  // the array became the record's prototype instead of an own entry.
  it('keeps the durations of a stage named "__proto__" as an own entry', async () => {
    const pipeline = new Pipeline([new Stage("__proto__", (value: number) => value)], {
      middlewares: [timingMiddleware()],
    });
    const context: TimingContext = {};

    await pipeline.run(1, { context });
    await pipeline.run(2, { context });
    expect(Object.hasOwn(context.timings!, "__proto__")).toBe(true);
    expect(context.timings!.__proto__).toHaveLength(2);
  });

  it("keeps the durations of stages named like Object.prototype members", async () => {
    const pipeline = new Pipeline(
      [new Stage("constructor", (value: number) => value), new Stage("toString", (v: number) => v)],
      { middlewares: [timingMiddleware()] },
    );
    const context: TimingContext = {};

    await pipeline.run(1, { context });
    await pipeline.run(2, { context });
    const names: string[] = ["constructor", "toString"];
    for (const name of names) {
      expect(Object.hasOwn(context.timings!, name)).toBe(true);
      expect(context.timings?.[name]).toHaveLength(2);
    }
  });
});

describe("retryMiddleware", () => {
  it("retries the inner chain: the handler runs 1 + retries times, then the stage's error is rethrown as is", async () => {
    const handler = vi.fn(async (): Promise<number> => {
      throw new Error(`attempt ${String(handler.mock.calls.length)}`);
    });
    const innerErrors: unknown[] = [];
    const inner: Middleware = async (next, _name, value) => {
      try {
        return await next(value);
      } catch (error) {
        innerErrors.push(error);
        throw error;
      }
    };
    const pipeline = new Pipeline([new Stage("flaky", handler)], {
      middlewares: [retryMiddleware({ retries: 3 }), inner],
    });

    const error = (await rejectionOf(pipeline.run(1))) as StageExecutionError;
    expect(handler).toHaveBeenCalledTimes(4);
    expect(innerErrors).toHaveLength(4);
    expect(error).toBe(innerErrors[3]);
    expect(error).toBeInstanceOf(StageExecutionError);
    expect(error.stageName).toBe("flaky");
    expect(error.attempts).toBe(1);
    expect((error.originalError as Error).message).toBe("attempt 4");
  });

  it("resolves with the first successful run", async () => {
    let calls = 0;
    const pipeline = new Pipeline(
      [
        new Stage("flaky", (value: number) => {
          calls++;
          if (calls < 3) throw new Error("not yet");
          return value * 10;
        }),
      ],
      { middlewares: [retryMiddleware({ retries: 5 })] },
    );

    await expect(pipeline.run(4)).resolves.toBe(40);
    expect(calls).toBe(3);
  });

  it("does not retry by default (retries: 0)", async () => {
    const handler = vi.fn((): number => {
      throw new Error("once");
    });
    const pipeline = new Pipeline([new Stage("s", handler)], {
      middlewares: [retryMiddleware()],
    });

    await expect(pipeline.run(1)).rejects.toBeInstanceOf(StageExecutionError);
    expect(handler).toHaveBeenCalledTimes(1);
  });

  it("retries a middleware's own error, rethrowing the last one unwrapped", async () => {
    let count = 0;
    const thrower: Middleware = () => {
      count++;
      throw new RangeError(`mw ${String(count)}`);
    };
    const pipeline = new Pipeline([new Stage("s", (value: number) => value)], {
      middlewares: [retryMiddleware({ retries: 2 }), thrower],
    });

    const error = await rejectionOf(pipeline.run(1));
    expect(error).toBeInstanceOf(RangeError);
    expect((error as Error).message).toBe("mw 3");
  });

  it("waits a fixed delay between runs", async () => {
    vi.useFakeTimers();
    const handler = vi.fn((): number => {
      throw new Error("fail");
    });
    const pipeline = new Pipeline([new Stage("s", handler)], {
      middlewares: [retryMiddleware({ retries: 2, retryDelay: 100 })],
    });

    const run = observe(pipeline.run(1));
    await vi.advanceTimersByTimeAsync(0);
    expect(handler).toHaveBeenCalledTimes(1);
    await vi.advanceTimersByTimeAsync(99);
    expect(handler).toHaveBeenCalledTimes(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(handler).toHaveBeenCalledTimes(2);
    await vi.advanceTimersByTimeAsync(99);
    expect(handler).toHaveBeenCalledTimes(2);
    await vi.advanceTimersByTimeAsync(1);
    expect(handler).toHaveBeenCalledTimes(3);
    expect(run.status).toBe("rejected");
    expect(run.reason).toBeInstanceOf(StageExecutionError);
    expect(vi.getTimerCount()).toBe(0);
  });

  it("doubles the delay with exponential backoff and caps it at maxRetryDelay", async () => {
    vi.useFakeTimers();
    const callTimes: number[] = [];
    const delays: number[] = [];
    const pipeline = new Pipeline(
      [
        new Stage("s", (): number => {
          callTimes.push(Date.now());
          throw new Error("fail");
        }),
      ],
      {
        middlewares: [
          retryMiddleware({
            retries: 5,
            retryDelay: 100,
            backoff: "exponential",
            maxRetryDelay: 500,
            onRetry: ({ delay }) => delays.push(delay),
          }),
        ],
      },
    );

    const start = Date.now();
    const run = observe(pipeline.run(1));
    await vi.advanceTimersByTimeAsync(10_000);
    expect(run.status).toBe("rejected");
    expect(delays).toEqual([100, 200, 400, 500, 500]);
    expect(callTimes.map((time) => time - start)).toEqual([0, 100, 300, 700, 1200, 1700]);
  });

  it("exponential backoff without a cap: d, 2d, 4d", async () => {
    vi.useFakeTimers();
    const callTimes: number[] = [];
    const pipeline = new Pipeline(
      [
        new Stage("s", (): number => {
          callTimes.push(Date.now());
          throw new Error("fail");
        }),
      ],
      { middlewares: [retryMiddleware({ retries: 3, retryDelay: 50, backoff: "exponential" })] },
    );

    const start = Date.now();
    const run = observe(pipeline.run(1));
    await vi.advanceTimersByTimeAsync(349);
    expect(callTimes.map((time) => time - start)).toEqual([0, 50, 150]);
    await vi.advanceTimersByTimeAsync(1);
    expect(callTimes.map((time) => time - start)).toEqual([0, 50, 150, 350]);
    expect(run.status).toBe("rejected");
  });

  it("caps a fixed delay at maxRetryDelay", async () => {
    vi.useFakeTimers();
    const delays: number[] = [];
    const pipeline = new Pipeline(
      [
        new Stage("s", (): number => {
          throw new Error("fail");
        }),
      ],
      {
        middlewares: [
          retryMiddleware({
            retries: 1,
            retryDelay: 1_000,
            maxRetryDelay: 10,
            onRetry: (e) => delays.push(e.delay),
          }),
        ],
      },
    );

    const run = observe(pipeline.run(1));
    await vi.advanceTimersByTimeAsync(10);
    expect(run.status).toBe("rejected");
    expect(delays).toEqual([10]);
  });

  it("draws a jittered delay from [0, capped delay]", async () => {
    vi.useFakeTimers();
    vi.spyOn(Math, "random").mockReturnValue(0.25);
    const delays: number[] = [];
    const handler = vi.fn((): number => {
      throw new Error("fail");
    });
    const pipeline = new Pipeline([new Stage("s", handler)], {
      middlewares: [
        retryMiddleware({
          retries: 1,
          retryDelay: 400,
          jitter: true,
          onRetry: (e) => delays.push(e.delay),
        }),
      ],
    });

    const run = observe(pipeline.run(1));
    await vi.advanceTimersByTimeAsync(99);
    expect(handler).toHaveBeenCalledTimes(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(handler).toHaveBeenCalledTimes(2);
    expect(delays).toEqual([100]);
    expect(run.status).toBe("rejected");
  });

  it("stops when shouldRetry returns false, rethrowing that run's error", async () => {
    const handler = vi.fn((): number => {
      throw new Error("fatal");
    });
    const shouldRetry = vi.fn(() => false);
    const pipeline = new Pipeline([new Stage("s", handler)], {
      middlewares: [retryMiddleware({ retries: 5, shouldRetry })],
    });

    const error = (await rejectionOf(pipeline.run(1))) as StageExecutionError;
    expect(handler).toHaveBeenCalledTimes(1);
    expect(shouldRetry).toHaveBeenCalledTimes(1);
    expect(shouldRetry).toHaveBeenCalledWith(error, 1);
    expect(error).toBeInstanceOf(StageExecutionError);
  });

  it("awaits an async shouldRetry, and a throwing shouldRetry stops", async () => {
    const handler = vi.fn((): number => {
      throw new Error("fail");
    });
    const verdicts = [true, true, false];
    const pipeline = new Pipeline([new Stage("s", handler)], {
      middlewares: [
        retryMiddleware({ retries: 10, shouldRetry: async () => verdicts.shift() ?? true }),
      ],
    });
    await expect(pipeline.run(1)).rejects.toBeInstanceOf(StageExecutionError);
    expect(handler).toHaveBeenCalledTimes(3);

    const second = vi.fn((): number => {
      throw new Error("fail");
    });
    const throwing = new Pipeline([new Stage("s", second)], {
      middlewares: [
        retryMiddleware({
          retries: 10,
          shouldRetry: () => {
            throw new Error("predicate broke");
          },
        }),
      ],
    });
    const error = await rejectionOf(throwing.run(1));
    expect(error).toBeInstanceOf(StageExecutionError);
    expect(second).toHaveBeenCalledTimes(1);
  });

  it("tells onRetry a frozen { stageName, error, attempt, delay } before each wait", async () => {
    vi.useFakeTimers();
    const events: RetryEvent[] = [];
    const callsAtRetry: number[] = [];
    const errors: unknown[] = [];
    const inner: Middleware = async (next, _name, value) => {
      try {
        return await next(value);
      } catch (error) {
        errors.push(error);
        throw error;
      }
    };
    const handler = vi.fn((): number => {
      throw new Error("fail");
    });
    const pipeline = new Pipeline([new Stage("fetch", handler)], {
      middlewares: [
        retryMiddleware({
          retries: 2,
          retryDelay: 30,
          onRetry: (event) => {
            events.push(event);
            // called before the wait: the next run has not started yet
            callsAtRetry.push(handler.mock.calls.length);
          },
        }),
        inner,
      ],
    });

    const run = observe(pipeline.run(1));
    await vi.advanceTimersByTimeAsync(60);
    expect(run.status).toBe("rejected");
    expect(events).toHaveLength(2);
    expect(events[0]).toEqual({ stageName: "fetch", error: errors[0], attempt: 1, delay: 30 });
    expect(events[1]).toEqual({ stageName: "fetch", error: errors[1], attempt: 2, delay: 30 });
    expect(events[0]?.error).toBe(errors[0]);
    for (const event of events) expect(Object.isFrozen(event)).toBe(true);
    expect(callsAtRetry).toEqual([1, 2]);
  });

  it("ignores an onRetry that throws or rejects", async () => {
    let calls = 0;
    const pipeline = new Pipeline(
      [
        new Stage("s", (value: number) => {
          calls++;
          if (calls < 3) throw new Error("again");
          return value;
        }),
      ],
      {
        middlewares: [
          retryMiddleware({
            retries: 3,
            onRetry: ({ attempt }) => {
              if (attempt === 1) throw new Error("sync");
              return Promise.reject(new Error("async"));
            },
          }),
        ],
      },
    );

    await expect(pipeline.run(7)).resolves.toBe(7);
    expect(calls).toBe(3);
  });

  it("does not retry after the caller aborts: rejects with the reason, no further run", async () => {
    vi.useFakeTimers();
    const controller = new AbortController();
    const reason = new Error("cancelled");
    const handler = vi.fn((): Promise<number> => never());
    const onRetry = vi.fn();
    const pipeline = new Pipeline([new Stage("s", handler)], {
      middlewares: [retryMiddleware({ retries: 5, retryDelay: 10, onRetry })],
    });

    const run = observe(pipeline.run(1, { signal: controller.signal }));
    await vi.advanceTimersByTimeAsync(0);
    controller.abort(reason);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(run.status).toBe("rejected");
    expect(run.reason).toBe(reason);
    expect(handler).toHaveBeenCalledTimes(1);
    expect(onRetry).not.toHaveBeenCalled();
    expect(vi.getTimerCount()).toBe(0);
    expect(abortListeners(controller.signal)).toBe(0);
  });

  it("cuts a retry wait short when the caller aborts, and leaves no timer", async () => {
    vi.useFakeTimers();
    const controller = new AbortController();
    const reason = new Error("cancelled during wait");
    const handler = vi.fn((): number => {
      throw new Error("fail");
    });
    const pipeline = new Pipeline([new Stage("s", handler)], {
      middlewares: [retryMiddleware({ retries: 5, retryDelay: 10_000 })],
    });

    const run = observe(pipeline.run(1, { signal: controller.signal }));
    await vi.advanceTimersByTimeAsync(100);
    expect(handler).toHaveBeenCalledTimes(1);
    expect(vi.getTimerCount()).toBe(1);
    controller.abort(reason);
    await vi.advanceTimersByTimeAsync(0);
    expect(run.status).toBe("rejected");
    expect(run.reason).toBe(reason);
    expect(vi.getTimerCount()).toBe(0);
    await vi.advanceTimersByTimeAsync(20_000);
    expect(handler).toHaveBeenCalledTimes(1);
    expect(abortListeners(controller.signal)).toBe(0);
  });

  it("validates its options with messages that use the stage's names (retryDelay, maxRetryDelay)", () => {
    expect(() => retryMiddleware({ retryDelay: -1 })).toThrow(RangeError);
    expect(() => retryMiddleware({ retryDelay: -1 })).toThrow(
      /^retryDelay must be greater than or equal to 0/,
    );
    expect(() => retryMiddleware({ retryDelay: Number.NaN })).toThrow(/^retryDelay /);
    expect(() => retryMiddleware({ retryDelay: Infinity })).toThrow(/^retryDelay /);
    expect(() => retryMiddleware({ retryDelay: "100" as unknown as number })).toThrow(TypeError);
    expect(() => retryMiddleware({ maxRetryDelay: -5 })).toThrow(RangeError);
    expect(() => retryMiddleware({ maxRetryDelay: -5 })).toThrow(
      /^maxRetryDelay must be greater than or equal to 0/,
    );
    expect(() => retryMiddleware({ retries: -1 })).toThrow(RangeError);
    expect(() => retryMiddleware({ retries: 1.5 })).toThrow(/^retries /);
    expect(() => retryMiddleware({ retries: Number.NaN })).toThrow(RangeError);
    // @ts-expect-error -- checked at run time too
    expect(() => retryMiddleware({ backoff: "linear" })).toThrow(/^backoff /);
    // @ts-expect-error -- checked at run time too
    expect(() => retryMiddleware({ jitter: "yes" })).toThrow(TypeError);
    // @ts-expect-error -- checked at run time too
    expect(() => retryMiddleware({ shouldRetry: true })).toThrow(/shouldRetry/);
    // @ts-expect-error -- checked at run time too
    expect(() => retryMiddleware({ onRetry: 1 })).toThrow(/onRetry/);
    // @ts-expect-error -- checked at run time too
    expect(() => retryMiddleware(null)).toThrow(TypeError);
  });

  /* eslint-disable @typescript-eslint/no-deprecated -- the deprecated aliases are under test */
  it("still takes the deprecated delay and maxDelay, with the same meaning as the stage's names", async () => {
    vi.useFakeTimers();
    const waits = async (options: Parameters<typeof retryMiddleware>[0]): Promise<number[]> => {
      const delays: number[] = [];
      const pipeline = new Pipeline(
        [
          new Stage("s", (): number => {
            throw new Error("down");
          }),
        ],
        {
          middlewares: [
            retryMiddleware({
              ...options,
              retries: 3,
              backoff: "exponential",
              onRetry: ({ delay }) => delays.push(delay),
            }),
          ],
        },
      );
      const outcome = rejectionOf(pipeline.run(1));
      await vi.runAllTimersAsync();
      await outcome;
      return delays;
    };
    const byNewNames = await waits({ retryDelay: 100, maxRetryDelay: 250 });
    expect(byNewNames).toEqual([100, 200, 250]);
    expect(await waits({ delay: 100, maxDelay: 250 })).toEqual(byNewNames);
    expect(await waits({ delay: 100, maxRetryDelay: 250 })).toEqual(byNewNames);
  });

  it("names the deprecated alias in its messages when that is the name given", () => {
    expect(() => retryMiddleware({ delay: -1 })).toThrow(
      new RangeError("delay must be greater than or equal to 0, got -1"),
    );
    expect(() => retryMiddleware({ maxDelay: Number.NaN })).toThrow(
      new RangeError("maxDelay must be a number, got NaN"),
    );
  });

  it("rejects an option given under both its name and its deprecated alias", () => {
    expect(() => retryMiddleware({ retryDelay: 10, delay: 10 })).toThrow(
      new TypeError("give retryDelay or its deprecated alias delay, not both"),
    );
    expect(() => retryMiddleware({ maxRetryDelay: 10, maxDelay: 20 })).toThrow(
      new TypeError("give maxRetryDelay or its deprecated alias maxDelay, not both"),
    );
  });
  /* eslint-enable @typescript-eslint/no-deprecated */
});

describe("timeoutMiddleware", () => {
  it("rejects with a TimeoutError, not wrapped, after `timeout` ms of a hung handler", async () => {
    vi.useFakeTimers();
    const pipeline = new Pipeline([new Stage("hang", (): Promise<number> => never())], {
      middlewares: [timeoutMiddleware({ timeout: 100 })],
    });

    const run = observe(pipeline.run(1));
    await vi.advanceTimersByTimeAsync(99);
    expect(run.status).toBe("pending");
    await vi.advanceTimersByTimeAsync(1);
    expect(run.status).toBe("rejected");
    const error = run.reason as TimeoutError;
    expect(error).toBeInstanceOf(TimeoutError);
    expect(error).toBeInstanceOf(PipelineError);
    expect(error).not.toBeInstanceOf(StageExecutionError);
    expect(error.name).toBe("TimeoutError");
    expect(error.timeout).toBe(100);
    expect(error.stageName).toBe("hang");
    expect(error.message).toContain("hang");
    expect(error.message).toContain("100");
    expect(vi.getTimerCount()).toBe(0);
  });

  it("aborts the handler's call.signal with that same TimeoutError", async () => {
    vi.useFakeTimers();
    let callSignal: AbortSignal | undefined;
    const pipeline = new Pipeline(
      [
        new Stage("hang", (_value: number, _ctx: Context, call: StageCall): Promise<number> => {
          callSignal = call.signal;
          return never();
        }),
      ],
      { middlewares: [timeoutMiddleware({ timeout: 250 })] },
    );

    const run = observe(pipeline.run(1));
    await vi.advanceTimersByTimeAsync(0);
    expect(callSignal?.aborted).toBe(false);
    await vi.advanceTimersByTimeAsync(250);
    expect(run.status).toBe("rejected");
    expect(callSignal?.aborted).toBe(true);
    expect(callSignal?.reason).toBeInstanceOf(TimeoutError);
    expect(callSignal?.reason).toBe(run.reason);
  });

  it("resolves when the chain finishes in time and leaves no timer or listener", async () => {
    vi.useFakeTimers();
    const controller = new AbortController();
    let callSignal: AbortSignal | undefined;
    const pipeline = new Pipeline(
      [
        new Stage("quick", async (value: number, _ctx: Context, call: StageCall) => {
          callSignal = call.signal;
          await sleep(99);
          return value * 2;
        }),
        new Stage("next", (value: number) => value + 1),
      ],
      { middlewares: [timeoutMiddleware({ timeout: 100 })] },
    );

    const run = observe(pipeline.run(5, { signal: controller.signal }));
    await vi.advanceTimersByTimeAsync(99);
    expect(run.status).toBe("fulfilled");
    expect(run.value).toBe(11);
    expect(vi.getTimerCount()).toBe(0);
    expect(callSignal?.aborted).toBe(false);
    expect(abortListeners(controller.signal)).toBe(0);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(callSignal?.aborted).toBe(false);
  });

  it("passes the stage's own failure through unchanged and clears its timer", async () => {
    vi.useFakeTimers();
    const original = new Error("early");
    const pipeline = new Pipeline(
      [
        new Stage("s", async (): Promise<number> => {
          await sleep(10);
          throw original;
        }),
      ],
      { middlewares: [timeoutMiddleware({ timeout: 100 })] },
    );

    const run = observe(pipeline.run(1));
    await vi.advanceTimersByTimeAsync(10);
    expect(run.status).toBe("rejected");
    expect(run.reason).toBeInstanceOf(StageExecutionError);
    expect((run.reason as StageExecutionError).originalError).toBe(original);
    expect(vi.getTimerCount()).toBe(0);
  });

  it("never times out a synchronous result, however long the handler took", async () => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "performance", "Date"] });
    const pipeline = new Pipeline(
      [
        new Stage("sync", (value: number) => {
          vi.advanceTimersByTime(1_000); // simulates slow synchronous work
          return value + 1;
        }),
      ],
      { middlewares: [timeoutMiddleware({ timeout: 10 })] },
    );

    const run = observe(pipeline.run(1));
    await vi.advanceTimersByTimeAsync(100);
    expect(run.status).toBe("fulfilled");
    expect(run.value).toBe(2);
    expect(vi.getTimerCount()).toBe(0);
  });

  it("lets the caller's abort win before the timeout: rejects with the reason, no timer left", async () => {
    vi.useFakeTimers();
    const controller = new AbortController();
    const reason = new Error("caller");
    const pipeline = new Pipeline([new Stage("hang", (): Promise<number> => never())], {
      middlewares: [timeoutMiddleware({ timeout: 1_000 })],
    });

    const run = observe(pipeline.run(1, { signal: controller.signal }));
    await vi.advanceTimersByTimeAsync(10);
    controller.abort(reason);
    await vi.advanceTimersByTimeAsync(0);
    expect(run.status).toBe("rejected");
    expect(run.reason).toBe(reason);
    expect(vi.getTimerCount()).toBe(0);
    expect(abortListeners(controller.signal)).toBe(0);
  });

  it("leaves no listener on the caller's signal after a timeout", async () => {
    vi.useFakeTimers();
    const controller = new AbortController();
    const pipeline = new Pipeline([new Stage("hang", (): Promise<number> => never())], {
      middlewares: [timeoutMiddleware({ timeout: 50 })],
    });

    const run = observe(pipeline.run(1, { signal: controller.signal }));
    await vi.advanceTimersByTimeAsync(50);
    expect(run.reason).toBeInstanceOf(TimeoutError);
    expect(abortListeners(controller.signal)).toBe(0);
  });

  it("throws for a timeout that is 0, negative, NaN, Infinity, missing or not a number", () => {
    expect(() => timeoutMiddleware({ timeout: 0 })).toThrow(RangeError);
    expect(() => timeoutMiddleware({ timeout: 0 })).toThrow(/^timeout must be greater than 0/);
    expect(() => timeoutMiddleware({ timeout: -1 })).toThrow(RangeError);
    expect(() => timeoutMiddleware({ timeout: Number.NaN })).toThrow(RangeError);
    expect(() => timeoutMiddleware({ timeout: Infinity })).toThrow(RangeError);
    expect(() => timeoutMiddleware({ timeout: "100" as unknown as number })).toThrow(TypeError);
    // @ts-expect-error -- checked at run time too
    expect(() => timeoutMiddleware({})).toThrow(TypeError);
    // @ts-expect-error -- checked at run time too
    expect(() => timeoutMiddleware({})).toThrow(/timeout/);
    // @ts-expect-error -- checked at run time too
    expect(() => timeoutMiddleware()).toThrow(TypeError);
    // @ts-expect-error -- checked at run time too
    expect(() => timeoutMiddleware(100)).toThrow(/timeout/);
  });
});

describe("built-ins combined", () => {
  it("timeoutMiddleware outside a stage with retries bounds all attempts together", async () => {
    vi.useFakeTimers();
    const handler = vi.fn(async (): Promise<number> => {
      await sleep(30);
      throw new Error("fail");
    });
    const pipeline = new Pipeline([new Stage("s", handler, { retries: 5, retryDelay: 100 })], {
      middlewares: [timeoutMiddleware({ timeout: 200 })],
    });

    // attempt 1 fails at 30, waits until 130; attempt 2 fails at 160, would wait until 260.
    const run = observe(pipeline.run(1));
    await vi.advanceTimersByTimeAsync(199);
    expect(run.status).toBe("pending");
    expect(handler).toHaveBeenCalledTimes(2);
    await vi.advanceTimersByTimeAsync(1);
    expect(run.status).toBe("rejected");
    expect(run.reason).toBeInstanceOf(TimeoutError);
    expect((run.reason as TimeoutError).timeout).toBe(200);
    await vi.advanceTimersByTimeAsync(5_000);
    expect(handler).toHaveBeenCalledTimes(2);
    expect(vi.getTimerCount()).toBe(0);
  });

  it("timeoutMiddleware outside retryMiddleware cuts the retries short", async () => {
    vi.useFakeTimers();
    const handler = vi.fn((): number => {
      throw new Error("fail");
    });
    const pipeline = new Pipeline([new Stage("s", handler)], {
      middlewares: [
        timeoutMiddleware({ timeout: 250 }),
        retryMiddleware({ retries: 10, retryDelay: 100 }),
      ],
    });

    const run = observe(pipeline.run(1));
    await vi.advanceTimersByTimeAsync(250);
    expect(run.status).toBe("rejected");
    expect(run.reason).toBeInstanceOf(TimeoutError);
    expect(handler).toHaveBeenCalledTimes(3); // at 0, 100 and 200
    await vi.advanceTimersByTimeAsync(5_000);
    expect(handler).toHaveBeenCalledTimes(3);
    expect(vi.getTimerCount()).toBe(0);
  });

  it("retryMiddleware outside timeoutMiddleware retries a timed-out run", async () => {
    vi.useFakeTimers();
    const signals: AbortSignal[] = [];
    const handler = vi.fn((value: number, _ctx: Context, call: StageCall): Promise<number> => {
      signals.push(call.signal);
      return signals.length === 1 ? never() : Promise.resolve(value * 2);
    });
    const onRetry = vi.fn();
    const pipeline = new Pipeline([new Stage("s", handler)], {
      middlewares: [retryMiddleware({ retries: 2, onRetry }), timeoutMiddleware({ timeout: 100 })],
    });

    const run = observe(pipeline.run(21));
    await vi.advanceTimersByTimeAsync(100);
    expect(run.status).toBe("fulfilled");
    expect(run.value).toBe(42);
    expect(handler).toHaveBeenCalledTimes(2);
    expect(signals[0]?.reason).toBeInstanceOf(TimeoutError);
    expect(signals[1]?.aborted).toBe(false);
    expect(onRetry).toHaveBeenCalledTimes(1);
    expect((onRetry.mock.calls[0]?.[0] as RetryEvent).error).toBeInstanceOf(TimeoutError);
    expect(vi.getTimerCount()).toBe(0);
  });

  it("retryMiddleware outside timeoutMiddleware rethrows the last TimeoutError when every run times out", async () => {
    vi.useFakeTimers();
    const handler = vi.fn((): Promise<number> => never());
    const pipeline = new Pipeline([new Stage("s", handler)], {
      middlewares: [retryMiddleware({ retries: 2 }), timeoutMiddleware({ timeout: 100 })],
    });

    const run = observe(pipeline.run(1));
    await vi.advanceTimersByTimeAsync(299);
    expect(run.status).toBe("pending");
    expect(handler).toHaveBeenCalledTimes(3);
    await vi.advanceTimersByTimeAsync(1);
    expect(run.status).toBe("rejected");
    expect(run.reason).toBeInstanceOf(TimeoutError);
    expect(vi.getTimerCount()).toBe(0);
  });

  it("timing and logging around retries measure the whole chain once per stage", async () => {
    fakeClock();
    const logger = recordingLogger();
    let calls = 0;
    const pipeline = new Pipeline(
      [
        new Stage("s", (value: number) => {
          calls++;
          if (calls < 3) throw new Error("again");
          return value;
        }),
      ],
      {
        middlewares: [
          timingMiddleware(),
          loggingMiddleware({ logger }),
          retryMiddleware({ retries: 3, retryDelay: 20 }),
        ],
      },
    );
    const context: TimingContext = {};

    const run = observe(pipeline.run(9, { context }));
    await vi.advanceTimersByTimeAsync(40);
    expect(run.status).toBe("fulfilled");
    expect(context.timings).toEqual({ s: [40] });
    expect(logger.lines.map((line) => line.args[0])).toEqual([
      'stage "s" started',
      'stage "s" succeeded in 40.0 ms',
    ]);
  });
});
