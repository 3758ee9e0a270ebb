/**
 * What a user sees for an unknown option key, end to end: each public entry point's message,
 * with the hints of src/internal/option-hints.ts wired at its call site.
 */
import { describe, expect, it } from "vitest";
import { CircuitBreaker, Pipeline, RateLimiter, Stage } from "../src/index.js";
import { loggingMiddleware, retryMiddleware, timeoutMiddleware } from "../src/middlewares/index.js";
import {
  openTelemetryMiddleware,
  openTelemetryRunSpan,
  tracedRun,
} from "../src/opentelemetry/index.js";

const stage = new Stage("double", (n: number) => n * 2);
const pipeline = new Pipeline([stage]);
const message = (text: string): TypeError => new TypeError(text);

describe("unknown option hints, as the user sees them", () => {
  it("Stage: delay → retryDelay, maxDelay → maxRetryDelay, retry → retries", () => {
    expect(() => new Stage("s", (n: number) => n, { delay: 200 } as never)).toThrow(
      message('unknown option "delay" (did you mean "retryDelay"?)'),
    );
    expect(() => new Stage("s", (n: number) => n, { maxDelay: 1_000 } as never)).toThrow(
      message('unknown option "maxDelay" (did you mean "maxRetryDelay"?)'),
    );
    expect(() => new Stage("s", (n: number) => n, { retry: 3 } as never)).toThrow(
      message('unknown option "retry" (did you mean "retries"?)'),
    );
  });

  it("Pipeline: an option of a Stage or of run is named as one", () => {
    expect(() => new Pipeline([stage], { timeout: 5 } as never)).toThrow(
      message('unknown option "timeout" ("timeout" is an option of Stage, not Pipeline)'),
    );
    expect(() => new Pipeline([stage], { signal: undefined } as never)).toThrow(
      message('unknown option "signal" ("signal" is an option of run, not Pipeline)'),
    );
  });

  it("map and mapSettled: a stream option says so; a typo of one still names concurrency", async () => {
    await expect(pipeline.map([1], 2, { ordered: false } as never)).rejects.toThrow(
      message('unknown option "ordered" ("ordered" is an option of stream, not map)'),
    );
    await expect(pipeline.mapSettled([1], { settled: true } as never)).rejects.toThrow(
      message('unknown option "settled" ("settled" is an option of stream, not mapSettled)'),
    );
    await expect(pipeline.map([1], { concurency: 2 } as never)).rejects.toThrow(
      message('unknown option "concurency" (did you mean "concurrency"?)'),
    );
    await expect(pipeline.map([1], { limit: 2 } as never)).rejects.toThrow(
      message('unknown option "limit" (did you mean "concurrency"?)'),
    );
  });

  it("run: ctx → context, a signal typo → signal, a map option says so", async () => {
    await expect(pipeline.run(1, { ctx: {} } as never)).rejects.toThrow(
      message('unknown option "ctx" (did you mean "context"?)'),
    );
    await expect(stage.run(1, { ctx: {} } as never)).rejects.toThrow(
      message('unknown option "ctx" (did you mean "context"?)'),
    );
    await expect(pipeline.run(1, { sginal: undefined } as never)).rejects.toThrow(
      message('unknown option "sginal" (did you mean "signal"?)'),
    );
    await expect(pipeline.run(1, { concurrency: 2 } as never)).rejects.toThrow(
      message('unknown option "concurrency" ("concurrency" is an option of map, not run)'),
    );
  });

  it("stream: a typo of its own options", async () => {
    await expect(pipeline.stream([1], { setled: true } as never).next()).rejects.toThrow(
      message('unknown option "setled" (did you mean "settled"?)'),
    );
  });

  it("middlewares: the names of other libraries", () => {
    expect(() => retryMiddleware({ minTimeout: 100 } as never)).toThrow(
      message('unknown option "minTimeout" (did you mean "retryDelay"?)'),
    );
    expect(() => timeoutMiddleware({ ms: 100 } as never)).toThrow(
      message('unknown option "ms" (did you mean "timeout"?)'),
    );
    expect(() => loggingMiddleware({ log: console } as never)).toThrow(
      message('unknown option "log" (did you mean "logger"?)'),
    );
    // The deprecated names are still retryMiddleware's own options, not unknown ones.
    // eslint-disable-next-line @typescript-eslint/no-deprecated
    expect(() => retryMiddleware({ delay: 100, maxDelay: 1_000 })).not.toThrow();
  });

  it("perKey: an alias is named with its perKey. prefix", async () => {
    await expect(
      pipeline.map([1], { concurrency: 2, perKey: { key: String, max: 1 } } as never),
    ).rejects.toThrow(message('unknown option "perKey.max" (did you mean "perKey.concurrency"?)'));
  });

  it("OpenTelemetry: the other form's options and the names used elsewhere", async () => {
    expect(() => openTelemetryMiddleware({ spanName: "x" } as never)).toThrow(
      message(
        'unknown option "spanName" ("spanName" is an option of openTelemetryRunSpan, not openTelemetryMiddleware)',
      ),
    );
    expect(() => openTelemetryMiddleware({ prefix: "etl" } as never)).toThrow(
      message('unknown option "prefix" (did you mean "spanPrefix"?)'),
    );
    expect(() => openTelemetryRunSpan({ attrs: {} } as never)).toThrow(
      message('unknown option "attrs" (did you mean "attributes"?)'),
    );
    expect(() => openTelemetryRunSpan({ spanPrefix: "etl" } as never)).toThrow(
      message(
        'unknown option "spanPrefix" ("spanPrefix" is an option of openTelemetryMiddleware, not openTelemetryRunSpan)',
      ),
    );
    await expect(tracedRun(pipeline, 1, { ctx: {} } as never)).rejects.toThrow(
      message('unknown option "ctx" (did you mean "context"?)'),
    );
  });

  it("RateLimiter and CircuitBreaker: bottleneck's, opossum's and cockatiel's names", () => {
    expect(() => new RateLimiter({ limit: 1, duration: 1_000 } as never)).toThrow(
      message('unknown option "duration" (did you mean "interval"?)'),
    );
    expect(
      () => new Stage("s", (n: number) => n, { rateLimit: { max: 1, interval: 10 } } as never),
    ).toThrow(message('unknown option "rateLimit.max" (did you mean "rateLimit.limit"?)'));
    expect(() => new CircuitBreaker({ resetTimeout: 1_000 } as never)).toThrow(
      message('unknown option "resetTimeout" (did you mean "cooldown"?)'),
    );
  });
});
