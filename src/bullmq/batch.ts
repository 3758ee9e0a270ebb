/**
 * The producer's side of one batch: reads the input lazily, keeps at most `window` jobs of the
 * batch in Redis, collects the results the workers record, and on an early end (a failure in
 * fail-fast mode, an abort, a consumer that stops reading) stops the batch everywhere and
 * waits until no job of it is left before removing its keys.
 */
import type { Queue } from "bullmq";
import type { Redis } from "ioredis";
import type { Progress } from "../index.js";
import { whenReady, type Client, type ConnectionPool } from "./connection.js";
import {
  jobId,
  jsonProblem,
  notJsonSafe,
  parseDoneEntry,
  settle,
  type JobPayload,
  type Keys,
  type ResultRecord,
} from "./wire.js";

/** What a batch needs from its {@link PipelineQueue}. */
export interface Backend {
  readonly queue: Queue<JobPayload>;
  readonly client: Client;
  /** The connections for blocking reads, one per running batch. */
  readonly blocking: ConnectionPool;
  readonly keys: Keys;
  readonly stageNames: readonly string[];
  readonly connectTimeout: number;
  ready(): Promise<void>;
}

/** How one batch runs. */
export interface BatchSettings {
  readonly batchId: string;
  /** True when the caller named the batch: results may already be in Redis. */
  readonly resumable: boolean;
  readonly window: number;
  readonly context: object | undefined;
  readonly signal: AbortSignal | undefined;
  readonly onProgress: ((progress: Progress) => unknown) | undefined;
  readonly total: number | undefined;
}

/** One item's outcome; `result` is `undefined` for an item a resumed stream already yielded. */
export interface Settlement {
  readonly index: number;
  readonly result: PromiseSettledResult<unknown> | undefined;
}

/** How many done-list entries one read takes at most. */
const READ_COUNT = 1_000;
/** How many items are enqueued in one `addBulk` at most. */
const ENQUEUE_COUNT = 500;
/** Seconds one blocking read waits before the batch looks for jobs BullMQ failed. */
const IDLE_SECONDS = 1;
const WAKE = "wake";
/** How long a settling batch waits at most for its last jobs to be gone, in ms. */
const JOB_GONE_MS = 5_000;
const LATER = Symbol("later");

type Step = IteratorResult<unknown>;

/** One batch of a {@link PipelineQueue}; `run` yields settlements as workers record them. */
export class Batch {
  readonly #backend: Backend;
  readonly #settings: BatchSettings;
  readonly #redis: Redis;
  /** Indices enqueued and not yet collected: the jobs of the batch that may be in Redis. */
  readonly #outstanding = new Set<number>();
  /** The last indices collected: their jobs may still be in Redis for a moment. */
  #recent: number[] = [];
  #forgotten: number[] = [];
  /** Outstanding items whose job the last sweep found gone with no result: lost if again. */
  #suspects = new Set<number>();
  #pending: Promise<Step> | undefined;
  #done = 0;
  #failed = 0;
  #reported = "";

  constructor(backend: Backend, settings: BatchSettings) {
    this.#backend = backend;
    this.#settings = settings;
    this.#redis = backend.client.redis;
  }

  /**
   * Marks a yielded result of a stream as delivered: it leaves Redis, and a resumed stream
   * skips its item. Written with the next read.
   */
  forget(index: number): void {
    this.#forgotten.push(index);
  }

  /** Runs the batch; yields the settlements of each read, in the order workers finished. */
  async *run(items: Iterable<unknown> | AsyncIterable<unknown>): AsyncGenerator<Settlement[]> {
    const { signal, batchId } = this.#settings;
    const keys = this.#backend.keys;
    signal?.throwIfAborted();
    await this.#backend.ready();
    const iterator = iteratorOf(items);
    const isAsync = Symbol.asyncIterator in items;
    const blocking = this.#backend.blocking.take();
    const wake = () => {
      this.#redis.rpush(keys.done(batchId), WAKE).catch(() => undefined);
    };
    signal?.addEventListener("abort", wake, { once: true });
    let complete = false;
    try {
      await whenReady(blocking.redis, this.#backend.connectTimeout);
      // A producer that died while stopping this batch may have left its stop flag behind, and
      // entries on the done list that a resumed batch reads from the results instead.
      await this.#redis.del(keys.stop(batchId), keys.done(batchId));
      let next = 0;
      let exhausted = false;
      for (;;) {
        while (!exhausted && this.#outstanding.size < this.#settings.window) {
          const room = Math.min(this.#settings.window - this.#outstanding.size, ENQUEUE_COUNT);
          const taken = await this.#take(iterator, room, isAsync);
          exhausted = taken.exhausted;
          const entries = taken.values.map((value, offset) => ({ index: next + offset, value }));
          next += entries.length;
          signal?.throwIfAborted();
          const settled = await this.#enqueue(entries);
          if (settled.length > 0) yield this.#progress(settled);
          if (taken.values.length === 0) break;
        }
        if (exhausted && this.#outstanding.size === 0) break;
        await this.#writeForgotten();
        const settled = await this.#collect(blocking.redis, false);
        signal?.throwIfAborted();
        if (settled.length > 0) yield this.#progress(settled);
      }
      complete = true;
      this.#report(true);
    } finally {
      signal?.removeEventListener("abort", wake);
      try {
        if (!complete) {
          this.#pending?.catch(() => undefined);
          await closeQuietly(iterator);
          await this.#stop(blocking.redis);
        }
        await this.#jobsGone();
        await this.#redis.del(...keys.batch(batchId));
      } finally {
        await this.#backend.blocking.give(blocking);
      }
    }
  }

  /**
   * Takes up to `room` items. From an async input it stops early when the next item is not
   * ready at once, so that a slow input never holds back the items already taken.
   */
  async #take(
    iterator: Iterator<unknown> | AsyncIterator<unknown>,
    room: number,
    isAsync: boolean,
  ): Promise<{ values: unknown[]; exhausted: boolean }> {
    const values: unknown[] = [];
    while (values.length < room) {
      const pending = this.#pending ?? Promise.resolve(iterator.next());
      this.#pending = undefined;
      let step: Step | typeof LATER;
      if (values.length > 0 && isAsync) {
        step = await Promise.race([pending, nextTurn()]);
        if (step === LATER) {
          this.#pending = pending;
          break;
        }
      } else {
        step = await pending;
      }
      if (step.done === true) return { values, exhausted: true };
      values.push(step.value);
    }
    return { values, exhausted: false };
  }

  /** Enqueues one job per item; settles at once the items that cannot or need not run. */
  async #enqueue(entries: { index: number; value: unknown }[]): Promise<Settlement[]> {
    const settled: Settlement[] = [];
    let fresh: { index: number; value: unknown }[] = [];
    for (const entry of entries) {
      const problem = jsonProblem(entry.value);
      if (problem === undefined) fresh.push(entry);
      else {
        const reason = notJsonSafe("The item", entry.index, problem);
        settled.push({ index: entry.index, result: { status: "rejected", reason } });
      }
    }
    if (fresh.length === 0) return settled;
    if (this.#settings.resumable) fresh = await this.#resume(fresh, settled);
    await this.#add(
      fresh.map((entry) => entry.index),
      fresh,
    );
    return settled;
  }

  async #add(indices: number[], entries: { index: number; value: unknown }[]): Promise<void> {
    if (entries.length === 0) return;
    const { batchId, context, resumable } = this.#settings;
    const stages = this.#backend.stageNames;
    const r = resumable ? 1 : undefined;
    await this.#backend.queue.addBulk(
      entries.map(({ index, value }) => ({
        name: "item",
        data: { b: batchId, i: index, v: value, c: context, s: stages, r },
        opts: {
          jobId: jobId(batchId, index),
          removeOnComplete: true,
          removeOnFail: false,
          attempts: 1,
        },
      })),
    );
    for (const index of indices) this.#outstanding.add(index);
  }

  /** A resumed batch: items with a result in Redis settle from it; only the others run. */
  async #resume(
    entries: { index: number; value: unknown }[],
    settled: Settlement[],
  ): Promise<{ index: number; value: unknown }[]> {
    const keys = this.#backend.keys;
    const { batchId } = this.#settings;
    const pipeline = this.#redis
      .pipeline()
      .hmget(keys.results(batchId), ...entries.map((entry) => String(entry.index)));
    for (const entry of entries) pipeline.getbit(keys.yielded(batchId), entry.index);
    const replies = (await pipeline.exec()) ?? [];
    const records = replies[0]?.[1] as (string | null)[];
    return entries.filter((entry, offset) => {
      const record = records[offset];
      if (typeof record === "string") {
        settled.push({ index: entry.index, result: settle(JSON.parse(record) as ResultRecord) });
        return false;
      }
      if (replies[offset + 1]?.[1] === 1) {
        settled.push({ index: entry.index, result: undefined });
        return false;
      }
      return true;
    });
  }

  /** Waits for workers to settle items; settles the jobs BullMQ failed when nothing comes. */
  async #collect(blocking: Redis, stopping: boolean): Promise<Settlement[]> {
    const { batchId } = this.#settings;
    const keys = this.#backend.keys;
    const reply = await blocking.blmpop(
      IDLE_SECONDS,
      1,
      keys.done(batchId),
      "LEFT",
      "COUNT",
      READ_COUNT,
    );
    if (reply === null) return this.#sweep();
    const settledIndices: number[] = [];
    const cancelled: number[] = [];
    for (const entry of reply[1]) {
      const { index, cancelled: wasCancelled } = parseDoneEntry(entry);
      if (!this.#outstanding.has(index)) continue; // a duplicate, a wake-up, or a stale entry
      this.#outstanding.delete(index);
      this.#collected(index);
      if (wasCancelled) cancelled.push(index);
      else settledIndices.push(index);
    }
    if (cancelled.length > 0 && !stopping) {
      // Cancelled by a stop flag this producer did not set (left by an earlier one): run again.
      await this.#redis.del(keys.stop(batchId));
      await this.#requeue(cancelled);
    }
    if (settledIndices.length === 0) return [];
    const records = await this.#redis.hmget(
      keys.results(batchId),
      ...settledIndices.map((index) => String(index)),
    );
    return settledIndices.map((index, offset) => {
      const record = records[offset];
      return {
        index,
        result:
          typeof record === "string"
            ? settle(JSON.parse(record) as ResultRecord)
            : {
                status: "rejected",
                reason: new Error(`The result of item ${String(index)} is missing`),
              },
      };
    });
  }

  #collected(index: number): void {
    this.#recent.push(index);
    if (this.#recent.length > 2 * this.#settings.window) {
      this.#recent = this.#recent.slice(-this.#settings.window);
    }
  }

  /**
   * A worker records an item's result just before BullMQ removes its job: waits (briefly) until
   * the jobs of the last results are gone, so that a settled batch leaves nothing behind.
   */
  async #jobsGone(): Promise<void> {
    const keys = this.#recent.map((index) => this.#backend.keys.job(this.#settings.batchId, index));
    // BullMQ removes a job one round trip after its result: mostly gone by the first retry.
    for (let waited = 0, pause = 1; keys.length > 0 && waited < JOB_GONE_MS; waited += pause) {
      if ((await this.#redis.exists(...keys)) === 0) return;
      await new Promise((resolve) => setTimeout(resolve, pause));
      pause = Math.min(pause * 2, 10);
    }
  }

  async #requeue(indices: number[]): Promise<void> {
    const { batchId } = this.#settings;
    const queue = this.#backend.queue;
    const jobs = await Promise.all(indices.map((index) => queue.getJob(jobId(batchId, index))));
    const entries = indices.map((index, offset) => ({ index, value: jobs[offset]?.data.v }));
    await Promise.all(indices.map((index) => queue.remove(jobId(batchId, index)).catch(() => 0)));
    await this.#add(indices, entries);
  }

  /**
   * Items whose job BullMQ moved to failed (stalled too often, or a worker error), and items
   * whose job is gone although no done entry came: settled from their result when it is in
   * Redis, else failed once a second sweep finds them so (the worker's write failed).
   */
  async #sweep(): Promise<Settlement[]> {
    if (this.#outstanding.size === 0) return [];
    const { batchId } = this.#settings;
    const keys = this.#backend.keys;
    const indices = [...this.#outstanding];
    const [scores, present] = await Promise.all([
      this.#redis.zmscore(keys.failed, ...indices.map((index) => jobId(batchId, index))),
      Promise.all(indices.map((index) => this.#redis.exists(keys.job(batchId, index)))),
    ]);
    const settled: Settlement[] = [];
    const gone: number[] = [];
    for (const [offset, index] of indices.entries()) {
      if (scores[offset] !== null) {
        const job = await this.#backend.queue.getJob(jobId(batchId, index));
        const reason = new Error(
          `BullMQ failed the job of item ${String(index)}: ${job?.failedReason ?? "unknown reason"}`,
        );
        await job?.remove().catch(() => undefined);
        this.#outstanding.delete(index);
        settled.push({ index, result: { status: "rejected", reason } });
      } else if (present[offset] === 0) gone.push(index);
    }
    const suspects = this.#suspects;
    this.#suspects = new Set();
    if (gone.length === 0) return settled;
    const records = await this.#redis.hmget(keys.results(batchId), ...gone.map(String));
    for (const [offset, index] of gone.entries()) {
      const record = records[offset];
      if (typeof record === "string") {
        settled.push({ index, result: settle(JSON.parse(record) as ResultRecord) });
      } else if (suspects.has(index)) {
        const reason = new Error(
          `The job of item ${String(index)} finished without recording a result (the worker could not write it: see its onError)`,
        );
        settled.push({ index, result: { status: "rejected", reason } });
      } else {
        this.#suspects.add(index);
        continue;
      }
      this.#outstanding.delete(index);
      this.#collected(index);
    }
    return settled;
  }

  /**
   * Stops the batch everywhere, then waits until none of its jobs is left. The waiting jobs go
   * first, so that no job of the batch is taken once the stop is announced: a worker starts
   * only jobs it took before (which the announcement cancels) or, after a stall, ones it
   * checks in Redis.
   */
  async #stop(blocking: Redis): Promise<void> {
    const { batchId } = this.#settings;
    const keys = this.#backend.keys;
    await this.#removeWaiting();
    await this.#redis
      .multi()
      .set(keys.stop(batchId), "1")
      .publish(keys.stopChannel, batchId)
      .exec();
    while (this.#outstanding.size > 0) {
      await this.#removeWaiting();
      if (this.#outstanding.size > 0) await this.#collect(blocking, true);
    }
  }

  /** Removes the batch's jobs that no worker holds; a held one cannot be removed. */
  async #removeWaiting(): Promise<void> {
    const { batchId } = this.#settings;
    const indices = [...this.#outstanding];
    const removed = await Promise.all(
      indices.map((index) => this.#backend.queue.remove(jobId(batchId, index)).catch(() => 0)),
    );
    indices.forEach((index, offset) => {
      if (removed[offset] === 1) this.#outstanding.delete(index);
    });
  }

  async #writeForgotten(): Promise<void> {
    if (this.#forgotten.length === 0) return;
    const { batchId } = this.#settings;
    const keys = this.#backend.keys;
    const indices = this.#forgotten;
    this.#forgotten = [];
    const multi = this.#redis.multi().hdel(keys.results(batchId), ...indices.map(String));
    for (const index of indices) multi.setbit(keys.yielded(batchId), index, 1);
    await multi.exec();
  }

  #progress(settled: Settlement[]): Settlement[] {
    for (const { result } of settled) {
      this.#done++;
      if (result?.status === "rejected") this.#failed++;
    }
    this.#report(false);
    return settled;
  }

  #report(final: boolean): void {
    const onProgress = this.#settings.onProgress;
    if (onProgress === undefined) return;
    const progress: Progress = Object.freeze({
      done: this.#done,
      failed: this.#failed,
      inFlight: this.#outstanding.size,
      total: this.#settings.total,
    });
    const key = `${String(progress.done)}/${String(progress.failed)}/${String(progress.inFlight)}`;
    if (final && key === this.#reported) return;
    this.#reported = key;
    try {
      const result: unknown = onProgress(progress);
      if (result instanceof Promise) result.catch(() => undefined);
    } catch {
      // Documented as ignored.
    }
  }
}

function iteratorOf(items: unknown): Iterator<unknown> | AsyncIterator<unknown> {
  if (typeof items === "object" && items !== null) {
    if (Symbol.asyncIterator in items)
      return (items as AsyncIterable<unknown>)[Symbol.asyncIterator]();
    if (Symbol.iterator in items) return (items as Iterable<unknown>)[Symbol.iterator]();
  }
  throw new TypeError("items must be an Iterable or an AsyncIterable");
}

async function closeQuietly(iterator: Iterator<unknown> | AsyncIterator<unknown>): Promise<void> {
  try {
    await iterator.return?.();
  } catch {
    // The input's own cleanup failed; the batch's outcome stands.
  }
}

function nextTurn(): Promise<typeof LATER> {
  return new Promise((resolve) => setImmediate(resolve, LATER));
}
