import { Queue } from "bullmq";
import type { Context, Pipeline } from "../index.js";
import { PipelineError } from "../index.js";
import { jsonProblem } from "../internal/json.js";
import { ResultStream } from "../internal/result-stream.js";
import {
  optionalBoolean,
  optionalContext,
  optionalFunction,
  optionalSignal,
  optionsObject,
} from "../internal/validate.js";
import { Batch, type Backend, type BatchSettings, type Consumer } from "./batch.js";
import {
  address,
  closeClient,
  ConnectionPool,
  openClient,
  whenReady,
  within,
  type Client,
} from "./connection.js";
import { BatchInUseError, RedisUnavailableError } from "./errors.js";
import { Keys, randomBatchId } from "./keys.js";
import {
  batchIdOf,
  connectTimeoutOf,
  optionalCount,
  optionalVersion,
  prefixOf,
  queueNameOf,
} from "./options.js";
import type { BatchForm } from "../options/batch.js";
import {
  distributedMapForm,
  distributedMapSettledForm,
  distributedStreamForm,
  queueHints,
  queueOptionKeys,
  type DistributedMapOptions,
  type DistributedStreamOptions,
  type PipelineQueueOptions,
} from "./queue-options.js";
import { producerScripts } from "./scripts.js";
import { StreamFeed } from "./stream-feed.js";
import type { JobData } from "./wire.js";

/** The defaults of the per-batch options that the queue's options set. */
const DEFAULT_KEEP_FOR = 7 * 24 * 3_600_000;
const DEFAULT_OUTAGE_TIMEOUT = 60_000;
const DEFAULT_MAX_ITEM_BYTES = 16 * 1024 * 1024;
const DEFAULT_LOCK_DURATION = 30_000;

interface BatchDefaults {
  readonly keepFor: number;
  readonly outageTimeout: number;
  readonly maxItemBytes: number;
}

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
 *   connection: "redis://127.0.0.1:6379",
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
  readonly #defaults: BatchDefaults;
  /** The batches running, and those whose cleanup goes on after they settled. */
  readonly #running = new Set<Batch>();
  #lastError: unknown = undefined;
  #closing: Promise<void> | undefined;

  /**
   * @param pipeline - the pipeline the workers run (only its stage names are used here)
   * @param options - `queueName`, `connection`, `prefix`, `version`, timeouts and defaults
   * @throws TypeError or RangeError for a bad option
   */
  constructor(pipeline: Pipeline<I, O, C>, options: PipelineQueueOptions) {
    const queueName = queueNameOf(options, queueOptionKeys, queueHints);
    const prefix = prefixOf(options.prefix);
    const connectTimeout = connectTimeoutOf(options.connectTimeout);
    const lockDuration = optionalCount(
      "lockDuration",
      options.lockDuration,
      DEFAULT_LOCK_DURATION,
      100,
    );
    const version = optionalVersion(options.version);
    this.#defaults = {
      keepFor: optionalCount("keepFor", options.keepFor, DEFAULT_KEEP_FOR),
      outageTimeout: optionalCount("outageTimeout", options.outageTimeout, DEFAULT_OUTAGE_TIMEOUT),
      maxItemBytes: optionalCount("maxItemBytes", options.maxItemBytes, DEFAULT_MAX_ITEM_BYTES),
    };
    // Errors surface through the batches (RedisUnavailableError); the last one is their cause.
    const remember = (error: unknown) => {
      this.#lastError = error;
    };
    this.#client = openClient(options.connection, "connection", remember);
    const client = this.#client;
    const queue = new Queue<JobData>(queueName, { connection: client.redis, prefix });
    this.queue = queue;
    queue.on("error", remember);
    this.#blocking = new ConnectionPool(client, remember);
    this.#backend = {
      queue,
      client,
      blocking: this.#blocking,
      keys: new Keys(prefix, queueName),
      scripts: producerScripts(client.redis),
      stageNames: pipeline.stages.map((stage) => stage.name),
      version,
      connectTimeout,
      lockDuration,
      async ready() {
        await whenReady(client.redis, connectTimeout);
        await queue.waitUntilReady();
      },
      outage: (timeout) =>
        new RedisUnavailableError(address(client.redis), timeout, this.#lastError, "outage"),
    };
  }

  /**
   * Runs every item on the workers and resolves with the outputs in input order. Fails fast:
   * on the first failure the batch stops everywhere (announced first, then waiting jobs
   * removed, running ones cancelled) and the promise rejects with that item's error.
   *
   * @param items - the inputs, JSON-safe: any `Iterable` or `AsyncIterable`, read lazily
   * @param options - `window`, `batchId`, `context`, `signal`, `onProgress`, `keepFor`, …
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
    const settings = this.#settings(items, options, distributedMapForm, true, false);
    const outputs: O[] = [];
    let arrived = 0;
    const batch = this.#start(settings, {
      arrive(index, result) {
        outputs[index] = (result as PromiseFulfilledResult<O>).value;
        arrived++;
      },
      handed: () => arrived,
    });
    await batch.run(items);
    outputs.length = settings.total ?? batch.taken;
    return outputs;
  }

  /**
   * Like {@link PipelineQueue.map}, but never rejects for an item's failure: one
   * `PromiseSettledResult` per item, in input order. A failed item's reason is a
   * `StageExecutionError` rebuilt from the worker's.
   *
   * @param items - the inputs, JSON-safe
   * @param options - `window`, `batchId`, `context`, `signal`, `onProgress`, `keepFor`, …
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
    const settings = this.#settings(items, options, distributedMapSettledForm, false, false);
    const results: PromiseSettledResult<O>[] = [];
    let arrived = 0;
    const batch = this.#start(settings, {
      arrive(index, result) {
        results[index] = result as PromiseSettledResult<O>;
        arrived++;
      },
      handed: () => arrived,
    });
    await batch.run(items);
    results.length = settings.total ?? batch.taken;
    return results;
  }

  /**
   * Runs every item on the workers and yields the outputs as they arrive: in input order
   * (`ordered: true`, the default) or as workers finish them. Fails fast unless `settled` is
   * set. A yielded result leaves Redis at once, so an endless input runs in bounded memory;
   * results held behind a slow item count in `window`. Leaving the loop early (`break`,
   * `return()`, even with a `next()` pending) stops the batch everywhere.
   *
   * @param items - the inputs, JSON-safe
   * @param options - `ordered`, `settled`, `window`, `batchId`, `context`, `signal`, …
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
  stream(
    items: Iterable<I> | AsyncIterable<I>,
    options?: DistributedStreamOptions<C>,
  ): AsyncGenerator<unknown, void, undefined> {
    return new ResultStream((stream) => {
      const ordered = optionalBoolean("ordered", options?.ordered, true);
      const settled = optionalBoolean("settled", options?.settled, false);
      const settings = this.#settings(items, options, distributedStreamForm, !settled, true);
      const feed = new StreamFeed(stream, ordered, settled);
      const batch = this.#start(settings, feed);
      feed.attach(batch);
      return {
        source: {
          start() {
            batch.run(items).then(
              () => {
                stream.end(undefined);
              },
              (error: unknown) => {
                stream.end({ error });
              },
            );
          },
          resume() {
            feed.resume();
          },
          // A consumer that leaves is done with the batch: nothing is kept to resume.
          stop: (reason) => batch.stop(reason, false),
        },
        // An abort is the batch's own to handle (it keeps the resume state in Redis): the
        // stream does not wait for it.
        stopsBeforeAbort: false,
        ordered,
        spread: settings.window,
        signal: settings.signal,
      };
    });
  }

  /**
   * Deletes what Redis holds of a named batch that is not running: its resume state (the
   * results an interrupted batch kept) and its stop flag. A job of it still waiting (its
   * producer died) then runs nothing. Rejects with a `BatchInUseError` while a producer runs
   * the batch.
   *
   * @param batchId - the batch's id
   * @example
   * ```ts
   * await queue.discard("nightly-2026-12-01"); // start tonight's batch from scratch
   * ```
   */
  async discard(batchId: string): Promise<void> {
    const id = batchIdOf(batchId);
    if (id === undefined) throw new TypeError("batchId must be a non-empty string");
    this.#open();
    await this.#backend.ready();
    const keys = this.#backend.keys.batch(id);
    const deleted = await this.#backend.scripts.end(
      keys.hold,
      [keys.meta, keys.results, keys.done, keys.stop, keys.yielded],
      "",
    );
    if (!deleted) throw new BatchInUseError(id);
  }

  /**
   * Closes the queue. Batches still running reject with a `PipelineError` saying the queue
   * was closed and are stopped as an abort would stop them (a named one keeps its resume
   * state); once that cleanup is over (and that of batches aborted before), the BullMQ queue
   * and the connections it opened are closed (an ioredis instance passed as `connection`
   * stays open). Calling it again returns the same promise.
   *
   * @example
   * ```ts
   * await queue.close();
   * ```
   */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      const closed = new PipelineError(
        "The queue was closed while the batch ran: its jobs were stopped",
      );
      const running = [...this.#running];
      await Promise.all(running.map((batch) => batch.stop(closed, true)));
      await within(this.queue.close(), 1_000);
      await this.#blocking.close();
      await closeClient(this.#client);
    })();
    return this.#closing;
  }

  #open(): void {
    if (this.#closing !== undefined) throw new PipelineError("The queue is closed");
  }

  /** A batch, tracked until its cleanup is over. */
  #start(settings: BatchSettings, consumer: Consumer): Batch {
    const batch = new Batch(this.#backend, settings, consumer);
    this.#running.add(batch);
    void batch.finished.then(() => this.#running.delete(batch));
    return batch;
  }

  #settings(
    items: unknown,
    options: DistributedStreamOptions<C> | undefined,
    form: BatchForm,
    failFast: boolean,
    streams: boolean,
  ): BatchSettings {
    this.#open();
    const opts =
      optionsObject<DistributedStreamOptions<C>>("options", options, form.known, form.hints) ?? {};
    const context = optionalContext(opts.context);
    if (context !== undefined) {
      const problem = jsonProblem(context, "context");
      if (problem !== undefined) {
        throw new TypeError(`context is not JSON-safe (${problem}): it travels as JSON`);
      }
    }
    const given = batchIdOf(opts.batchId);
    const defaults = this.#defaults;
    return {
      batchId: given ?? randomBatchId(),
      named: given !== undefined,
      window: optionalCount("window", opts.window, 1_000),
      context: context === undefined ? undefined : JSON.stringify(context),
      signal: optionalSignal(opts.signal),
      onProgress: optionalFunction("onProgress", opts.onProgress),
      total: sizeOf(items),
      failFast,
      streams,
      keepFor: optionalCount("keepFor", opts.keepFor, defaults.keepFor),
      outageTimeout: optionalCount("outageTimeout", opts.outageTimeout, defaults.outageTimeout),
      maxItemBytes: optionalCount("maxItemBytes", opts.maxItemBytes, defaults.maxItemBytes),
    };
  }
}

function sizeOf(items: unknown): number | undefined {
  if (Array.isArray(items)) return items.length;
  if (items instanceof Set || items instanceof Map) return items.size;
  return undefined;
}
