import type { OptionKeys } from "../internal/known-keys.js";
import { Queue } from "bullmq";
import type { Context, Pipeline, Progress } from "../index.js";
import {
  optionalBoolean,
  optionalContext,
  optionalFunction,
  optionalSignal,
  optionsObject,
} from "../internal/validate.js";
import { Batch, type Backend, type BatchSettings } from "./batch.js";
import {
  closeClient,
  ConnectionPool,
  openClient,
  whenReady,
  type Client,
  type Connection,
} from "./connection.js";
import { batchIdOf, connectTimeoutOf, optionalCount, prefixOf, queueNameOf } from "./options.js";
import { jsonProblem, Keys, type JobPayload } from "./wire.js";

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
   * ioredis options, or an ioredis instance (left open by `close()`).
   * @example
   * ```ts
   * const options = { connection: { host: "redis.internal", port: 6379 } };
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
}

const queueOptionKeys = {
  queueName: true,
  connection: true,
  prefix: true,
  connectTimeout: true,
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
   * Aborts the batch: the promise rejects with `signal.reason`, waiting jobs are removed and
   * running ones cancelled (their `call.signal` aborts on the worker).
   * @default undefined
   * @example
   * ```ts
   * const options = { signal: AbortSignal.timeout(3_600_000) };
   * ```
   */
  signal?: AbortSignal | undefined;
  /**
   * Called with a frozen `{ done, failed, inFlight, total }` after results arrive, and once
   * more before the batch settles. `inFlight` counts the batch's jobs in Redis. Its failures
   * are ignored.
   * @default undefined
   * @example
   * ```ts
   * const options = { onProgress: ({ done, total }: { done: number; total?: number | undefined }) => console.log(done, total) };
   * ```
   */
  onProgress?: ((progress: Progress) => unknown) | undefined;
  /**
   * At most this many jobs of the batch exist in Redis at once (waiting, running, or finished
   * and not yet collected); the input is read no further ahead.
   * @default 1_000
   * @example
   * ```ts
   * const options = { window: 10_000 };
   * ```
   */
  window?: number | undefined;
  /**
   * Names the batch. A producer started again with the same `batchId` and the same input
   * (after the first one died) collects the results already in Redis and runs only the rest.
   * No `:` allowed.
   * @default a random id
   * @example
   * ```ts
   * const options = { batchId: "nightly-2026-12-01" };
   * ```
   */
  batchId?: string | undefined;
}

const mapOptionKeys = {
  context: true,
  signal: true,
  onProgress: true,
  window: true,
  batchId: true,
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

const streamOptionKeys = {
  ...mapOptionKeys,
  ordered: true,
  settled: true,
} as const satisfies OptionKeys<DistributedStreamOptions>;

/**
 * The batch forms of a pipeline, run by {@link PipelineWorker}s in other processes or on other
 * machines: one BullMQ job per item, results collected from Redis. The producer never runs a
 * stage.
 *
 * @typeParam I - the pipeline's input type
 * @typeParam O - the pipeline's output type
 * @typeParam C - the pipeline's context type
 * @example
 * ```ts
 * import { Pipeline, Stage } from "async-pipeline";
 * import { PipelineQueue } from "async-pipeline/bullmq";
 *
 * const pipeline = new Pipeline([new Stage("double", (value: number) => value * 2)]);
 * const queue = new PipelineQueue(pipeline, {
 *   queueName: "doubling",
 *   connection: { host: "127.0.0.1", port: 6379 },
 * });
 * const doubled = await queue.map([1, 2, 3]); // [2, 4, 6], computed by the workers
 * await queue.close();
 * ```
 */
export class PipelineQueue<I = unknown, O = unknown, C extends object = Context> {
  /** The BullMQ `Queue` underneath (its jobs' data is the library's own wire format). */
  readonly queue: Queue;
  readonly #client: Client;
  readonly #backend: Backend;
  readonly #blocking: ConnectionPool;
  #closing: Promise<void> | undefined;

  /**
   * @param pipeline - the pipeline the workers run (only its stage names are used here)
   * @param options - `queueName`, `connection`, `prefix`, `connectTimeout`
   * @throws TypeError or RangeError for a bad option
   */
  constructor(pipeline: Pipeline<I, O, C>, options: PipelineQueueOptions) {
    const queueName = queueNameOf(options, queueOptionKeys);
    const prefix = prefixOf(options.prefix);
    const connectTimeout = connectTimeoutOf(options.connectTimeout);
    this.#client = openClient(options.connection, "connection");
    const queue = new Queue<JobPayload>(queueName, { connection: this.#client.redis, prefix });
    this.queue = queue;
    // Errors surface through the batches (RedisUnavailableError); BullMQ's are repeats of them.
    this.queue.on("error", () => undefined);
    this.#client.redis.on("error", () => undefined);
    const client = this.#client;
    this.#blocking = new ConnectionPool(client);
    this.#backend = {
      queue,
      client,
      blocking: this.#blocking,
      keys: new Keys(prefix, queueName),
      stageNames: pipeline.stages.map((stage) => stage.name),
      connectTimeout,
      async ready() {
        await whenReady(client.redis, connectTimeout);
        await queue.waitUntilReady();
      },
    };
  }

  /**
   * Runs every item on the workers and resolves with the outputs in input order. Fails fast:
   * on the first failure the batch stops everywhere (waiting jobs removed, running ones
   * cancelled) and the promise rejects with that item's error.
   *
   * @param items - the inputs, JSON-safe: any `Iterable` or `AsyncIterable`, read lazily
   * @param options - `window`, `batchId`, `context`, `signal`, `onProgress`
   * @returns the outputs, in input order
   * @example
   * ```ts
   * const prices = await queue.map(lines, { window: 1_000, batchId: "nightly-2026-12-01" });
   * ```
   */
  async map(
    items: Iterable<I> | AsyncIterable<I>,
    options?: DistributedMapOptions<C>,
  ): Promise<O[]> {
    const { batch, size } = this.#batch(items, options, mapOptionKeys);
    const outputs: O[] = [];
    let count = 0;
    for await (const settled of batch.run(items)) {
      for (const { index, result } of settled) {
        if (result?.status === "rejected") throw result.reason;
        if (result !== undefined) outputs[index] = result.value as O;
        count = Math.max(count, index + 1);
      }
    }
    outputs.length = size ?? count;
    return outputs;
  }

  /**
   * Like {@link PipelineQueue.map}, but never rejects for an item's failure: one
   * `PromiseSettledResult` per item, in input order. A failed item's reason is a
   * `StageExecutionError` rebuilt from the worker's.
   *
   * @param items - the inputs, JSON-safe
   * @param options - `window`, `batchId`, `context`, `signal`, `onProgress`
   * @returns `{ status: "fulfilled", value }` or `{ status: "rejected", reason }` per item
   * @example
   * ```ts
   * const settled = await queue.mapSettled(lines);
   * const failed = settled.filter((entry) => entry.status === "rejected");
   * ```
   */
  async mapSettled(
    items: Iterable<I> | AsyncIterable<I>,
    options?: DistributedMapOptions<C>,
  ): Promise<PromiseSettledResult<O>[]> {
    const { batch, size } = this.#batch(items, options, mapOptionKeys);
    const results: PromiseSettledResult<O>[] = [];
    let count = 0;
    for await (const settled of batch.run(items)) {
      for (const { index, result } of settled) {
        if (result !== undefined) results[index] = result as PromiseSettledResult<O>;
        count = Math.max(count, index + 1);
      }
    }
    results.length = size ?? count;
    return results;
  }

  /**
   * Runs every item on the workers and yields the outputs as they arrive: in input order
   * (`ordered: true`, the default) or as workers finish them. Fails fast unless `settled` is
   * set. A yielded result leaves Redis at once, so an endless input runs in bounded memory;
   * leaving the loop early stops the batch everywhere.
   *
   * @param items - the inputs, JSON-safe
   * @param options - `ordered`, `settled`, `window`, `batchId`, `context`, `signal`, `onProgress`
   * @returns an async generator of outputs (or of settled results)
   * @example
   * ```ts
   * for await (const price of queue.stream(lines, { ordered: false })) console.log(price);
   * ```
   */
  stream(
    items: Iterable<I> | AsyncIterable<I>,
    options: DistributedStreamOptions<C> & { settled: true },
  ): AsyncGenerator<PromiseSettledResult<O>, void, undefined>;
  stream(
    items: Iterable<I> | AsyncIterable<I>,
    options?: DistributedStreamOptions<C> & { settled?: false | undefined },
  ): AsyncGenerator<O, void, undefined>;
  stream(
    items: Iterable<I> | AsyncIterable<I>,
    options?: DistributedStreamOptions<C>,
  ): AsyncGenerator<O | PromiseSettledResult<O>, void, undefined>;
  async *stream(
    items: Iterable<I> | AsyncIterable<I>,
    options?: DistributedStreamOptions<C>,
  ): AsyncGenerator<unknown, void, undefined> {
    const { batch } = this.#batch(items, options, streamOptionKeys);
    const ordered = optionalBoolean("ordered", options?.ordered, true);
    const settledMode = optionalBoolean("settled", options?.settled, false);
    const ready = new Map<number, PromiseSettledResult<unknown> | undefined>();
    let next = 0;
    const deliver = (index: number, result: PromiseSettledResult<unknown>): unknown => {
      if (!settledMode && result.status === "rejected") throw result.reason;
      batch.forget(index);
      return settledMode ? result : (result as PromiseFulfilledResult<unknown>).value;
    };
    for await (const settled of batch.run(items)) {
      for (const { index, result } of settled) {
        if (!ordered) {
          if (result !== undefined) yield deliver(index, result);
          continue;
        }
        ready.set(index, result);
        while (ready.has(next)) {
          const entry = ready.get(next);
          ready.delete(next);
          next++;
          if (entry !== undefined) yield deliver(next - 1, entry);
        }
      }
    }
  }

  /**
   * Closes the BullMQ queue and the connections it opened (an ioredis instance passed as
   * `connection` stays open). Calling it again returns the same promise.
   *
   * @example
   * ```ts
   * await queue.close();
   * ```
   */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      await this.queue.close();
      await this.#blocking.close();
      await closeClient(this.#client);
    })();
    return this.#closing;
  }

  #batch(
    items: unknown,
    options: DistributedStreamOptions<C> | undefined,
    known: object,
  ): { batch: Batch; size: number | undefined } {
    const opts = optionsObject<DistributedStreamOptions<C>>("options", options, known) ?? {};
    const context = optionalContext(opts.context);
    if (context !== undefined) {
      const problem = jsonProblem(context, "context");
      if (problem !== undefined) {
        throw new TypeError(`context is not JSON-safe (${problem}): it travels as JSON`);
      }
    }
    const given = batchIdOf(opts.batchId);
    const settings: BatchSettings = {
      batchId: given ?? globalThis.crypto.randomUUID(),
      resumable: given !== undefined,
      window: optionalCount("window", opts.window, 1_000),
      context,
      signal: optionalSignal(opts.signal),
      onProgress: optionalFunction("onProgress", opts.onProgress),
      total: sizeOf(items),
    };
    return { batch: new Batch(this.#backend, settings), size: settings.total };
  }
}

function sizeOf(items: unknown): number | undefined {
  if (Array.isArray(items)) return items.length;
  if (items instanceof Set || items instanceof Map) return items.size;
  return undefined;
}
