/**
 * Middlewares: functions wrapped around every stage's execution, first = outermost. Write your
 * own (a cache, a short-circuit, error translation) or use the built-ins from
 * `async-pipeline/middlewares`: logging, timing, retry and timeout.
 *
 * Run: npx tsx examples/middlewares.ts
 */
import { Pipeline, Stage, type Middleware } from "async-pipeline";
import {
  loggingMiddleware,
  retryMiddleware,
  timeoutMiddleware,
  timingMiddleware,
  type LogFields,
  type TimingContext,
} from "async-pipeline/middlewares";
import { setTimeout as sleep } from "node:timers/promises";

// 1. Order: `middlewares: [outer, inner]` wraps each stage as outer → inner → stage → inner → outer.
const trace =
  (label: string): Middleware =>
  async (next, stageName, value) => {
    console.log(`  ${label} → ${stageName}(${JSON.stringify(value)})`);
    const output = await next(value);
    console.log(`  ${label} ← ${stageName} = ${JSON.stringify(output)}`);
    return output;
  };
const ordered = new Pipeline([new Stage("double", (value: number) => value * 2)], {
  middlewares: [trace("outer"), trace("inner")],
});
console.log("order:");
await ordered.run(21);

// 2. A caching middleware: it may skip `next` entirely and return a stored output.
const cache = new Map<string, unknown>();
let computed = 0;
const caching: Middleware = async (next, stageName, value) => {
  const key = `${stageName}:${JSON.stringify(value)}`;
  if (cache.has(key)) return cache.get(key);
  const output = await next(value);
  cache.set(key, output);
  return output;
};
const squares = new Pipeline(
  [
    new Stage("square", async (value: number) => {
      computed++;
      return value * value;
    }),
  ],
  { middlewares: [caching] },
);
const results = await squares.map([3, 4, 3, 3, 4], 1);
console.log(`caching: results ${results.join(", ")}, computed ${computed} times`);

// 3. loggingMiddleware: any logger with info and error methods (console, pino, winston). Each
// line comes with a fields object: stageName, durationMs, attempt where known, and the error.
const logger = {
  info: (message: string) => {
    console.log(`  [info] ${message}`);
  },
  error: (message: string, fields: LogFields) => {
    console.log(`  [error] ${message} (attempt ${String(fields.attempt)})`);
  },
};
const withLogging = new Pipeline(
  [
    new Stage("parse", (line: string) => JSON.parse(line) as { n: number }),
    new Stage("read", (record: { n: number }) => record.n),
  ],
  { middlewares: [loggingMiddleware({ logger })] },
);
console.log("logging:");
await withLogging.run('{"n":1}');
await withLogging.run("not json").catch(() => undefined);

// 4. timingMiddleware: each stage's duration in ms, pushed onto context.timings[stageName].
const timed = new Pipeline(
  [
    new Stage("wait", async (value: number) => {
      await sleep(20);
      return value;
    }),
    new Stage("compute", (value: number) => value + 1),
  ],
  { middlewares: [timingMiddleware()] },
);
const context: TimingContext = {};
await timed.run(1, { context });
console.log("timing:");
for (const [stageName, durations] of Object.entries(context.timings ?? {})) {
  console.log(`  ${stageName}: ${durations.map((ms) => ms.toFixed(1)).join(", ")} ms`);
}

// 5. retryMiddleware: retries every stage of the pipeline, with the same options (and the same
//    names) as a stage's retries. The last error is rethrown as it is.
let attempts = 0;
const retried = new Pipeline(
  [
    new Stage("unstable", (value: number) => {
      attempts++;
      if (attempts < 3) throw new Error(`glitch ${attempts}`);
      return value;
    }),
  ],
  {
    middlewares: [
      retryMiddleware({
        retries: 3,
        retryDelay: 10,
        backoff: "exponential",
        onRetry: ({ stageName, attempt, delay }) => {
          console.log(`  retryMiddleware: ${stageName} run ${attempt} failed, next in ${delay} ms`);
        },
      }),
    ],
  },
);
console.log("retry:");
console.log(`  result ${await retried.run(7)} after ${attempts} attempts`);

// 6. timeoutMiddleware: one budget for all of a stage's attempts together (here: 4 attempts
//    of up to 40 ms each, but 100 ms in all), the stage's own signal aborted at the limit.
const budgeted = new Pipeline(
  [
    new Stage(
      "hang",
      async (value: number, _context, call) => {
        await sleep(10_000, undefined, { signal: call.signal });
        return value;
      },
      { timeout: 40, retries: 3 },
    ),
  ],
  { middlewares: [timeoutMiddleware({ timeout: 100 })] },
);
try {
  await budgeted.run(1);
} catch (error) {
  console.log(`timeout: ${String(error)}`);
}
