/**
 * The errors of distributed batches, each a {@link PipelineError} branded so that `instanceof`
 * works whichever build (ESM or CommonJS) created it.
 */
import { PipelineError } from "../index.js";
import { brandClass } from "../errors/brand.js";

/**
 * Redis could not be reached: not within `connectTimeout` ms when a batch or a worker started,
 * or not for `outageTimeout` ms while a batch ran.
 *
 * @example
 * ```ts
 * import { RedisUnavailableError } from "async-pipeline/bullmq";
 *
 * function explain(error: unknown): string {
 *   return error instanceof RedisUnavailableError ? `no Redis at ${error.address}` : String(error);
 * }
 * ```
 */
export class RedisUnavailableError extends PipelineError {
  /** Always `"RedisUnavailableError"`. */
  override name = "RedisUnavailableError" as const;

  /** The address tried, such as `127.0.0.1:6379` or a socket path. */
  readonly address: string;

  /** How long the library waited, in ms. */
  readonly timeout: number;

  /**
   * @param address - the Redis address
   * @param timeout - how long the library waited, in ms
   * @param cause - the last connection error seen, if any
   * @param during - `"connect"`: Redis was never reached; `"outage"`: it went away mid-batch
   */
  constructor(
    address: string,
    timeout: number,
    cause: unknown,
    during: "connect" | "outage" = "connect",
  ) {
    const reason = cause instanceof Error ? `: ${cause.message}` : "";
    super(
      during === "connect"
        ? `Could not connect to Redis at ${address} within ${String(timeout)} ms${reason}`
        : `Redis at ${address} did not answer for ${String(timeout)} ms (outageTimeout)${reason}`,
      { cause },
    );
    this.address = address;
    this.timeout = timeout;
  }
}

brandClass(RedisUnavailableError, "RedisUnavailableError");

/**
 * Another producer is running the batch: a second `map`, `mapSettled` or `stream` with the
 * `batchId` of a running batch (a scheduler's retry, say), or a `discard` of it. The running
 * batch is not touched. A producer that died holds its batch for at most the queue's
 * `lockDuration`; a producer that lost its hold that way (it was paused past it, and another
 * took the batch over) rejects with this error too.
 *
 * @example
 * ```ts
 * import { BatchInUseError } from "async-pipeline/bullmq";
 *
 * try {
 *   await queue.map(lines, { batchId: "nightly-2026-12-01" });
 * } catch (error) {
 *   if (error instanceof BatchInUseError) console.log(`${error.batchId} is already running`);
 *   else throw error;
 * }
 * ```
 */
export class BatchInUseError extends PipelineError {
  /** Always `"BatchInUseError"`. */
  override name = "BatchInUseError" as const;

  /** The batch's id. */
  readonly batchId: string;

  /**
   * @param batchId - the batch's id
   * @param how - `"running"`: another producer runs it; `"taken"`: this producer had it and
   *   another took it over; `"gone"`: this producer's hold lapsed and the batch is gone from
   *   Redis (another producer may have run it to the end)
   */
  constructor(batchId: string, how: "running" | "taken" | "gone" = "running") {
    super(
      how === "running"
        ? `Batch "${batchId}" is being run by another producer: wait for it to end (a producer that died holds it for at most the queue's lockDuration)`
        : how === "taken"
          ? `Batch "${batchId}" was taken over by another producer: this one could not renew its hold for longer than the queue's lockDuration`
          : `Batch "${batchId}" is gone from Redis after this producer could not renew its hold for longer than the queue's lockDuration: another producer may have run it to the end (or Redis lost it)`,
    );
    this.batchId = batchId;
  }
}

brandClass(BatchInUseError, "BatchInUseError");

/**
 * A worker refused a job because the producer's pipeline is not its own: other stage names,
 * or another `version`. The item fails with it (on the producer, `instanceof` works) instead of
 * running other code.
 *
 * @example
 * ```ts
 * import { PipelineMismatchError } from "async-pipeline/bullmq";
 *
 * const settled = await queue.mapSettled(lines);
 * for (const entry of settled) {
 *   if (entry.status === "rejected" && entry.reason instanceof PipelineMismatchError) {
 *     console.log(`deploy in progress: ${entry.reason.producerVersion} vs ${entry.reason.workerVersion}`);
 *   }
 * }
 * ```
 */
export class PipelineMismatchError extends PipelineError {
  /** Always `"PipelineMismatchError"`. */
  override name = "PipelineMismatchError" as const;

  /** The producer's stage names, in order. */
  readonly producerStages: readonly string[];
  /** The worker's stage names, in order. */
  readonly workerStages: readonly string[];
  /** The producer's `version` (`undefined` when it set none). */
  readonly producerVersion: string | undefined;
  /** The worker's `version` (`undefined` when it set none). */
  readonly workerVersion: string | undefined;

  /**
   * @param producer - the producer's stage names and version
   * @param worker - the worker's stage names and version
   */
  constructor(
    producer: { readonly stages: readonly string[]; readonly version: string | undefined },
    worker: { readonly stages: readonly string[]; readonly version: string | undefined },
  ) {
    const show = (version: string | undefined) =>
      version === undefined ? "no version" : `version ${JSON.stringify(version)}`;
    const stages = (names: readonly string[]) => JSON.stringify(names);
    super(
      producer.version === worker.version
        ? `The job was enqueued for a pipeline with stages ${stages(producer.stages)}, but this worker runs ${stages(worker.stages)}: run the same pipeline on the producer and the workers`
        : `The job was enqueued by a producer with ${show(producer.version)} (stages ${stages(producer.stages)}), but this worker runs ${show(worker.version)} (stages ${stages(worker.stages)}): run the same version on the producer and the workers`,
    );
    this.producerStages = producer.stages;
    this.workerStages = worker.stages;
    this.producerVersion = producer.version;
    this.workerVersion = worker.version;
  }
}

brandClass(PipelineMismatchError, "PipelineMismatchError");

/**
 * The error an item fails with, or `map` rejects with, when Redis lost the batch's jobs or
 * results (restarted without persistence, or evicting keys), as a {@link PipelineError}.
 */
export function dataLost(what: string): PipelineError {
  return new PipelineError(
    `Redis lost ${what}: was it restarted without persistence, or does it evict keys (maxmemory-policy)? The batch's jobs and results must stay in Redis until it settles`,
  );
}
