/**
 * The options of {@link PipelineWorker}, with the list of their keys (an unknown key is a
 * `TypeError` naming the key meant).
 */
import type { KeyHints, OptionKeys } from "../internal/known-keys.js";
import { workerOptionHints } from "../internal/option-hints.js";
import type { Connection } from "./connection.js";

/**
 * Options of {@link PipelineWorker}.
 *
 * @example
 * ```ts
 * import type { PipelineWorkerOptions } from "async-pipeline/bullmq";
 *
 * const options: PipelineWorkerOptions = {
 *   queueName: "pricing",
 *   connection: { host: "127.0.0.1", port: 6379 },
 *   concurrency: 16,
 * };
 * ```
 */
export interface PipelineWorkerOptions {
  /**
   * The BullMQ queue to take jobs from: the producer's `queueName`.
   * @example
   * ```ts
   * const options = { queueName: "pricing" };
   * ```
   */
  queueName: string;
  /**
   * ioredis options, an ioredis instance (left open by `close()`), or a `redis://` or
   * `rediss://` URL. The library sets `maxRetriesPerRequest: null`, which BullMQ requires, on
   * the connections it opens.
   * @example
   * ```ts
   * const options = { connection: process.env.REDIS_URL ?? "redis://127.0.0.1:6379" };
   * ```
   */
  connection: Connection;
  /**
   * BullMQ's key prefix: the producer's `prefix`.
   * @default "bull"
   * @example
   * ```ts
   * const options = { prefix: "pricing-app" };
   * ```
   */
  prefix?: string | undefined;
  /**
   * How many jobs this worker runs at once.
   * @default 1
   * @example
   * ```ts
   * const options = { concurrency: 16 };
   * ```
   */
  concurrency?: number | undefined;
  /**
   * BullMQ's `lockDuration`: ms a job's lock lasts without renewal; a worker that died is
   * noticed after at most about this long.
   * @default 30_000 (BullMQ's default)
   * @example
   * ```ts
   * const options = { lockDuration: 5_000, stalledInterval: 2_000 };
   * ```
   */
  lockDuration?: number | undefined;
  /**
   * BullMQ's `stalledInterval`: ms between checks for jobs whose worker died.
   * @default 30_000 (BullMQ's default)
   * @example
   * ```ts
   * const options = { stalledInterval: 2_000 };
   * ```
   */
  stalledInterval?: number | undefined;
  /**
   * BullMQ's `maxStalledCount`: how many times a job may be taken over after its worker died
   * before it fails (the producer then gets that failure for the item).
   * @default 1 (BullMQ's default)
   * @example
   * ```ts
   * const options = { maxStalledCount: 3 };
   * ```
   */
  maxStalledCount?: number | undefined;
  /**
   * ms to wait for Redis before `waitUntilReady()` rejects with a `RedisUnavailableError`.
   * @default 10_000
   * @example
   * ```ts
   * const options = { connectTimeout: 2_000 };
   * ```
   */
  connectTimeout?: number | undefined;
  /**
   * Called with the errors BullMQ and Redis report while the worker runs: a lost connection
   * (one per connection and reconnection attempt while Redis is unreachable), a failed lock
   * renewal, a result that could not be written. The same error (class, `code` and message)
   * is passed at most once every 10 s; the next one after that says how many were held back.
   * Its failures are ignored.
   * @default one line on stderr per error, without its stack
   * @example
   * ```ts
   * const options = { onError: (error: unknown) => console.warn("worker:", error) };
   * ```
   */
  onError?: ((error: unknown) => unknown) | undefined;
  /**
   * The pipeline's version. A job is run only by a worker with the producer's stage names and
   * `version`; any other worker fails it with a `PipelineMismatchError` naming both versions.
   * Set it to your release (a git commit, a package version) on both sides, so that a fleet
   * mid-deploy never runs a job with other code.
   * @default undefined (no version: only the stage names are compared)
   * @example
   * ```ts
   * const options = { version: process.env.GIT_COMMIT };
   * ```
   */
  version?: string | undefined;
  /**
   * ms `close()` waits for the jobs it holds to finish. After that (or at once when Redis
   * cannot be reached) it aborts them (`call.signal`), drops its connections and returns:
   * the jobs are not lost, another worker takes them over once their lock expires.
   * @default 30_000
   * @example
   * ```ts
   * const options = { closeTimeout: 10_000 }; // within Kubernetes' 30 s grace period
   * ```
   */
  closeTimeout?: number | undefined;
}

export const workerOptionKeys = {
  queueName: true,
  connection: true,
  prefix: true,
  concurrency: true,
  lockDuration: true,
  stalledInterval: true,
  maxStalledCount: true,
  connectTimeout: true,
  onError: true,
  version: true,
  closeTimeout: true,
} as const satisfies OptionKeys<PipelineWorkerOptions>;

/** `PipelineWorker`'s options: the names used elsewhere for its own. */
export const workerHints: KeyHints = workerOptionHints;
