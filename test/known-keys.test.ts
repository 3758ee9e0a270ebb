import { describe, expect, it } from "vitest";
import { rejectUnknownKeys, unknownKeyMessage, type KeyHints } from "../src/internal/known-keys.js";
import {
  circuitBreakerOptionHints,
  loggingOptionHints,
  mapOptionHints,
  mapSettledOptionHints,
  openTelemetryMiddlewareOptionHints,
  openTelemetryRunSpanOptionHints,
  perKeyOptionHints,
  pipelineOptionHints,
  queueOptionHints,
  rateLimitOptionHints,
  retryMiddlewareOptionHints,
  runOptionHints,
  stageOptionHints,
  streamOptionHints,
  timeoutMiddlewareOptionHints,
  tracedRunOptionHints,
  workerOptionHints,
} from "../src/internal/option-hints.js";
import { retryOptionKeys as retrySettingKeys } from "../src/options/retry.js";
import { optionsObject } from "../src/internal/validate.js";
import { runOptionKeys } from "../src/types.js";

// The unknown-option messages with hints (src/internal/known-keys.ts) and the hint data of each
// options object (src/internal/option-hints.ts), called directly. The key records below are
// those of the options types today (most are private to their modules): the call sites pass
// them with these hints, as the comments of option-hints.ts say.

const stageKeys = { timeout: true, ...retrySettingKeys, rateLimit: true, circuitBreaker: true };
const pipelineKeys = { beforeStage: true, afterStage: true, middlewares: true, aroundRun: true };
const mapKeys = { concurrency: true, context: true, signal: true, onProgress: true, perKey: true };
const streamKeys = { ...mapKeys, buffer: true, ordered: true, settled: true };
const perKeyKeys = { key: true, concurrency: true };
const rateLimitKeys = { limit: true, interval: true };
const circuitBreakerKeys = { threshold: true, cooldown: true, onStateChange: true };
const retryMiddlewareKeys = { ...retrySettingKeys, delay: true, maxDelay: true };
const timeoutMiddlewareKeys = { timeout: true };
const loggingKeys = { logger: true, level: true, includeValue: true, order: true };
const queueKeys = { queueName: true, connection: true, prefix: true, connectTimeout: true };
const workerKeys = {
  ...queueKeys,
  concurrency: true,
  lockDuration: true,
  stalledInterval: true,
  maxStalledCount: true,
};
const distributedMapKeys = {
  context: true,
  signal: true,
  onProgress: true,
  window: true,
  batchId: true,
};
const distributedStreamKeys = { ...distributedMapKeys, ordered: true, settled: true };
const otelMiddlewareKeys = { tracer: true, tracerName: true, spanPrefix: true };
const runSpanKeys = { tracer: true, tracerName: true, spanName: true, attributes: true };
const tracedRunKeys = { ...runSpanKeys, ...runOptionKeys };

/** What a call site passes: its key record, its hints and, where it has any, its siblings. */
const forms = {
  Stage: [stageKeys, { ...stageOptionHints, siblings: { Pipeline: pipelineKeys } }],
  Pipeline: [
    pipelineKeys,
    { ...pipelineOptionHints, siblings: { Stage: stageKeys, run: runOptionKeys } },
  ],
  run: [runOptionKeys, { ...runOptionHints, siblings: { map: mapKeys } }],
  map: [mapKeys, { ...mapOptionHints, siblings: { stream: streamKeys } }],
  mapSettled: [mapKeys, { ...mapSettledOptionHints, siblings: { stream: streamKeys } }],
  stream: [streamKeys, streamOptionHints],
  perKey: [perKeyKeys, perKeyOptionHints],
  RateLimiter: [rateLimitKeys, rateLimitOptionHints],
  rateLimit: [rateLimitKeys, { ...rateLimitOptionHints, prefix: "rateLimit." }],
  CircuitBreaker: [circuitBreakerKeys, circuitBreakerOptionHints],
  retryMiddleware: [retryMiddlewareKeys, retryMiddlewareOptionHints],
  timeoutMiddleware: [timeoutMiddlewareKeys, timeoutMiddlewareOptionHints],
  loggingMiddleware: [loggingKeys, loggingOptionHints],
  PipelineQueue: [queueKeys, { ...queueOptionHints, siblings: { PipelineWorker: workerKeys } }],
  PipelineWorker: [workerKeys, workerOptionHints],
  "PipelineQueue.map": [
    distributedMapKeys,
    { ...mapOptionHints, siblings: { stream: distributedStreamKeys } },
  ],
  "PipelineQueue.stream": [distributedStreamKeys, streamOptionHints],
  openTelemetryMiddleware: [
    otelMiddlewareKeys,
    { ...openTelemetryMiddlewareOptionHints, siblings: { openTelemetryRunSpan: runSpanKeys } },
  ],
  openTelemetryRunSpan: [
    runSpanKeys,
    {
      ...openTelemetryRunSpanOptionHints,
      siblings: { openTelemetryMiddleware: otelMiddlewareKeys },
    },
  ],
  tracedRun: [
    tracedRunKeys,
    { ...tracedRunOptionHints, siblings: { openTelemetryMiddleware: otelMiddlewareKeys } },
  ],
} satisfies Record<string, [object, KeyHints]>;

/** The message `form` gives for `options`, or "accepted". */
function messageOf(form: keyof typeof forms, options: object): string {
  const [known, hints] = forms[form];
  try {
    rejectUnknownKeys(options, known, hints);
    return "accepted";
  } catch (error) {
    expect(error).toBeInstanceOf(TypeError);
    return (error as TypeError).message;
  }
}

describe("unknown option hints: the cases a newcomer hit", () => {
  it("names retryDelay for a Stage's delay", () => {
    expect(messageOf("Stage", { delay: 200 })).toBe(
      'unknown option "delay" (did you mean "retryDelay"?)',
    );
  });

  it("says that map's ordered is an option of stream", () => {
    expect(messageOf("map", { ordered: false })).toBe(
      'unknown option "ordered" ("ordered" is an option of stream, not map)',
    );
    expect(messageOf("mapSettled", { settled: true })).toBe(
      'unknown option "settled" ("settled" is an option of stream, not mapSettled)',
    );
  });

  it("names context for run's ctx", () => {
    expect(messageOf("run", { ctx: {} })).toBe('unknown option "ctx" (did you mean "context"?)');
  });

  it("names a nested key with its path, and the suggestion too", () => {
    expect(messageOf("perKey", { key: String, max: 2 })).toBe(
      'unknown option "perKey.max" (did you mean "perKey.concurrency"?)',
    );
    expect(messageOf("perKey", { key: String, concurrncy: 2 })).toBe(
      'unknown option "perKey.concurrncy" (did you mean "perKey.concurrency"?)',
    );
    expect(messageOf("perKey", { colour: "red" })).toBe('unknown option "perKey.colour"');
    expect(messageOf("rateLimit", { limt: 10, interval: 1_000 })).toBe(
      'unknown option "rateLimit.limt" (did you mean "rateLimit.limit"?)',
    );
  });
});

describe("unknown option hints: more of the same kind", () => {
  it("still finds the known key a typo means", () => {
    expect(messageOf("Stage", { retry: 3 })).toBe(
      'unknown option "retry" (did you mean "retries"?)',
    );
    expect(messageOf("map", { concurency: 4 })).toBe(
      'unknown option "concurency" (did you mean "concurrency"?)',
    );
    expect(messageOf("run", { sginal: undefined })).toBe(
      'unknown option "sginal" (did you mean "signal"?)',
    );
    expect(messageOf("stream", { orderd: false })).toBe(
      'unknown option "orderd" (did you mean "ordered"?)',
    );
    expect(messageOf("RateLimiter", { intervall: 2 })).toBe(
      'unknown option "intervall" (did you mean "interval"?)',
    );
  });

  it("names the known key of an alias from another library, ignoring case", () => {
    expect(messageOf("Stage", { maxDelay: 1_000 })).toBe(
      'unknown option "maxDelay" (did you mean "maxRetryDelay"?)',
    );
    expect(messageOf("Stage", { minTimeout: 100 })).toBe(
      'unknown option "minTimeout" (did you mean "retryDelay"?)',
    );
    expect(messageOf("Stage", { Delay: 200 })).toBe(
      'unknown option "Delay" (did you mean "retryDelay"?)',
    );
    expect(messageOf("map", { limit: 4 })).toBe(
      'unknown option "limit" (did you mean "concurrency"?)',
    );
    expect(messageOf("CircuitBreaker", { resetTimeout: 30_000 })).toBe(
      'unknown option "resetTimeout" (did you mean "cooldown"?)',
    );
    expect(messageOf("RateLimiter", { max: 10 })).toBe(
      'unknown option "max" (did you mean "limit"?)',
    );
    expect(messageOf("timeoutMiddleware", { ms: 10 })).toBe(
      'unknown option "ms" (did you mean "timeout"?)',
    );
    expect(messageOf("loggingMiddleware", { logLevel: "debug" })).toBe(
      'unknown option "logLevel" (did you mean "level"?)',
    );
    expect(messageOf("PipelineWorker", { name: "q" })).toBe(
      'unknown option "name" (did you mean "queueName"?)',
    );
    expect(messageOf("tracedRun", { ctx: {} })).toBe(
      'unknown option "ctx" (did you mean "context"?)',
    );
  });

  it("accepts what the retry middleware keeps as deprecated names", () => {
    expect(messageOf("retryMiddleware", { delay: 100, maxDelay: 1_000 })).toBe("accepted");
    expect(messageOf("retryMiddleware", { factor: 2 })).toBe(
      'unknown option "factor" (did you mean "backoff"?)',
    );
  });

  it("ignores an alias whose target the form does not have", () => {
    // The batch aliases serve the distributed map too, which has no concurrency…
    expect(messageOf("PipelineQueue.map", { limit: 4 })).toBe('unknown option "limit"');
    // …while its batchId aliases mean nothing to the core's map.
    expect(messageOf("PipelineQueue.map", { jobId: "nightly" })).toBe(
      'unknown option "jobId" (did you mean "batchId"?)',
    );
    expect(messageOf("map", { jobId: "nightly" })).toBe('unknown option "jobId"');
  });

  it("says which sibling form takes a key, also for a typo of it", () => {
    expect(messageOf("run", { concurrency: 4 })).toBe(
      'unknown option "concurrency" ("concurrency" is an option of map, not run)',
    );
    expect(messageOf("Pipeline", { retries: 3 })).toBe(
      'unknown option "retries" ("retries" is an option of Stage, not Pipeline)',
    );
    expect(messageOf("Pipeline", { context: {} })).toBe(
      'unknown option "context" ("context" is an option of run, not Pipeline)',
    );
    expect(messageOf("Stage", { beforeStage: () => 0 })).toBe(
      'unknown option "beforeStage" ("beforeStage" is an option of Pipeline, not Stage)',
    );
    expect(messageOf("PipelineQueue", { queueName: "q", concurrency: 16 })).toBe(
      'unknown option "concurrency" ("concurrency" is an option of PipelineWorker, not PipelineQueue)',
    );
    expect(messageOf("PipelineQueue.map", { ordered: false })).toBe(
      'unknown option "ordered" ("ordered" is an option of stream, not map)',
    );
    expect(messageOf("openTelemetryMiddleware", { spanName: "x" })).toBe(
      'unknown option "spanName" ("spanName" is an option of openTelemetryRunSpan, not openTelemetryMiddleware)',
    );
    expect(messageOf("map", { orderd: false })).toBe(
      'unknown option "orderd" (did you mean "ordered"? "ordered" is an option of stream, not map)',
    );
  });

  it("prefers a known key's typo to a sibling's", () => {
    // "signl" is one edit from run's "signal", and not a key of map's that run lacks.
    expect(messageOf("run", { signl: undefined })).toBe(
      'unknown option "signl" (did you mean "signal"?)',
    );
  });

  it("leaves out the form's name when the hints do not give it", () => {
    expect(unknownKeyMessage("ordered", mapKeys, { siblings: { stream: streamKeys } })).toBe(
      'unknown option "ordered" ("ordered" is an option of stream)',
    );
  });
});

describe("unknown option hints: without hints, as before", () => {
  it("gives the close known key, or nothing", () => {
    expect(() => {
      rejectUnknownKeys({ retry: 1 }, stageKeys);
    }).toThrow(new TypeError('unknown option "retry" (did you mean "retries"?)'));
    expect(() => {
      rejectUnknownKeys({ delay: 1 }, stageKeys);
    }).toThrow(new TypeError('unknown option "delay"'));
    expect(() => {
      rejectUnknownKeys({ ordered: false }, mapKeys, {});
    }).toThrow(new TypeError('unknown option "ordered"'));
  });

  it("passes hints on through optionsObject", () => {
    expect(() => optionsObject("perKey", { max: 1 }, perKeyKeys, perKeyOptionHints)).toThrow(
      new TypeError('unknown option "perKey.max" (did you mean "perKey.concurrency"?)'),
    );
    expect(() => optionsObject("options", { max: 1 }, perKeyKeys)).toThrow(
      new TypeError('unknown option "max"'),
    );
    expect(optionsObject("options", { key: String }, perKeyKeys, perKeyOptionHints)).toEqual({
      key: String,
    });
  });

  it("checks own string keys only, whatever the hints", () => {
    const options = Object.create({ delay: 1 }) as Record<PropertyKey, unknown>;
    options[Symbol("delay")] = 1;
    options.retries = 2;
    expect(messageOf("Stage", options)).toBe("accepted");
  });
});

describe("the hint data", () => {
  it("maps every alias to a key of the form it is given with, and never shadows a key", () => {
    for (const [form, [known, hints]] of Object.entries(forms)) {
      for (const [alias, target] of Object.entries(hints.aliases ?? {})) {
        expect(Object.hasOwn(known, alias), `${form}: alias ${alias} is a key`).toBe(false);
        // Shared alias tables may name keys of other forms (see the batch aliases): only the
        // forms that have the target get the suggestion, which the cases above check.
        if (!Object.hasOwn(known, target)) continue;
        expect(messageOf(form as keyof typeof forms, { [alias]: 1 }), form).toBe(
          `unknown option ${JSON.stringify((hints.prefix ?? "") + alias)} (did you mean ${JSON.stringify((hints.prefix ?? "") + target)}?)`,
        );
      }
    }
  });
});
