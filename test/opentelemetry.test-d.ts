import { trace, type Tracer } from "@opentelemetry/api";
import { describe, expectTypeOf, it } from "vitest";
import {
  adaptiveConcurrency,
  Pipeline,
  Stage,
  type AdaptiveConcurrencyOptions,
  type Middleware,
} from "../src/index.js";
import {
  openTelemetryMiddleware,
  recordConcurrencyChange,
  recordRetry,
  tracedRun,
  type OpenTelemetryMiddlewareOptions,
  type RetryEvent,
  type Runnable,
  type TraceAttributesContext,
  type TracedRunOptions,
} from "../src/opentelemetry/index.js";

interface Tenant extends TraceAttributesContext {
  tenant: string;
}

describe("openTelemetryMiddleware types", () => {
  it("fits any pipeline's middleware list", () => {
    expectTypeOf(openTelemetryMiddleware()).toEqualTypeOf<Middleware<object>>();
    const pipeline = new Pipeline(
      [new Stage("tenant", (value: number, context: Tenant) => `${context.tenant}:${value}`)],
      { middlewares: [openTelemetryMiddleware({ spanPrefix: "app" })] },
    );
    expectTypeOf(pipeline.run(1, { context: { tenant: "acme" } })).toEqualTypeOf<Promise<string>>();
  });

  it("takes the documented options", () => {
    expectTypeOf<OpenTelemetryMiddlewareOptions>().toEqualTypeOf<{
      tracer?: Tracer | undefined;
      tracerName?: string | undefined;
      spanPrefix?: string | undefined;
    }>();
    openTelemetryMiddleware({ tracer: trace.getTracer("app") });
    // @ts-expect-error -- spanPrefix is a string
    openTelemetryMiddleware({ spanPrefix: 1 });
    // @ts-expect-error -- no such option
    openTelemetryMiddleware({ prefix: "app" });
  });
});

describe("recordRetry types", () => {
  it("is an onRetry callback for stages and retryMiddleware", () => {
    expectTypeOf(recordRetry).toEqualTypeOf<(event: RetryEvent) => void>();
    new Stage("s", (value: number) => value, { retries: 1, onRetry: recordRetry });
  });
});

describe("tracedRun types", () => {
  const pipeline = new Pipeline([
    new Stage("parse", (line: string, context: Tenant) => Number(line) + context.tenant.length),
    new Stage("label", (value: number, context: Tenant) => ({ value, tenant: context.tenant })),
  ]);

  it("infers the input, output and context from the pipeline", () => {
    expectTypeOf(tracedRun(pipeline, "1", { context: { tenant: "acme" } })).toEqualTypeOf<
      Promise<{ value: number; tenant: string }>
    >();
    // @ts-expect-error -- the pipeline takes a string
    void tracedRun(pipeline, 1);
    // @ts-expect-error -- the context needs a tenant
    void tracedRun(pipeline, "1", { context: {} });
  });

  it("accepts a Stage, or any Runnable", () => {
    const stage = new Stage("double", (value: number) => value * 2);
    expectTypeOf(stage).toExtend<Runnable<number, number>>();
    expectTypeOf(tracedRun(stage, 2)).toEqualTypeOf<Promise<number>>();
    expectTypeOf<TracedRunOptions>().toHaveProperty("spanName");
    expectTypeOf<TracedRunOptions>().toHaveProperty("signal");
  });
});

describe("recordConcurrencyChange types", () => {
  it("is an onChange callback for adaptiveConcurrency", () => {
    expectTypeOf(recordConcurrencyChange).toExtend<
      NonNullable<AdaptiveConcurrencyOptions["onChange"]>
    >();
    adaptiveConcurrency({ onChange: recordConcurrencyChange });
    // @ts-expect-error -- the limit is a number
    recordConcurrencyChange("4");
  });
});
