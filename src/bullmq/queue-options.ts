/**
 * The options of {@link PipelineQueue} and of its batches, with the lists of their keys (an
 * unknown key is a `TypeError` naming the key meant).
 */
import type { Context, Progress } from "../index.js";
import type { KeyHints, OptionKeys } from "../internal/known-keys.js";
import {
  mapOptionHints,
  mapSettledOptionHints,
  queueOptionHints,
  streamOptionHints,
} from "../internal/option-hints.js";
import type { BatchForm } from "../options/batch.js";
import type { Connection } from "./connection.js";
import { workerOptionKeys } from "./worker-options.js";

/**
 * Options of {@link PipelineQueue}.
 *
 * @example
 * ```ts
 * import type { PipelineQueueOptions } from "async-pipeline/bullmq";
 *
 * const options: PipelineQueueOptions = { queueName: "pricing", connection: { port: 6379 } };
 * ```
 */
export interface PipelineQueueOptions {
  /**
   * The BullMQ queue the workers take jobs from (their `queueName`).
   * @example
   * ```ts
   * const options = { queueName: "pricing" };
   * ```
   */
  queueName: string;
  /**
   * ioredis options, an ioredis instance (left open by `close()`), or a `redis://` or
   * `rediss://` URL.
   * @example
   * ```ts
   * const options = { connection: process.env.REDIS_URL ?? "redis://127.0.0.1:6379" };
   * ```
   */
  connection: Connection;
  /**
   * BullMQ's key prefix (the workers' `prefix`).
   * @default "bull"
   * @example
   * ```ts
   * const options = { prefix: "pricing-app" };
   * ```
   */
  prefix?: string | undefined;
  /**
   * ms to wait for Redis before a batch rejects with a `RedisUnavailableError`.
   * @default 10_000
   * @example
   * ```ts
   * const options = { connectTimeout: 2_000 };
   * ```
   */
  connectTimeout?: number | undefined;
  /**
   * ms a producer's hold on a running batch lasts without renewal (it renews it every third
   * of that): a second producer that starts the same `batchId` meanwhile rejects with a
   * `BatchInUseError`, and once a producer has died, its batch can be resumed after at most
   * this long.
   * @default 30_000
   * @example
   * ```ts
   * const options = { lockDuration: 10_000 };
   * ```
   */
  lockDuration?: number | undefined;
  /**
   * The pipeline's version: workers run a job only when their `version` (and stage names) are
   * the producer's, and fail it with a `PipelineMismatchError` otherwise.
   * @default undefined (no version: only the stage names are compared)
   * @example
   * ```ts
   * const options = { version: process.env.GIT_COMMIT };
   * ```
   */
  version?: string | undefined;
  /**
   * The default of every batch's `keepFor` (see {@link DistributedMapOptions.keepFor}).
   * @default 604_800_000 (7 days)
   * @example
   * ```ts
   * const options = { keepFor: 86_400_000 }; // a day
   * ```
   */
  keepFor?: number | undefined;
  /**
   * The default of every batch's `outageTimeout` (see
   * {@link DistributedMapOptions.outageTimeout}).
   * @default 60_000
   * @example
   * ```ts
   * const options = { outageTimeout: 300_000 };
   * ```
   */
  outageTimeout?: number | undefined;
  /**
   * The default of every batch's `maxItemBytes` (see
   * {@link DistributedMapOptions.maxItemBytes}).
   * @default 16_777_216 (16 MiB)
   * @example
   * ```ts
   * const options = { maxItemBytes: 1_048_576 };
   * ```
   */
  maxItemBytes?: number | undefined;
}

export const queueOptionKeys = {
  queueName: true,
  connection: true,
  prefix: true,
  connectTimeout: true,
  lockDuration: true,
  version: true,
  keepFor: true,
  outageTimeout: true,
  maxItemBytes: true,
} as const satisfies OptionKeys<PipelineQueueOptions>;

/**
 * Options of {@link PipelineQueue.map} and {@link PipelineQueue.mapSettled}.
 *
 * @example
 * ```ts
 * import type { DistributedMapOptions } from "async-pipeline/bullmq";
 *
 * const options: DistributedMapOptions = { window: 500, batchId: "nightly-2026-12-01" };
 * ```
 */
export interface DistributedMapOptions<C extends object = Context> {
  /**
   * A template sent with every job (as JSON); each item's run on a worker gets its own copy.
   * @default a new empty object per item
   * @example
   * ```ts
   * const options = { context: { tenant: "acme" } };
   * ```
   */
  context?: C | undefined;
  /**
   * Aborts the batch: the promise rejects with `signal.reason` at once, whatever state Redis
   * is in; waiting jobs are then removed and running ones cancelled (their `call.signal`
   * aborts on the worker), and `queue.close()` waits for that cleanup. A named batch keeps
   * its finished results, so that the same call resumes it.
   * @default undefined
   * @example
   * ```ts
   * const options = { signal: AbortSignal.timeout(3_600_000) };
   * ```
   */
  signal?: AbortSignal | undefined;
  /**
   * Called with a frozen `{ done, failed, inFlight, total }` after results arrive, and once
   * more before the batch settles. `inFlight` counts the batch's jobs in Redis (waiting or
   * running), at most `window`. Its failures are ignored.
   * @default undefined
   * @example
   * ```ts
   * const options = { onProgress: ({ done, total }: { done: number; total?: number | undefined }) => console.log(done, total) };
   * ```
   */
  onProgress?: ((progress: Progress) => unknown) | undefined;
  /**
   * At most this many items of the batch are taken from the input and not yet handed to the
   * caller: jobs in Redis (waiting, running, or finished and not yet collected), and results
   * a `stream` holds (behind a slow item, in input order). The input is read no further ahead.
   * @default 1_000
   * @example
   * ```ts
   * const options = { window: 10_000 };
   * ```
   */
  window?: number | undefined;
  /**
   * Names the batch, which makes it resumable. A batch that did not settle (its producer died,
   * its `signal` aborted, it failed fast, the queue was closed) keeps its finished results in
   * Redis for `keepFor` ms; the same call with the same `batchId` and the same input then
   * collects them and runs only the rest. One producer at a time: a second one rejects with a
   * `BatchInUseError`. No `:` allowed.
   * @default a random id (the batch deletes everything however it ends)
   * @example
   * ```ts
   * const options = { batchId: "nightly-2026-12-01" };
   * ```
   */
  batchId?: string | undefined;
  /**
   * ms a named batch's resume state (its finished results) stays in Redis after the batch
   * was interrupted or its producer died. `queue.discard(batchId)` deletes it sooner.
   * @default the queue's `keepFor` (7 days)
   * @example
   * ```ts
   * const options = { keepFor: 3_600_000 }; // an hour
   * ```
   */
  keepFor?: number | undefined;
  /**
   * ms the batch waits for an unreachable Redis (BullMQ reconnects meanwhile) before it
   * rejects with a `RedisUnavailableError`.
   * @default the queue's `outageTimeout` (60_000)
   * @example
   * ```ts
   * const options = { outageTimeout: 600_000 }; // ride out a failover
   * ```
   */
  outageTimeout?: number | undefined;
  /**
   * The largest item, as JSON, in bytes: a larger one fails alone with a `RangeError` naming
   * its index and size, instead of failing the whole enqueue.
   * @default the queue's `maxItemBytes` (16 MiB)
   * @example
   * ```ts
   * const options = { maxItemBytes: 65_536 };
   * ```
   */
  maxItemBytes?: number | undefined;
}

export const mapOptionKeys = {
  context: true,
  signal: true,
  onProgress: true,
  window: true,
  batchId: true,
  keepFor: true,
  outageTimeout: true,
  maxItemBytes: true,
} as const satisfies OptionKeys<DistributedMapOptions>;

/**
 * Options of {@link PipelineQueue.stream}: those of `map`, plus how results are delivered.
 *
 * @example
 * ```ts
 * import type { DistributedStreamOptions } from "async-pipeline/bullmq";
 *
 * const options: DistributedStreamOptions = { ordered: false, settled: true };
 * ```
 */
export interface DistributedStreamOptions<
  C extends object = Context,
> extends DistributedMapOptions<C> {
  /**
   * `true`: results in input order. `false`: as workers finish them.
   * @default true
   * @example
   * ```ts
   * const options = { ordered: false };
   * ```
   */
  ordered?: boolean | undefined;
  /**
   * `true`: yield a `PromiseSettledResult` per item and go on after failures. `false`: end
   * the stream with the first failure, like `map`.
   * @default false
   * @example
   * ```ts
   * const options = { settled: true };
   * ```
   */
  settled?: boolean | undefined;
}

export const streamOptionKeys = {
  ...mapOptionKeys,
  ordered: true,
  settled: true,
} as const satisfies OptionKeys<DistributedStreamOptions>;

/** `PipelineQueue`'s options: a worker's option is named as one. */
export const queueHints: KeyHints = {
  ...queueOptionHints,
  siblings: { PipelineWorker: workerOptionKeys },
};

/** `map`'s options: a stream-only option (`ordered`, …) is named as one. */
export const distributedMapForm: BatchForm = {
  known: mapOptionKeys,
  hints: { ...mapOptionHints, siblings: { stream: streamOptionKeys } },
};

/** `mapSettled`'s options, likewise. */
export const distributedMapSettledForm: BatchForm = {
  known: mapOptionKeys,
  hints: { ...mapSettledOptionHints, siblings: { stream: streamOptionKeys } },
};

/** `stream`'s options. */
export const distributedStreamForm: BatchForm = {
  known: streamOptionKeys,
  hints: streamOptionHints,
};
