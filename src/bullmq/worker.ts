import { Worker, type Job } from "bullmq";
import type { Context, Pipeline } from "../index.js";
import { jsonProblem } from "../internal/json.js";
import {
  closeClient,
  duplicate,
  openClient,
  whenReady,
  within,
  type Client,
} from "./connection.js";
import { Keys, parseJobId, type BatchKeys } from "./keys.js";
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
import { workerHints, workerOptionKeys, type PipelineWorkerOptions } from "./worker-options.js";
import { ResultWriter } from "./writer.js";
import {
  cancelledEntry,
  failureRecord,
  notJsonSafe,
  stopMessage,
  type JobData,
  type ResultRecord,
} from "./wire.js";

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
    const queueName = queueNameOf(options, workerOptionKeys, workerHints);
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
    this.worker = new Worker<JobData, void>(queueName, (job) => this.#process(job), {
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

  async #process(job: Job<JobData, void>): Promise<void> {
    const located = parseJobId(job.id);
    if (located === undefined) {
      throw new Error(`Job ${String(job.id)} was not enqueued by a PipelineQueue`);
    }
    const { batchId, index } = located;
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
      batch = await this.#check(batchId, batch?.keys ?? this.#keys.batch(batchId), field, batch);
      if (batch === undefined) return;
    }
    let record: ResultRecord | undefined;
    if (!batch.stopped) {
      record =
        batch.mismatch === undefined
          ? await this.#run(job.data, index, batch)
          : failureRecord(batch.mismatch);
    }
    if (record === undefined) {
      // Abandoned: neither cancelled nor finished, so that the job's lock expires and another
      // worker takes it over.
      if (this.#abandoned) return new Promise<never>(() => undefined);
      const cancelled = { entry: cancelledEntry(index), record: "" };
      await this.#writer.add(batch, cancelled, "");
      return;
    }
    let stop = "";
    if (batch.meta.failFast && !("ok" in record)) {
      // The first failure of a fail-fast batch: this process starts nothing more of it at
      // once, and the write that records the failure announces the stop everywhere.
      batch.stop();
      stop = stopMessage(batchId, batch.meta.run);
    }
    await this.#writer.add(batch, { entry: field, record: JSON.stringify(record) }, stop);
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
        batch = new KnownBatch(keys, begin.meta, this.#self);
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
  async #run(item: JobData, index: number, batch: KnownBatch): Promise<ResultRecord | undefined> {
    const signal = batch.signal;
    const context = batch.meta.context;
    try {
      const output = await this.#pipeline.run(
        item as I,
        context === undefined ? { signal } : { context: JSON.parse(context) as C, signal },
      );
      const problem = jsonProblem(output);
      if (problem === undefined) return { ok: output };
      return failureRecord(notJsonSafe("The output of the item", index, problem));
    } catch (error) {
      return signal.aborted ? undefined : failureRecord(error);
    }
  }
}
