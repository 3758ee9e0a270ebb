import {
  context,
  SpanKind,
  SpanStatusCode,
  trace,
  type Span,
  type Tracer,
} from "@opentelemetry/api";
import {
  AsyncHooksContextManager,
  AsyncLocalStorageContextManager,
} from "@opentelemetry/context-async-hooks";
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
  type ReadableSpan,
} from "@opentelemetry/sdk-trace-base";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import {
  adaptiveConcurrency,
  Pipeline,
  Stage,
  StageExecutionError,
  TimeoutError,
} from "../src/index.js";
import { retryMiddleware, timeoutMiddleware } from "../src/middlewares/index.js";
import {
  openTelemetryMiddleware,
  openTelemetryRunSpan,
  recordConcurrencyChange,
  recordRetry,
  tracedRun,
  type TraceAttributesContext,
} from "../src/opentelemetry/index.js";
import { rejectionOf } from "./support/promises.js";
import { sleep } from "./support/time.js";

// Made before any provider is registered: the global tracer must still reach the provider
// registered in beforeAll (the API's proxy tracer delegates once one is set).
const earlyMiddleware = openTelemetryMiddleware();

const exporter = new InMemorySpanExporter();
const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
const contextManager = new AsyncLocalStorageContextManager();

beforeAll(() => {
  context.setGlobalContextManager(contextManager.enable());
  trace.setGlobalTracerProvider(provider);
});

afterAll(async () => {
  trace.disable();
  context.disable();
  await provider.shutdown();
});

beforeEach(() => {
  exporter.reset();
});

/** A tracer of the global provider, for the spans a handler creates itself. */
const app = (): Tracer => trace.getTracer("app");

const finished = (): ReadableSpan[] => exporter.getFinishedSpans();

function only(name: string, spans: ReadableSpan[] = finished()): ReadableSpan {
  const matching = spans.filter((span) => span.name === name);
  expect(matching, `spans named ${name}`).toHaveLength(1);
  return matching[0]!;
}

const spanId = (span: ReadableSpan): string => span.spanContext().spanId;
const traceId = (span: ReadableSpan): string => span.spanContext().traceId;
const parentOf = (span: ReadableSpan): string | undefined => span.parentSpanContext?.spanId;

const untilAborted = (signal: AbortSignal): Promise<void> =>
  new Promise((resolve) => {
    signal.addEventListener("abort", () => {
      resolve();
    });
  });

/** Runs `work` inside a span of the "app" tracer, as a handler calling `fetch` would. */
function child<T>(name: string, work: () => T | Promise<T>, attributes = {}): Promise<T> {
  return app().startActiveSpan(name, { attributes }, async (span: Span) => {
    try {
      return await work();
    } finally {
      span.end();
    }
  });
}

/**
 * Runs six items at once through a traced two-stage pipeline whose handler opens a child span
 * after a different delay per item, and checks that each child span sits under its own item's
 * stage span.
 */
async function expectMapItemsApart(): Promise<void> {
  const delays = [30, 5, 20, 1, 10, 15];
  interface Ctx {
    traceAttributes?: Record<string, unknown>;
  }
  const pipeline = new Pipeline(
    [
      new Stage("tag", (value: number, context: Ctx) => {
        context.traceAttributes = { item: value };
        return value;
      }),
      new Stage("work", async (value: number) => {
        await sleep(delays[value]!);
        await child("io", () => sleep(delays[(value + 3) % delays.length]!), { item: value });
        return value;
      }),
    ],
    { middlewares: [openTelemetryMiddleware()] },
  );
  await expect(pipeline.map([0, 1, 2, 3, 4, 5], Infinity)).resolves.toEqual([0, 1, 2, 3, 4, 5]);

  const spans = finished();
  const byId = new Map(spans.map((span) => [spanId(span), span]));
  const io = spans.filter((span) => span.name === "io");
  expect(io).toHaveLength(6);
  for (const span of io) {
    const parent = byId.get(parentOf(span)!);
    expect(parent?.name).toBe("pipeline.stage.work");
    expect(parent?.attributes.item).toBe(span.attributes.item);
    expect(traceId(span)).toBe(traceId(parent!));
  }
  const tags = spans.filter((span) => span.name === "pipeline.stage.tag");
  expect(tags.map((span) => span.attributes.item).sort()).toEqual([0, 1, 2, 3, 4, 5]);
}

describe("openTelemetryMiddleware: stage spans", () => {
  it("makes one span per stage, named after the prefix and the stage, with the attributes", async () => {
    const pipeline = new Pipeline(
      [
        new Stage("parse", (line: string) => Number(line)),
        new Stage("double", async (value: number) => value * 2),
      ],
      { middlewares: [earlyMiddleware] },
    );
    await expect(pipeline.run("21")).resolves.toBe(42);

    const spans = finished();
    expect(spans.map((span) => span.name)).toEqual([
      "pipeline.stage.parse",
      "pipeline.stage.double",
    ]);
    const parse = only("pipeline.stage.parse");
    expect(parse.attributes).toEqual({
      "async_pipeline.stage.name": "parse",
      "async_pipeline.input.type": "string",
      "async_pipeline.output.type": "number",
    });
    expect(parse.status).toEqual({ code: SpanStatusCode.OK });
    expect(parse.kind).toBe(SpanKind.INTERNAL);
    expect(parse.instrumentationScope.name).toBe("async_pipeline");
    expect(parse.ended).toBe(true);
    expect(parse.events).toEqual([]);
    expect(only("pipeline.stage.double").attributes["async_pipeline.input.type"]).toBe("number");
  });

  it("honours tracerName and spanPrefix, and an empty prefix names the span after the stage", async () => {
    const stage = new Stage("x", (value: number) => value);
    await new Pipeline([stage], {
      middlewares: [openTelemetryMiddleware({ tracerName: "my.tracer", spanPrefix: "app.pipe" })],
    }).run(3);
    await new Pipeline([stage], { middlewares: [openTelemetryMiddleware({ spanPrefix: "" })] }).run(
      3,
    );
    expect(only("app.pipe.x").instrumentationScope.name).toBe("my.tracer");
    expect(only("x").attributes["async_pipeline.stage.name"]).toBe("x");
  });

  it("uses the tracer it is given instead of the global provider", async () => {
    const ownExporter = new InMemorySpanExporter();
    const own = new BasicTracerProvider({
      spanProcessors: [new SimpleSpanProcessor(ownExporter)],
    });
    const pipeline = new Pipeline([new Stage("solo", (value: number) => value + 1)], {
      middlewares: [openTelemetryMiddleware({ tracer: own.getTracer("own", "1.2.3") })],
    });
    await pipeline.run(1);

    expect(finished()).toEqual([]);
    const [span] = ownExporter.getFinishedSpans();
    expect(span?.name).toBe("pipeline.stage.solo");
    expect(span?.instrumentationScope).toMatchObject({ name: "own", version: "1.2.3" });
    await own.shutdown();
  });

  it("names input and output types the way a TypeScript user reads them", async () => {
    class Order {
      readonly id = 1;
    }
    const values: unknown[] = [
      null,
      undefined,
      true,
      1n,
      Symbol("s"),
      () => 1,
      [1],
      new Map(),
      new Order(),
      Object.create(null) as object,
      { plain: true },
      new Proxy(
        {},
        {
          getPrototypeOf() {
            throw new Error("trap");
          },
        },
      ),
      // An object whose constructor has no name: nothing better to report than "Object".
      Object.create(
        Object.create(null, {
          constructor: { value: Object.defineProperty(() => 0, "name", { value: "" }) },
        }) as object,
      ),
    ];
    const pipeline = new Pipeline([new Stage("echo", (value: unknown) => value)], {
      middlewares: [openTelemetryMiddleware()],
    });
    for (const value of values) await pipeline.run(value);

    expect(finished().map((span) => span.attributes["async_pipeline.input.type"])).toEqual([
      "null",
      "undefined",
      "boolean",
      "bigint",
      "symbol",
      "function",
      "Array",
      "Map",
      "Order",
      "Object",
      "Object",
      "Object",
      "Object",
    ]);
    expect(
      finished().every(
        (span) =>
          span.attributes["async_pipeline.output.type"] ===
          span.attributes["async_pipeline.input.type"],
      ),
    ).toBe(true);
  });
});

describe("openTelemetryMiddleware: failures", () => {
  it("records the exception, sets status ERROR with the message, and rethrows the same error", async () => {
    const original = new RangeError("bad value 7");
    const pipeline = new Pipeline(
      [
        new Stage("broken", (): number => {
          throw original;
        }),
        new Stage("never", (value: number) => value),
      ],
      { middlewares: [openTelemetryMiddleware()] },
    );
    const error = await rejectionOf(pipeline.run(7));

    expect(error).toBeInstanceOf(StageExecutionError);
    expect((error as StageExecutionError).originalError).toBe(original);
    const span = only("pipeline.stage.broken");
    expect(finished()).toHaveLength(1);
    expect(span.status).toEqual({
      code: SpanStatusCode.ERROR,
      message: 'Stage "broken" failed: bad value 7',
    });
    expect(span.attributes).toMatchObject({
      "async_pipeline.error": true,
      "async_pipeline.error.type": "StageExecutionError",
      "async_pipeline.error.message": 'Stage "broken" failed: bad value 7',
      "async_pipeline.stage.name": "broken",
      "async_pipeline.input.type": "number",
    });
    expect(span.attributes).not.toHaveProperty("async_pipeline.output.type");
    expect(span.attributes).not.toHaveProperty("async_pipeline.cancelled");
    expect(span.events).toHaveLength(1);
    expect(span.events[0]?.name).toBe("exception");
    expect(span.events[0]?.attributes).toMatchObject({
      "exception.type": "StageExecutionError",
      "exception.message": 'Stage "broken" failed: bad value 7',
    });
    expect(span.events[0]?.attributes?.["exception.stacktrace"]).toEqual(expect.any(String));
  });

  it("records what a middleware inside it throws, whatever its type, and rethrows it as is", async () => {
    const thrown: unknown[] = [
      "plain string",
      { code: 42 },
      null,
      {
        get name(): string {
          throw new Error("getter");
        },
        get message(): string {
          throw new Error("getter");
        },
      },
    ];
    for (const value of thrown) {
      exporter.reset();
      const pipeline = new Pipeline([new Stage("s", (n: number) => n)], {
        middlewares: [
          openTelemetryMiddleware(),
          () => {
            throw value;
          },
        ],
      });
      expect(await rejectionOf(pipeline.run(1))).toBe(value);
      const span = only("pipeline.stage.s");
      expect(span.status.code).toBe(SpanStatusCode.ERROR);
      expect(span.events[0]?.name).toBe("exception");
    }
  });

  it("describes non-Error values in the attributes and the status", async () => {
    const cases: [unknown, string, string][] = [
      ["plain string", "string", "plain string"],
      [{ code: 42 }, "Object", "[object Object]"],
      [{ name: "Custom", message: "custom message" }, "Custom", "custom message"],
      [
        {
          toString(): string {
            throw new Error("no");
          },
        },
        "Object",
        "Object",
      ],
    ];
    for (const [value, type, message] of cases) {
      exporter.reset();
      const pipeline = new Pipeline([new Stage("s", (n: number) => n)], {
        middlewares: [
          openTelemetryMiddleware(),
          () => {
            throw value;
          },
        ],
      });
      await rejectionOf(pipeline.run(1));
      const span = only("pipeline.stage.s");
      expect(span.attributes["async_pipeline.error.type"]).toBe(type);
      expect(span.attributes["async_pipeline.error.message"]).toBe(message);
      expect(span.status.message).toBe(message);
    }
  });

  it("marks a timeout from a timeoutMiddleware inside it as a failure, not a cancellation", async () => {
    const pipeline = new Pipeline([new Stage("slow", () => new Promise<never>(() => {}))], {
      middlewares: [openTelemetryMiddleware(), timeoutMiddleware({ timeout: 5 })],
    });
    expect(await rejectionOf(pipeline.run(1))).toBeInstanceOf(TimeoutError);
    const span = only("pipeline.stage.slow");
    expect(span.status.code).toBe(SpanStatusCode.ERROR);
    expect(span.attributes["async_pipeline.error.type"]).toBe("TimeoutError");
    expect(span.attributes).not.toHaveProperty("async_pipeline.cancelled");
  });

  it("marks a handler's own abort error, while the caller's signal is live, as a failure", async () => {
    const pipeline = new Pipeline(
      [
        new Stage("fetch", (): never => {
          throw new DOMException("aborted elsewhere", "AbortError");
        }),
      ],
      { middlewares: [openTelemetryMiddleware()] },
    );
    const controller = new AbortController();
    await rejectionOf(pipeline.run(1, { signal: controller.signal }));
    const span = only("pipeline.stage.fetch");
    expect(span.status.code).toBe(SpanStatusCode.ERROR);
    expect(span.attributes).not.toHaveProperty("async_pipeline.cancelled");
  });
});

describe("openTelemetryMiddleware: cancellation", () => {
  it("records a cancelled stage as cancelled, not failed, and rejects with the reason itself", async () => {
    const controller = new AbortController();
    const reason = new Error("user left");
    const pipeline = new Pipeline(
      [
        new Stage("wait", async (_value: number, _context: object, call) => {
          await untilAborted(call.signal);
          return 1;
        }),
      ],
      { middlewares: [openTelemetryMiddleware()] },
    );
    const pending = rejectionOf(pipeline.run(1, { signal: controller.signal }));
    await sleep(1);
    controller.abort(reason);
    expect(await pending).toBe(reason);

    const span = only("pipeline.stage.wait");
    expect(span.status).toEqual({ code: SpanStatusCode.UNSET });
    expect(span.attributes["async_pipeline.cancelled"]).toBe(true);
    expect(span.attributes).not.toHaveProperty("async_pipeline.error");
    expect(span.events.map((event) => event.name)).toEqual(["async_pipeline.cancelled"]);
    expect(span.events[0]?.attributes).toEqual({
      "async_pipeline.cancel.reason.type": "Error",
      "async_pipeline.cancel.reason.message": "user left",
    });
    expect(span.ended).toBe(true);
  });

  it("records the in-flight items a failing map aborts as cancelled, and the failure as failed", async () => {
    const pipeline = new Pipeline(
      [
        new Stage("item", async (value: number, _context: object, call) => {
          if (value === 0) {
            await sleep(5);
            throw new Error("first item fails");
          }
          await untilAborted(call.signal);
          return value;
        }),
      ],
      { middlewares: [openTelemetryMiddleware()] },
    );
    await rejectionOf(pipeline.map([0, 1, 2], 3));
    await sleep(5);

    const spans = finished();
    expect(spans).toHaveLength(3);
    expect(spans.filter((span) => span.status.code === SpanStatusCode.ERROR)).toHaveLength(1);
    const cancelled = spans.filter((span) => span.attributes["async_pipeline.cancelled"] === true);
    expect(cancelled).toHaveLength(2);
    expect(cancelled.every((span) => span.status.code === SpanStatusCode.UNSET)).toBe(true);
  });
});

describe("openTelemetryMiddleware: traceAttributes", () => {
  it("copies the simple values of context.traceAttributes and skips anything else", async () => {
    const pipeline = new Pipeline([new Stage("ident", (value: number) => value)], {
      middlewares: [openTelemetryMiddleware()],
    });
    const context: TraceAttributesContext = {
      traceAttributes: {
        "request.id": "abc-123",
        n: 42,
        f: 1.5,
        b: false,
        skip: { nested: 1 },
        list: [1, 2],
        none: null,
        missing: undefined,
        big: 1n,
        fn: () => 1,
      },
    };
    await pipeline.run(7, { context });
    const { attributes } = only("pipeline.stage.ident");
    expect(attributes).toEqual({
      "request.id": "abc-123",
      n: 42,
      f: 1.5,
      b: false,
      "async_pipeline.stage.name": "ident",
      "async_pipeline.input.type": "number",
      "async_pipeline.output.type": "number",
    });
  });

  it("reads traceAttributes from a class instance, and lets the library's own keys win", async () => {
    class RequestContext {
      traceAttributes = { tries: 2, "async_pipeline.stage.name": "spoofed" };
    }
    const pipeline = new Pipeline([new Stage("ident", (value: number) => value)], {
      middlewares: [openTelemetryMiddleware()],
    });
    await pipeline.run(7, { context: new RequestContext() });
    expect(only("pipeline.stage.ident").attributes).toMatchObject({
      tries: 2,
      "async_pipeline.stage.name": "ident",
    });
  });

  it("lands a value a stage sets on that stage's span and on the next stages' spans", async () => {
    interface Ctx {
      traceAttributes: Record<string, unknown>;
    }
    const pipeline = new Pipeline(
      [
        new Stage("login", (value: string, context: Ctx) => {
          context.traceAttributes["user.id"] = 123;
          return value;
        }),
        new Stage("greet", (value: string) => `hello ${value}`),
      ],
      { middlewares: [openTelemetryMiddleware()] },
    );
    await pipeline.run("ada", { context: { traceAttributes: {} } });
    expect(only("pipeline.stage.login").attributes["user.id"]).toBe(123);
    expect(only("pipeline.stage.greet").attributes["user.id"]).toBe(123);
  });

  it("ignores a traceAttributes that is not a record, and one that cannot be read", async () => {
    const pipeline = new Pipeline([new Stage("ident", (value: number) => value)], {
      middlewares: [openTelemetryMiddleware()],
    });
    const contexts: object[] = [
      { traceAttributes: "tenant=acme" },
      { traceAttributes: ["a", "b"] },
      { traceAttributes: null },
      {
        get traceAttributes(): never {
          throw new Error("getter");
        },
      },
      {
        traceAttributes: new Proxy(
          {},
          {
            ownKeys() {
              throw new Error("trap");
            },
          },
        ),
      },
    ];
    for (const context of contexts) await pipeline.run(1, { context });
    const spans = finished();
    expect(spans).toHaveLength(contexts.length);
    for (const span of spans) {
      expect(Object.keys(span.attributes).sort()).toEqual([
        "async_pipeline.input.type",
        "async_pipeline.output.type",
        "async_pipeline.stage.name",
      ]);
      expect(span.status.code).toBe(SpanStatusCode.OK);
    }
  });

  it("never lets a __proto__ key change an attributes object's prototype", async () => {
    const pipeline = new Pipeline([new Stage("ident", (value: number) => value)], {
      middlewares: [openTelemetryMiddleware()],
    });
    const traceAttributes = JSON.parse('{"__proto__": "x", "ok": 1}') as Record<string, unknown>;
    await pipeline.run(1, { context: { traceAttributes } });
    const { attributes } = only("pipeline.stage.ident");
    expect(Object.getPrototypeOf(attributes)).toBe(Object.prototype);
    expect(attributes.ok).toBe(1);
  });
});

describe("openTelemetryMiddleware: parent and child spans", () => {
  it("makes the stage span active, so handler spans nest under it, also after an await", async () => {
    const pipeline = new Pipeline(
      [
        new Stage("fetch", async (value: number) => {
          await child("db.query", () => sleep(1));
          await sleep(1);
          return child("http.get", () => value + 1);
        }),
      ],
      { middlewares: [openTelemetryMiddleware()] },
    );
    await pipeline.run(1);
    const stage = only("pipeline.stage.fetch");
    for (const name of ["db.query", "http.get"]) {
      const span = only(name);
      expect(parentOf(span)).toBe(spanId(stage));
      expect(traceId(span)).toBe(traceId(stage));
    }
    expect(parentOf(stage)).toBeUndefined();
  });

  it("keeps the stage span active through a stage's timeout and retries", async () => {
    let calls = 0;
    const pipeline = new Pipeline(
      [
        new Stage(
          "flaky",
          (value: number, _context: object, call) =>
            child(`attempt.${call.attempt}`, async () => {
              calls += 1;
              await sleep(1);
              if (calls < 3) throw new Error(`failure ${calls}`);
              return value;
            }),
          { timeout: 1_000, retries: 2, retryDelay: 1 },
        ),
      ],
      { middlewares: [openTelemetryMiddleware()] },
    );
    await pipeline.run(5);
    const stage = only("pipeline.stage.flaky");
    for (const name of ["attempt.1", "attempt.2", "attempt.3"]) {
      expect(parentOf(only(name))).toBe(spanId(stage));
    }
    expect(only("attempt.1").status.code).toBe(SpanStatusCode.UNSET);
    expect(stage.status.code).toBe(SpanStatusCode.OK);
  });

  it("nests stage spans under the span active when the run starts", async () => {
    const pipeline = new Pipeline(
      [new Stage("a", (value: number) => value), new Stage("b", async (value: number) => value)],
      { middlewares: [openTelemetryMiddleware()] },
    );
    await child("http.server", () => pipeline.run(1));
    const server = only("http.server");
    expect(parentOf(only("pipeline.stage.a"))).toBe(spanId(server));
    expect(parentOf(only("pipeline.stage.b"))).toBe(spanId(server));
  });

  it("keeps concurrent map items' traces apart", async () => {
    await expectMapItemsApart();
  });

  it("nests every item's stage spans under a span active around map", async () => {
    const pipeline = new Pipeline([new Stage("s", async (value: number) => value)], {
      middlewares: [openTelemetryMiddleware()],
    });
    await child("batch", () => pipeline.map([1, 2, 3], 2));
    const batch = only("batch");
    const stages = finished().filter((span) => span.name === "pipeline.stage.s");
    expect(stages).toHaveLength(3);
    expect(stages.every((span) => parentOf(span) === spanId(batch))).toBe(true);
  });
});

describe("with the AsyncHooksContextManager", () => {
  it("nests handler spans and keeps map items apart too", async () => {
    context.disable();
    // eslint-disable-next-line @typescript-eslint/no-deprecated -- still shipped and registered by older setups
    context.setGlobalContextManager(new AsyncHooksContextManager().enable());
    try {
      await expectMapItemsApart();
    } finally {
      context.disable();
      context.setGlobalContextManager(contextManager.enable());
    }
  });
});

describe("recordRetry", () => {
  it("records a stage's own retries as events on its span", async () => {
    let calls = 0;
    const pipeline = new Pipeline(
      [
        new Stage(
          "flaky",
          (value: number) => {
            calls += 1;
            if (calls < 3) throw new TypeError(`failure ${calls}`);
            return value;
          },
          { retries: 3, retryDelay: 2, onRetry: recordRetry },
        ),
      ],
      { middlewares: [openTelemetryMiddleware()] },
    );
    await pipeline.run(1);
    const span = only("pipeline.stage.flaky");
    expect(span.status.code).toBe(SpanStatusCode.OK);
    expect(span.events.map((event) => [event.name, event.attributes])).toEqual([
      [
        "async_pipeline.retry",
        {
          "async_pipeline.stage.name": "flaky",
          "async_pipeline.retry.attempt": 1,
          "async_pipeline.retry.delay": 2,
          "async_pipeline.error.type": "TypeError",
          "async_pipeline.error.message": "failure 1",
        },
      ],
      [
        "async_pipeline.retry",
        {
          "async_pipeline.stage.name": "flaky",
          "async_pipeline.retry.attempt": 2,
          "async_pipeline.retry.delay": 2,
          "async_pipeline.error.type": "TypeError",
          "async_pipeline.error.message": "failure 2",
        },
      ],
    ]);
  });

  it("records a retryMiddleware's retries (placed after it) on the same span, then the failure", async () => {
    const pipeline = new Pipeline(
      [
        new Stage("down", (): never => {
          throw "unavailable";
        }),
      ],
      {
        middlewares: [
          openTelemetryMiddleware(),
          retryMiddleware({ retries: 2, onRetry: recordRetry }),
        ],
      },
    );
    await rejectionOf(pipeline.run(1));
    const spans = finished();
    expect(spans).toHaveLength(1);
    const span = only("pipeline.stage.down");
    expect(span.events.map((event) => event.name)).toEqual([
      "async_pipeline.retry",
      "async_pipeline.retry",
      "exception",
    ]);
    expect(span.events[1]?.attributes).toMatchObject({
      "async_pipeline.retry.attempt": 2,
      "async_pipeline.retry.delay": 0,
      "async_pipeline.error.type": "StageExecutionError",
      "async_pipeline.error.message": 'Stage "down" failed: unavailable',
    });
    expect(span.status.code).toBe(SpanStatusCode.ERROR);
  });

  it("does nothing without an active span, and never throws", () => {
    expect(() => {
      recordRetry({ stageName: "s", error: new Error("x"), attempt: 1, delay: 0 });
    }).not.toThrow();
    const broken = {
      spanContext: () =>
        trace
          .wrapSpanContext({ traceId: "a".repeat(32), spanId: "b".repeat(16), traceFlags: 1 })
          .spanContext(),
      addEvent(): never {
        throw new Error("faulty span");
      },
    } as unknown as Span;
    context.with(trace.setSpan(context.active(), broken), () => {
      expect(() => {
        recordRetry({ stageName: "s", error: null, attempt: 1, delay: 0 });
      }).not.toThrow();
    });
    expect(finished()).toEqual([]);
  });
});

describe("recordConcurrencyChange", () => {
  const pipeline = new Pipeline([
    new Stage("call", async (value: number) => {
      await sleep(1);
      return value;
    }),
  ]);
  const items = Array.from({ length: 40 }, (_, index) => index);

  it("records each change of a batch's adaptive limit on the span active around the batch", async () => {
    const changes: number[] = [];
    const controller = adaptiveConcurrency({
      initial: 1,
      max: 6,
      onChange: (limit, key) => {
        changes.push(limit);
        recordConcurrencyChange(limit, key);
      },
    });
    await app().startActiveSpan("import", async (span) => {
      await pipeline.map(items, { concurrency: controller });
      span.end();
    });
    const span = only("import");
    expect(changes.length).toBeGreaterThan(1);
    expect(span.events.map((event) => [event.name, event.attributes])).toEqual(
      changes.map((limit) => [
        "async_pipeline.concurrency.change",
        { "async_pipeline.concurrency.limit": limit },
      ]),
    );
    expect(span.attributes["async_pipeline.concurrency.limit"]).toBe(controller.limit);
  });

  it("names the key under perKey, and leaves the span's limit to the batch's", async () => {
    const controller = adaptiveConcurrency({
      initial: 1,
      max: 3,
      onChange: recordConcurrencyChange,
    });
    await app().startActiveSpan("crawl", async (span) => {
      await pipeline.map(items, {
        concurrency: 8,
        perKey: {
          key: (value: number) => (value % 2 === 0 ? "even" : "odd"),
          concurrency: controller,
        },
      });
      span.end();
    });
    const span = only("crawl");
    const keys = new Set(
      span.events.map((event) => event.attributes?.["async_pipeline.concurrency.key"]),
    );
    expect(keys).toEqual(new Set(["even", "odd"]));
    expect(span.attributes["async_pipeline.concurrency.limit"]).toBeUndefined();
  });

  it("does nothing without an active span, skips a key that is not a simple value, and never throws", () => {
    expect(() => {
      recordConcurrencyChange(4, undefined);
    }).not.toThrow();
    const events: unknown[] = [];
    const recording = {
      addEvent(name: string, attributes: unknown): void {
        events.push([name, attributes]);
      },
      setAttribute(): never {
        throw new Error("faulty span");
      },
    } as unknown as Span;
    context.with(trace.setSpan(context.active(), recording), () => {
      recordConcurrencyChange(3, { host: "a" });
      expect(() => {
        recordConcurrencyChange(2, undefined);
      }).not.toThrow();
    });
    expect(events).toEqual([
      ["async_pipeline.concurrency.change", { "async_pipeline.concurrency.limit": 3 }],
      ["async_pipeline.concurrency.change", { "async_pipeline.concurrency.limit": 2 }],
    ]);
  });
});

describe("tracedRun: one span per run", () => {
  const pipeline = new Pipeline(
    [
      new Stage("parse", (line: string) => Number(line)),
      new Stage("double", async (value: number) => {
        await child("db.query", () => sleep(1));
        return value * 2;
      }),
    ],
    { middlewares: [openTelemetryMiddleware()] },
  );

  it("puts every stage span of the run under one run span, in one trace", async () => {
    const context: TraceAttributesContext = { traceAttributes: { "order.id": "o-1" } };
    await expect(tracedRun(pipeline, "21", { context })).resolves.toBe(42);

    const run = only("pipeline.run");
    const parse = only("pipeline.stage.parse");
    const double = only("pipeline.stage.double");
    expect(parentOf(run)).toBeUndefined();
    expect(parentOf(parse)).toBe(spanId(run));
    expect(parentOf(double)).toBe(spanId(run));
    expect(parentOf(only("db.query"))).toBe(spanId(double));
    expect(new Set(finished().map(traceId)).size).toBe(1);
    expect(run.attributes).toEqual({
      "order.id": "o-1",
      "async_pipeline.input.type": "string",
      "async_pipeline.output.type": "number",
    });
    expect(run.status.code).toBe(SpanStatusCode.OK);
    expect(run.instrumentationScope.name).toBe("async_pipeline");
    expect(parse.attributes["order.id"]).toBe("o-1");
  });

  it("gives concurrent runs their own traces", async () => {
    await Promise.all(["1", "2", "3"].map((line) => tracedRun(pipeline, line)));
    const runs = finished().filter((span) => span.name === "pipeline.run");
    expect(runs).toHaveLength(3);
    expect(new Set(runs.map(traceId)).size).toBe(3);
    for (const span of finished()) {
      if (span.name === "pipeline.run") continue;
      const run = runs.find((candidate) => traceId(candidate) === traceId(span));
      expect(run).toBeDefined();
    }
    const byId = new Map(finished().map((span) => [spanId(span), span]));
    for (const stage of finished().filter((span) => span.name.startsWith("pipeline.stage."))) {
      expect(byId.get(parentOf(stage)!)?.name).toBe("pipeline.run");
    }
  });

  it("nests under the active span, and honours spanName, attributes, tracer and tracerName", async () => {
    await child("job", () =>
      tracedRun(pipeline, "1", {
        spanName: "import-order",
        tracerName: "orders",
        attributes: { "pipeline.name": "orders", "async_pipeline.input.type": "spoofed" },
      }),
    );
    const run = only("import-order");
    expect(parentOf(run)).toBe(spanId(only("job")));
    expect(run.instrumentationScope.name).toBe("orders");
    expect(run.attributes).toMatchObject({
      "pipeline.name": "orders",
      "async_pipeline.input.type": "string",
    });

    const ownExporter = new InMemorySpanExporter();
    const own = new BasicTracerProvider({
      spanProcessors: [new SimpleSpanProcessor(ownExporter)],
    });
    await tracedRun(new Stage("solo", (value: number) => value), 1, {
      tracer: own.getTracer("own"),
    });
    expect(ownExporter.getFinishedSpans().map((span) => span.name)).toEqual(["pipeline.run"]);
    await own.shutdown();
  });

  it("records a failed run as failed and rejects with the run's own error", async () => {
    const failing = new Pipeline([
      new Stage("broken", (): number => {
        throw new Error("boom");
      }),
    ]);
    const error = await rejectionOf(tracedRun(failing, 1));
    expect(error).toBeInstanceOf(StageExecutionError);
    const run = only("pipeline.run");
    expect(run.status).toEqual({
      code: SpanStatusCode.ERROR,
      message: 'Stage "broken" failed: boom',
    });
    expect(run.events.map((event) => event.name)).toEqual(["exception"]);
    expect(run.attributes["async_pipeline.error"]).toBe(true);
  });

  it("records a run cancelled by its signal as cancelled", async () => {
    const controller = new AbortController();
    const waiting = new Pipeline(
      [
        new Stage("wait", (_value: number, _context: object, call) => {
          return untilAborted(call.signal);
        }),
      ],
      { middlewares: [openTelemetryMiddleware()] },
    );
    const pending = rejectionOf(tracedRun(waiting, 1, { signal: controller.signal }));
    await sleep(1);
    controller.abort();
    expect(await pending).toBe(controller.signal.reason);
    for (const name of ["pipeline.run", "pipeline.stage.wait"]) {
      const span = only(name);
      expect(span.attributes["async_pipeline.cancelled"]).toBe(true);
      expect(span.status.code).toBe(SpanStatusCode.UNSET);
      expect(span.events[0]?.attributes?.["async_pipeline.cancel.reason.type"]).toBe("AbortError");
    }
  });

  it("records the error of a run method that throws synchronously", async () => {
    const error = new Error("sync");
    const runnable = {
      run(): Promise<number> {
        throw error;
      },
    };
    expect(await rejectionOf(tracedRun(runnable, 1))).toBe(error);
    expect(only("pipeline.run").status.code).toBe(SpanStatusCode.ERROR);
  });
});

describe("openTelemetryRunSpan: one span per run and per batch item", () => {
  const stages = [
    new Stage("parse", (line: string) => Number(line)),
    new Stage("double", async (value: number) => {
      await sleep(3 - value);
      if (value === 2) throw new Error("two");
      return value * 2;
    }),
  ] as const;

  it("gives each map item its own run span and trace, with its stages under it", async () => {
    const pipeline = new Pipeline(stages, {
      middlewares: [openTelemetryMiddleware()],
      aroundRun: openTelemetryRunSpan({ spanName: "item", attributes: { batch: "b1" } }),
    });
    const settled = await pipeline.mapSettled(["0", "1", "2"], 3);
    expect(settled.map((entry) => entry.status)).toEqual(["fulfilled", "fulfilled", "rejected"]);

    const items = finished().filter((span) => span.name === "item");
    expect(items).toHaveLength(3);
    expect(new Set(items.map(traceId)).size).toBe(3);
    for (const item of items) {
      expect(parentOf(item)).toBeUndefined();
      expect(item.attributes.batch).toBe("b1");
      const stagesOfItem = finished().filter(
        (span) => span.name.startsWith("pipeline.stage.") && traceId(span) === traceId(item),
      );
      expect(stagesOfItem.map((span) => span.name).sort()).toEqual([
        "pipeline.stage.double",
        "pipeline.stage.parse",
      ]);
      for (const stage of stagesOfItem) expect(parentOf(stage)).toBe(spanId(item));
    }
    const failed = items.filter((span) => span.status.code === SpanStatusCode.ERROR);
    expect(failed).toHaveLength(1);
  });

  it("wraps run() the same way, and records a cancelled run as cancelled", async () => {
    const pipeline = new Pipeline(
      [new Stage("wait", (_value: number, _context, call) => untilAborted(call.signal))],
      { aroundRun: openTelemetryRunSpan() },
    );
    const controller = new AbortController();
    const reason = new Error("stop");
    const pending = rejectionOf(pipeline.run(1, { signal: controller.signal }));
    controller.abort(reason);
    expect(await pending).toBe(reason);
    const run = only("pipeline.run");
    expect(run.attributes["async_pipeline.cancelled"]).toBe(true);
    expect(run.status.code).toBe(SpanStatusCode.UNSET);
  });

  it("checks its options when called", () => {
    expect(() => openTelemetryRunSpan({ spanName: "" })).toThrow(RangeError);
  });
});

describe("tracing never changes the outcome", () => {
  const throwingTracer = {
    startSpan(): never {
      throw new Error("faulty tracer");
    },
    startActiveSpan(): never {
      throw new Error("faulty tracer");
    },
  } as unknown as Tracer;

  /** A tracer whose spans throw from every method. */
  const faultySpans = {
    startSpan(): Span {
      return new Proxy({} as Span, {
        get(_target, property) {
          if (property === "spanContext") {
            return () => ({ traceId: "a".repeat(32), spanId: "b".repeat(16), traceFlags: 1 });
          }
          return () => {
            throw new Error(`faulty ${String(property)}`);
          };
        },
      });
    },
    startActiveSpan(): never {
      throw new Error("unused");
    },
  } as unknown as Tracer;

  it("runs the stage untraced when the tracer throws", async () => {
    const pipeline = new Pipeline([new Stage("s", (value: number) => value + 1)], {
      middlewares: [openTelemetryMiddleware({ tracer: throwingTracer })],
    });
    await expect(pipeline.run(1)).resolves.toBe(2);
    await expect(tracedRun(pipeline, 2, { tracer: throwingTracer })).resolves.toBe(3);
  });

  it("keeps the stage's output or error when the span's methods throw", async () => {
    const ok = new Pipeline([new Stage("s", (value: number) => value + 1)], {
      middlewares: [openTelemetryMiddleware({ tracer: faultySpans })],
    });
    await expect(ok.run(1)).resolves.toBe(2);
    await expect(tracedRun(ok, 1, { tracer: faultySpans })).resolves.toBe(2);

    const failure = new Error("stage error");
    const broken = new Pipeline(
      [
        new Stage("s", (): number => {
          throw failure;
        }),
      ],
      { middlewares: [openTelemetryMiddleware({ tracer: faultySpans })] },
    );
    const error = await rejectionOf(broken.run(1));
    expect((error as StageExecutionError).originalError).toBe(failure);
  });
});

describe("argument checks", () => {
  it("rejects bad middleware options with a TypeError or RangeError naming the option", () => {
    const make = (options: unknown) => () =>
      openTelemetryMiddleware(options as Parameters<typeof openTelemetryMiddleware>[0]);
    expect(make(null)).toThrow(new TypeError("options must be an object, got null"));
    expect(make("x")).toThrow(new TypeError('options must be an object, got "x"'));
    expect(make({ tracer: {} })).toThrow(
      new TypeError("tracer must be an OpenTelemetry Tracer, got an object"),
    );
    expect(make({ tracer: null })).toThrow(
      new TypeError("tracer must be an OpenTelemetry Tracer, got null"),
    );
    expect(make({ tracerName: "" })).toThrow(new RangeError("tracerName must not be empty"));
    expect(make({ tracerName: 1 })).toThrow(new TypeError("tracerName must be a string, got 1"));
    expect(make({ spanPrefix: [] })).toThrow(
      new TypeError("spanPrefix must be a string, got an array"),
    );
    expect(make({ spanPrefix: () => "" })).toThrow(
      new TypeError("spanPrefix must be a string, got a function"),
    );
    expect(make({ spanPrefix: 1n })).toThrow(new TypeError("spanPrefix must be a string, got 1n"));
    expect(make({ spanPrefix: Symbol("p") })).toThrow(
      new TypeError("spanPrefix must be a string, got Symbol(p)"),
    );
    expect(make({ spanPrefix: true })).toThrow(
      new TypeError("spanPrefix must be a string, got true"),
    );
    expect(make({ spanPrefx: "p" })).toThrow(
      new TypeError('unknown option "spanPrefx" (did you mean "spanPrefix"?)'),
    );
    expect(() => openTelemetryRunSpan({ spanname: "x" } as never)).toThrow(
      new TypeError('unknown option "spanname" (did you mean "spanName"?)'),
    );
  });

  it("rejects bad tracedRun arguments as a rejection", async () => {
    const pipeline = new Pipeline([new Stage("s", (value: number) => value)]);
    const call = (target: unknown, options?: unknown) =>
      tracedRun(target as typeof pipeline, 1, options as Parameters<typeof tracedRun>[2]);
    await expect(call(null)).rejects.toThrow(
      new TypeError("pipeline must be a Pipeline or a Stage (an object with a run method)"),
    );
    await expect(call({ run: 1 })).rejects.toThrow(TypeError);
    await expect(call(pipeline, 5)).rejects.toThrow(
      new TypeError("options must be an object, got 5"),
    );
    await expect(call(pipeline, { spanName: "" })).rejects.toThrow(
      new RangeError("spanName must not be empty"),
    );
    await expect(call(pipeline, { spanName: 3 })).rejects.toThrow(
      new TypeError("spanName must be a string, got 3"),
    );
    await expect(call(pipeline, { attributes: "a" })).rejects.toThrow(
      new TypeError('attributes must be an object, got "a"'),
    );
    await expect(call(pipeline, { tracer: 1 })).rejects.toThrow(
      new TypeError("tracer must be an OpenTelemetry Tracer, got 1"),
    );
    await expect(call(pipeline, { sginal: AbortSignal.abort() })).rejects.toThrow(
      new TypeError('unknown option "sginal" (did you mean "signal"?)'),
    );
    expect(finished()).toEqual([]);
  });
});
