/**
 * What the unknown-option message of each options object may suggest beyond the close known
 * keys (see {@link KeyHints}): the form's name and the aliases users bring from elsewhere (p-map,
 * p-limit, p-retry, cockatiel, opossum, BullMQ, the Python original, the library's own former
 * names). Each entry goes with one option-key list, as the third argument of
 * `rejectUnknownKeys` / the fourth of `optionsObject`; a form's sibling forms are added where
 * their key lists are (`{ ...mapOptionHints, siblings: { stream: streamOptionKeys } }`), so that
 * the lists themselves are never copied here. An alias whose target the list does not hold is
 * ignored, so an entry can never suggest a key that does not exist.
 */
import type { KeyHints } from "./known-keys.js";

/** Names of the retry options in p-retry. */
const retryAliases = {
  minTimeout: "retryDelay",
  maxTimeout: "maxRetryDelay",
  factor: "backoff",
  randomize: "jitter",
  onFailedAttempt: "onRetry",
} as const;

/** Names of a run's options elsewhere. */
const runAliases = { ctx: "context" } as const;

/**
 * Names of a batch's options elsewhere: p-limit's `limit`, `parallelism`, a job id for the
 * distributed batch's `batchId`, a store or a key function for the checkpoint options. Shared by
 * the core's and the distributed batch forms: an alias of a key that a form does not have is
 * ignored.
 */
const batchAliases = {
  ...runAliases,
  limit: "concurrency",
  parallelism: "concurrency",
  maxConcurrency: "concurrency",
  jobId: "batchId",
  id: "batchId",
  store: "checkpoint",
  checkpointStore: "checkpoint",
  journal: "checkpoint",
  key: "itemKey",
  keyOf: "itemKey",
  getKey: "itemKey",
  idOf: "itemKey",
  retryFailures: "retryFailed",
  rerunFailed: "retryFailed",
  pipelineVersion: "version",
} as const;

/** `new Stage(name, handler, options)`. Siblings: `Pipeline` (its constructor's keys). */
export const stageOptionHints: KeyHints = {
  form: "Stage",
  // `delay` and `maxDelay`: `retryMiddleware`'s former names (still its deprecated keys).
  aliases: {
    ...retryAliases,
    delay: "retryDelay",
    maxDelay: "maxRetryDelay",
    timeoutMs: "timeout",
  },
};

/** `new Pipeline(stages, options)`. Siblings: `Stage` (its keys), `run` (its keys). */
export const pipelineOptionHints: KeyHints = { form: "Pipeline" };

/** `stage.run` and `pipeline.run` options. Siblings: `map` (its keys). */
export const runOptionHints: KeyHints = { form: "run", aliases: runAliases };

/** `map` options (of `Pipeline` and of `PipelineQueue`). Siblings: `stream` (its keys). */
export const mapOptionHints: KeyHints = { form: "map", aliases: batchAliases };

/** `mapSettled` options (of `Pipeline` and of `PipelineQueue`). Siblings: `stream` (its keys). */
export const mapSettledOptionHints: KeyHints = { form: "mapSettled", aliases: batchAliases };

/** `stream` options (of `Pipeline` and of `PipelineQueue`). */
export const streamOptionHints: KeyHints = {
  form: "stream",
  aliases: { ...batchAliases, highWaterMark: "buffer", preserveOrder: "ordered" },
};

/** The `perKey` batch option, a nested object. */
export const perKeyOptionHints: KeyHints = {
  prefix: "perKey.",
  aliases: { max: "concurrency", limit: "concurrency", keyOf: "key", by: "key" },
};

/**
 * `new RateLimiter(options)`, no prefix; the stage's `rateLimit: { … }` option is the same
 * object nested: `{ ...rateLimitOptionHints, prefix: "rateLimit." }`.
 */
export const rateLimitOptionHints: KeyHints = {
  aliases: { max: "limit", duration: "interval", per: "interval", intervalMs: "interval" },
};

/** `new CircuitBreaker(options)`: opossum's and cockatiel's names. */
export const circuitBreakerOptionHints: KeyHints = {
  aliases: {
    resetTimeout: "cooldown",
    halfOpenAfter: "cooldown",
    failureThreshold: "threshold",
    onStateChanged: "onStateChange",
  },
};

/** `retryMiddleware(options)`: p-retry's names (its own former names are still keys). */
export const retryMiddlewareOptionHints: KeyHints = {
  form: "retryMiddleware",
  aliases: retryAliases,
};

/** `timeoutMiddleware(options)`. */
export const timeoutMiddlewareOptionHints: KeyHints = {
  form: "timeoutMiddleware",
  aliases: { ms: "timeout", timeoutMs: "timeout", milliseconds: "timeout" },
};

/** `loggingMiddleware(options)`. */
export const loggingOptionHints: KeyHints = {
  form: "loggingMiddleware",
  aliases: { log: "logger", logLevel: "level" },
};

/** Names of the BullMQ connection options elsewhere, shared by the producer and the workers. */
const bullmqAliases = { name: "queueName", queue: "queueName", redis: "connection" } as const;

/** `PipelineQueue` (producer) options. Siblings: `PipelineWorker` (its keys). */
export const queueOptionHints: KeyHints = { form: "PipelineQueue", aliases: bullmqAliases };

/** `PipelineWorker` options. */
export const workerOptionHints: KeyHints = { form: "PipelineWorker", aliases: bullmqAliases };

/** `openTelemetryMiddleware(options)`. Siblings: `openTelemetryRunSpan` (its keys). */
export const openTelemetryMiddlewareOptionHints: KeyHints = {
  form: "openTelemetryMiddleware",
  aliases: { prefix: "spanPrefix", name: "tracerName" },
};

/** `openTelemetryRunSpan(options)`. Siblings: `openTelemetryMiddleware` (its keys). */
export const openTelemetryRunSpanOptionHints: KeyHints = {
  form: "openTelemetryRunSpan",
  aliases: { name: "spanName", attrs: "attributes" },
};

/** `tracedRun(pipeline, input, options)`. Siblings: `openTelemetryMiddleware` (its keys). */
export const tracedRunOptionHints: KeyHints = {
  form: "tracedRun",
  aliases: { ...runAliases, name: "spanName", attrs: "attributes" },
};
