import type { OptionKeys } from "../internal/known-keys.js";
import { Worker, type Job } from "bullmq";
import type { Context, Pipeline } from "../index.js";
import {
  closeClient,
  duplicate,
  openClient,
  whenReady,
  type Client,
  type Connection,
} from "./connection.js";
import { scriptsOn, type Begin, type Scripts } from "./scripts.js";
import { StopNotices } from "./stops.js";
import { connectTimeoutOf, queueNameOf, prefixOf, optionalCount } from "./options.js";
import {
  cancelledEntry,
  failureRecord,
  jsonProblem,
  Keys,
  notJsonSafe,
  sameStages,
  stageMismatch,
  toWireError,
  type JobPayload,
  type ResultRecord,
} from "./wire.js";

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
   * ioredis options, or an ioredis instance (left open by `close()`). The library sets
   * `maxRetriesPerRequest: null`, which BullMQ requires, on the connections it opens.
   * @example
   * ```ts
   * const options = { connection: { host: "redis.internal", port: 6379 } };
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
   * Called with the errors BullMQ and Redis report while the worker runs (a lost connection,
   * a failed lock renewal). Its failures are ignored.
   * @default console.error
   * @example
   * ```ts
   * const options = { onError: (error: unknown) => console.warn("worker:", error) };
   * ```
   */
  onError?: ((error: unknown) => unknown) | undefined;
}

const workerOptionKeys = {
  queueName: true,
  connection: true,
  prefix: true,
  concurrency: true,
  lockDuration: true,
  stalledInterval: true,
  maxStalledCount: true,
  connectTimeout: true,
  onError: true,
} as const satisfies OptionKeys<PipelineWorkerOptions>;

/** The reason an item's `call.signal` aborts with when its batch stops. */
function batchStopped(): Error {
  const error = new Error("The batch was stopped: an item failed or the producer aborted");
  error.name = "AbortError";
  return error;
}

/**
 * Runs a pipeline for the jobs that {@link PipelineQueue} enqueues on the same queue: one
 * pipeline run per job, `concurrency` at once, with the stage's own timeouts and retries.
 *
 * Jobs whose batch stopped (an item failed in `map`, or the producer aborted) are not started,
 * and those running are cancelled: their `call.signal` aborts. A job whose worker died is
 * taken over by another worker once BullMQ sees it stalled.
 *
 * @typeParam I - the pipeline's input type
 * @typeParam O - the pipeline's output type
 * @typeParam C - the pipeline's context type
 * @example
 * ```ts
 * import { Pipeline, Stage } from "async-pipeline";
 * import { PipelineWorker } from "async-pipeline/bullmq";
 *
 * const pipeline = new Pipeline([new Stage("double", (value: number) => value * 2)]);
 * const worker = new PipelineWorker(pipeline, {
 *   queueName: "doubling",
 *   connection: { host: "127.0.0.1", port: 6379 },
 *   concurrency: 8,
 * });
 * process.once("SIGTERM", () => void worker.close());
 * ```
 */
export class PipelineWorker<I = unknown, O = unknown, C extends object = Context> {
  /** The BullMQ `Worker` underneath (its jobs' data is the library's own wire format). */
  readonly worker: Worker;
  readonly #pipeline: Pipeline<I, O, C>;
  readonly #stageNames: readonly string[];
  readonly #keys: Keys;
  readonly #client: Client;
  readonly #subscriber: Client;
  readonly #scripts: Scripts;
  readonly #stops: StopNotices;
  readonly #connectTimeout: number;
  readonly #onError: (error: unknown) => unknown;
  /**
   * One controller per batch with jobs running here, and how many: a stop aborts them all
   * (one signal shared by the batch's runs costs less than one controller per job).
   */
  readonly #running = new Map<string, { controller: AbortController; jobs: number }>();
  #closing: Promise<void> | undefined;

  /**
   * @param pipeline - the pipeline to run: the producer's, with the same stage names
   * @param options - `queueName`, `connection`, `concurrency`, stall settings
   * @throws TypeError or RangeError for a bad option
   */
  constructor(pipeline: Pipeline<I, O, C>, options: PipelineWorkerOptions) {
    const queueName = queueNameOf(options, workerOptionKeys);
    const prefix = prefixOf(options.prefix);
    const concurrency = optionalCount("concurrency", options.concurrency, 1);
    const stall = {
      lockDuration: optionalCount("lockDuration", options.lockDuration, undefined),
      stalledInterval: optionalCount("stalledInterval", options.stalledInterval, undefined),
      maxStalledCount: optionalCount("maxStalledCount", options.maxStalledCount, undefined, 0),
    };
    this.#connectTimeout = connectTimeoutOf(options.connectTimeout);
    const onError = options.onError ?? console.error;
    if (typeof onError !== "function") throw new TypeError("onError must be a function");
    this.#onError = onError;
    this.#pipeline = pipeline;
    this.#stageNames = pipeline.stages.map((stage) => stage.name);
    this.#keys = new Keys(prefix, queueName);
    this.#client = openClient(options.connection, "connection");
    this.#scripts = scriptsOn(this.#client.redis);
    this.#subscriber = duplicate(this.#client);
    this.#subscriber.redis.on("error", this.#report);
    this.#stops = new StopNotices(
      this.#subscriber.redis,
      this.#keys.stopChannel,
      (batchId) => {
        this.#stopBatch(batchId);
      },
      this.#report,
    );
    const defined = Object.fromEntries(
      Object.entries(stall).filter(([, value]) => value !== undefined),
    );
    this.worker = new Worker<JobPayload, void>(queueName, (job) => this.#process(job), {
      connection: this.#client.redis,
      prefix,
      concurrency,
      ...defined,
    });
    this.worker.on("error", this.#report);
  }

  /**
   * Resolves once the worker is connected to Redis (and hears stop announcements); rejects with a
   * `RedisUnavailableError` when Redis cannot be reached within `connectTimeout` ms.
   *
   * @example
   * ```ts
   * await worker.waitUntilReady();
   * ```
   */
  async waitUntilReady(): Promise<void> {
    await whenReady(this.#client.redis, this.#connectTimeout);
    await whenReady(this.#subscriber.redis, this.#connectTimeout);
    await this.#stops.listening;
    await this.worker.waitUntilReady();
  }

  /**
   * Stops taking jobs, waits for the running ones to finish, and closes the connections the
   * worker opened. Calling it again returns the same promise.
   *
   * @example
   * ```ts
   * process.once("SIGTERM", () => void worker.close());
   * ```
   */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      // Without a connection there is no job to finish, and BullMQ would wait for one.
      await this.worker.close(this.#client.redis.status !== "ready");
      await closeClient(this.#subscriber);
      await closeClient(this.#client);
    })();
    return this.#closing;
  }

  readonly #report = (error: unknown): void => {
    try {
      this.#onError(error);
    } catch {
      // Documented as ignored.
    }
  };

  #stopBatch(batchId: string): void {
    this.#running.get(batchId)?.controller.abort(batchStopped());
  }

  async #process(job: Job<JobPayload, void>): Promise<void> {
    const { b: batchId, i: index, v: item, c: context, s: stages } = job.data;
    const keys = this.#keys;
    const results = keys.results(batchId);
    const done = keys.done(batchId);
    const field = String(index);
    // Registered before the check, so a stop announced while it runs still cancels the item.
    let running = this.#running.get(batchId);
    // An aborted controller belongs to a stop of the batch; a resumed batch gets a fresh one.
    if (running === undefined || running.controller.signal.aborted) {
      running = { controller: new AbortController(), jobs: 0 };
      this.#running.set(batchId, running);
    }
    running.jobs++;
    const signal = running.controller.signal;
    let record: ResultRecord | undefined;
    try {
      const begin = await this.#begin(job, results, done, field);
      // Settled already (by a worker that died before BullMQ saw the job finish): run nothing.
      if (begin === "settled") return;
      // A stopped batch's item runs nothing: it is recorded as cancelled (no `record`).
      if (begin === "run" && !signal.aborted) {
        record = sameStages(this.#stageNames, stages)
          ? await this.#run(item, context, index, signal)
          : { error: toWireError(stageMismatch(this.#stageNames, stages)) };
      }
    } finally {
      running.jobs--;
      if (running.jobs === 0 && this.#running.get(batchId) === running) {
        this.#running.delete(batchId);
      }
    }
    // Not awaited: BullMQ completes the job on the same connection right after, so Redis runs
    // this first, and both travel together. Should the write fail (a full Redis), the job is
    // gone without a done entry, and the producer's sweep notices (see Batch).
    const written =
      record === undefined
        ? this.#scripts.finish(results, done, field, cancelledEntry(index), "")
        : this.#scripts.finish(results, done, field, field, JSON.stringify(record));
    written.catch(this.#report);
  }

  /**
   * Whether the item may run. Redis is asked (one script) unless the answer is known here: a
   * job taken for the first time, of a batch that is not resumable and whose stop flag this
   * worker checked since its subscription to stop announcements was last set up, cannot have a
   * result yet, and its batch's stop would have been announced to us.
   */
  async #begin(
    job: Job<JobPayload, void>,
    results: string,
    done: string,
    field: string,
  ): Promise<Begin> {
    const batchId = job.data.b;
    if (job.data.r !== 1 && job.attemptsStarted <= 1 && this.#stops.covers(batchId)) {
      return this.#stops.stopped(batchId) ? "stopped" : "run";
    }
    const mark = this.#stops.mark();
    const begin = await this.#scripts.begin(this.#keys.stop(batchId), results, done, field);
    this.#stops.checked(batchId, mark);
    return begin;
  }

  /** Runs the pipeline on one item; `undefined` when the batch stopped while it ran. */
  async #run(
    item: unknown,
    context: object | undefined,
    index: number,
    signal: AbortSignal,
  ): Promise<ResultRecord | undefined> {
    try {
      const output = await this.#pipeline.run(item as I, {
        ...(context === undefined ? {} : { context: context as C }),
        signal,
      });
      const problem = jsonProblem(output);
      if (problem === undefined) return { ok: output };
      return { error: toWireError(notJsonSafe("The output of the item", index, problem)) };
    } catch (error) {
      return signal.aborted ? undefined : failureRecord(error);
    }
  }
}
