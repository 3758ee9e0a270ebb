/**
 * Distributed batches for `async-pipeline`, on BullMQ and Redis: {@link PipelineQueue} gives a
 * pipeline's `map`, `mapSettled` and `stream` whose items run in {@link PipelineWorker}s on any
 * number of processes and machines. Needs `bullmq` and `ioredis` (optional peer dependencies:
 * the other entry points never load them).
 *
 * @example
 * ```ts
 * import { PipelineQueue, PipelineWorker } from "async-pipeline/bullmq";
 * ```
 *
 * @packageDocumentation
 */

export { PipelineQueue } from "./queue.js";
export type {
  DistributedMapOptions,
  DistributedStreamOptions,
  PipelineQueueOptions,
} from "./queue-options.js";
export { PipelineWorker } from "./worker.js";
export type { PipelineWorkerOptions } from "./worker-options.js";
export { BatchInUseError, PipelineMismatchError, RedisUnavailableError } from "./errors.js";
export type { Connection } from "./connection.js";
export type { Context, Pipeline, Progress } from "../index.js";
// Not exported on purpose: the wire format (job payloads, result records, key names) and the
// batch loop. They may change in any release; producer and workers must run the same version.
