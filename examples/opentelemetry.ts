/**
 * OpenTelemetry: `openTelemetryMiddleware` gives every stage a span, `tracedRun` wraps a whole
 * run in one parent span, and `recordRetry` records each retry as an event on the stage's span.
 * Here the spans go to an in-memory exporter and are printed as a tree; in production you would
 * register an OTLP exporter (or use @opentelemetry/sdk-node) instead.
 *
 * Run: npx tsx examples/opentelemetry.ts
 */
import { context, trace, SpanStatusCode } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
  type ReadableSpan,
} from "@opentelemetry/sdk-trace-base";
import { Pipeline, Stage } from "async-pipeline";
import { openTelemetryMiddleware, recordRetry, tracedRun } from "async-pipeline/opentelemetry";

// 1. The SDK: a tracer provider exporting to memory, and a context manager so that spans nest
//    across `await` (@opentelemetry/sdk-node registers both for you).
const exporter = new InMemorySpanExporter();
const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
trace.setGlobalTracerProvider(provider);
context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());

// 2. The pipeline: the OpenTelemetry middleware first, so one span covers each stage with all
//    of its attempts; `recordRetry` as the stage's onRetry adds an event per retry.
let fetches = 0;
const pipeline = new Pipeline(
  [
    new Stage("parse", (line: string) => JSON.parse(line) as { sku: string; quantity: number }),
    new Stage(
      "fetchPrice",
      async (item: { sku: string; quantity: number }) => {
        fetches++;
        if (fetches === 1) throw new Error("HTTP 503");
        if (item.sku === "unknown") throw new Error(`no price for ${item.sku}`);
        return { ...item, price: 2.5 };
      },
      { retries: 2, retryDelay: 10, onRetry: recordRetry },
    ),
    new Stage("total", (item: { quantity: number; price: number }) => item.quantity * item.price),
  ],
  { middlewares: [openTelemetryMiddleware({ tracerName: "examples" })] },
);

// 3. Two traced runs: one succeeds after a retry, one fails. `traceAttributes` in the context
//    lands on every span of the run.
const total = await tracedRun(pipeline, '{"sku":"apple","quantity":4}', {
  spanName: "checkout",
  attributes: { "pipeline.name": "checkout" },
  context: { traceAttributes: { "tenant.id": "acme" } },
});
console.log(`first run: total ${total}`);
try {
  await tracedRun(pipeline, '{"sku":"unknown","quantity":1}', { spanName: "checkout" });
} catch (error) {
  console.log(`second run: ${(error as Error).message}`);
}

// 4. Print the finished spans as a tree: name, status, attributes, events (stack traces left
//    out).
await provider.forceFlush();
const spans = exporter.getFinishedSpans();
const children = new Map<string | undefined, ReadableSpan[]>();
for (const span of spans) {
  const parent = span.parentSpanContext?.spanId;
  children.set(parent, [...(children.get(parent) ?? []), span]);
}
const statusName = (code: SpanStatusCode): string => SpanStatusCode[code];
function print(span: ReadableSpan, depth: number): void {
  const indent = "  ".repeat(depth);
  const status =
    span.status.message === undefined
      ? statusName(span.status.code)
      : `${statusName(span.status.code)} "${span.status.message}"`;
  console.log(`${indent}${span.name} [${status}]`);
  const attributes = Object.entries(span.attributes)
    .map(([key, value]) => `${key}=${JSON.stringify(value)}`)
    .join(" ");
  console.log(`${indent}  attributes: ${attributes}`);
  for (const event of span.events) {
    const details = Object.entries(event.attributes ?? {})
      .filter(([key]) => key !== "exception.stacktrace")
      .map(([key, value]) => `${key}=${JSON.stringify(value)}`)
      .join(" ");
    console.log(`${indent}  event ${event.name}: ${details}`);
  }
  const kids = children.get(span.spanContext().spanId) ?? [];
  kids.sort((a, b) => a.startTime[0] - b.startTime[0] || a.startTime[1] - b.startTime[1]);
  for (const child of kids) print(child, depth + 1);
}
for (const root of children.get(undefined) ?? []) print(root, 0);
console.log(`${spans.length} spans`);
await provider.shutdown();
