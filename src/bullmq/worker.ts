import { Worker, type Job } from "bullmq";
import type { Context, Pipeline } from "../index.js";
import type { OptionKeys } from "../internal/known-keys.js";
import { jsonProblem } from "../internal/json.js";
import {
  closeClient,
  duplicate,
  openClient,
  whenReady,
  within,
  type Client,
  type Connection,
} from "./connection.js";
import { Keys, type BatchKeys } from "./keys.js";
import { KnownBatch, KnownBatches } from "./known-batches.js";
import {
  connectTimeoutOf,
  optionalCount,
  optionalVersion,
  prefixOf,
  queueNameOf,
} from "./options.js";
import { ErrorReporter, printError } from "./report.js";
import { workerScripts, type WorkerScripts } from "./scripts.js";
import { StopChannel } from "./stops.js";
import { ResultWriter } from "./writer.js";
import {
  cancelledEntry,
  failureRecord,
  notJsonSafe,
  stopMessage,
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
  version: true,
  closeTimeout: true,
} as const satisfies OptionKeys<PipelineWorkerOptions>;

/** The reason running items' `call.signal` aborts with when `close()` gives up waiting. */
function workerClosed(): Error {
  return new DOMException("The worker was closed before the item finished", "AbortError");
}

/**
 * Runs a pipeline for the jobs that {@link PipelineQueue} enqueues on the same queue: one
 * pipeline run per job, `concurrency` at once, with the stage's own timeouts and retries.
 *
 * Jobs whose batch stopped (an item failed in `map`, or the producer stopped it) are not
 * started, and those running are cancelled: their `call.signal` aborts. In a fail-fast batch
 * the worker whose item failed stops the batch itself, everywhere. A job whose worker died is
 * taken over by another worker once BullMQ sees it stalled. A job of a batch that has settled
 * runs nothing and writes nothing.
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
 *   connection: "redis://127.0.0.1:6379",
 *   concurrency: 8,
 * });
 * process.once("SIGTERM", () => void worker.close());
 * ```
 */
export class PipelineWorker<I = unknown, O = unknown, C extends object = Context> {
  /** The BullMQ `Worker` underneath (its jobs' data is the library's own wire format). */
  readonly worker: Worker;
  readonly #pipeline: Pipeline<I, O, C>;
  readonly #self: { readonly stages: readonly string[]; readonly version: string | undefined };
  readonly #keys: Keys;
  readonly #client: Client;
  readonly #subscriber: Client;
  readonly #scripts: WorkerScripts;
  readonly #writer: ResultWriter;
  readonly #stops: StopChannel;
  readonly #batches = new KnownBatches();
  readonly #connectTimeout: number;
  readonly #closeTimeout: number;
  readonly #report: (error: unknown) => void;
  #closing: Promise<void> | undefined;
  /** `close()` gave up waiting: what runs is abandoned to another worker. */
  #abandoned = false;

  /**
   * @param pipeline - the pipeline to run: the producer's, with the same stage names
   * @param options - `queueName`, `connection`, `concurrency`, `version`, stall settings, …
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
    this.#closeTimeout = optionalCount("closeTimeout", options.closeTimeout, 30_000, 0);
    const onError = options.onError ?? printError(queueName);
    if (typeof onError !== "function") throw new TypeError("onError must be a function");
    const reporter = new ErrorReporter(onError);
    // Once it abandoned its connections, a closing worker's errors are its own doing.
    this.#report = (error) => {
      if (!this.#abandoned) reporter.report(error);
    };
    this.#pipeline = pipeline;
    this.#self = {
      stages: pipeline.stages.map((stage) => stage.name),
      version: optionalVersion(options.version),
    };
    this.#keys = new Keys(prefix, queueName);
    this.#client = openClient(options.connection, "connection", this.#report);
    this.#scripts = workerScripts(this.#client.redis);
    this.#writer = new ResultWriter(this.#scripts, this.#keys.stopChannel, this.#report);
    this.#subscriber = duplicate(this.#client, this.#report);
    this.#stops = new StopChannel(
      this.#subscriber.redis,
      this.#keys.stopChannel,
      (batchId, run) => {
        const batch = this.#batches.get(batchId);
        if (batch?.meta.run === run) batch.stop();
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
   * Stops taking jobs, waits (up to `closeTimeout` ms) for the ones it holds to finish, and
   * closes the connections the worker opened. When Redis cannot be reached, or the jobs take
   * longer, it aborts them and returns: another worker takes them over once their lock
   * expires. Calling it again returns the same promise.
   *
   * @example
   * ```ts
   * process.once("SIGTERM", () => void worker.close());
   * ```
   */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    const redis = this.#client.redis;
    // Without a connection there is no job to finish, and BullMQ would wait for one.
    const graceful = this.worker.close(redis.status !== "ready");
    graceful.catch(this.#report);
    const finished = await within(graceful, this.#closeTimeout);
    if (!finished) {
      // Abandon what runs: abort it, and drop the connections under BullMQ's pending calls.
      this.#abandoned = true;
      for (const batch of this.#batches.values()) batch.stop(workerClosed());
      void this.worker.close(true).catch(() => undefined);
    }
    await closeClient(this.#subscriber, finished ? 1_000 : 0);
    await closeClient(this.#client, finished ? 1_000 : 0);
  }

  async #process(job: Job<JobPayload, void>): Promise<void> {
    const { b: batchId, i: index } = job.data;
    const keys = this.#keys.batch(batchId);
    const field = String(index);
    let batch = this.#batches.get(batchId);
    if (
      batch === undefined ||
      batch.meta.named ||
      job.attemptsStarted > 1 ||
      batch.checkedIn !== this.#stops.generation
    ) {
      // Not known well enough to start the item without asking Redis: a job taken over may
      // have its result there already, as may any job of a named batch (another run of it
      // may have run the item); and a stop announced before this worker listened is missed.
      batch = await this.#check(batchId, keys, field, batch);
      if (batch === undefined) return;
    }
    let record: ResultRecord | undefined;
    if (!batch.stopped) {
      record =
        batch.mismatch === undefined
          ? await this.#run(job.data, batch)
          : failureRecord(batch.mismatch);
    }
    if (record === undefined) {
      // Abandoned: neither cancelled nor finished, so that the job's lock expires and another
      // worker takes it over.
      if (this.#abandoned) return new Promise<never>(() => undefined);
      const cancelled = { field, entry: cancelledEntry(index), record: "" };
      await this.#writer.add(keys, batch.meta.run, cancelled, "");
      return;
    }
    let stop = "";
    if (batch.meta.failFast && !("ok" in record)) {
      // The first failure of a fail-fast batch: this process starts nothing more of it at
      // once, and the write that records the failure announces the stop everywhere.
      batch.stop();
      stop = stopMessage(batchId, batch.meta.run);
    }
    await this.#writer.add(
      keys,
      batch.meta.run,
      { field, entry: field, record: JSON.stringify(record) },
      stop,
    );
  }

  /**
   * Asks Redis whether the item may run (see `WorkerScripts.begin`): the batch as it is now
   * (a new run of it replaces the one known), or `undefined` when the item must not run and
   * nothing is to be written (the batch settled, or the item's result is in Redis).
   */
  async #check(
    batchId: string,
    keys: BatchKeys,
    field: string,
    known: KnownBatch | undefined,
  ): Promise<KnownBatch | undefined> {
    const generation = this.#stops.generation;
    const begin = await this.#scripts.begin(keys, field, known?.meta.run ?? "");
    if (begin.status === "gone" || begin.status === "settled") return undefined;
    let batch = known;
    if (begin.meta !== undefined) {
      // Several first jobs of a batch may ask at once: they share one KnownBatch (one signal).
      const current = this.#batches.get(batchId);
      if (current?.meta.run === begin.meta.run) batch = current;
      else {
        batch = new KnownBatch(begin.meta, this.#self);
        this.#batches.set(batchId, batch);
      }
    }
    // The run passed was the batch's, so a reply without meta means the known one.
    if (batch === undefined) return undefined;
    if (generation !== undefined && generation === this.#stops.generation) {
      batch.checkedIn = generation;
    }
    if (begin.status === "stopped") batch.stop();
    return batch;
  }

  /** Runs the pipeline on one item; `undefined` when the batch stopped while it ran. */
  async #run(data: JobPayload, batch: KnownBatch): Promise<ResultRecord | undefined> {
    const signal = batch.signal;
    const context = batch.meta.context;
    try {
      const output = await this.#pipeline.run(
        data.v as I,
        context === undefined ? { signal } : { context: JSON.parse(context) as C, signal },
      );
      const problem = jsonProblem(output);
      if (problem === undefined) return { ok: output };
      return failureRecord(notJsonSafe("The output of the item", data.i, problem));
    } catch (error) {
      return signal.aborted ? undefined : failureRecord(error);
    }
  }
}
