/**
 * A batch's jobs in Redis, as its producer tracks them: the items enqueued and not yet
 * collected, read back from the done list the workers push to (with their results), or found
 * by a sweep when nothing comes (a job BullMQ failed, a job gone without a done entry, a batch
 * Redis lost); and removed when the batch stops.
 */
import type { Queue } from "bullmq";
import type { Redis } from "ioredis";
import { PipelineError } from "../index.js";
import { dataLost } from "./errors.js";
import { jobId, type BatchKeys, type Keys } from "./keys.js";
import { parseDoneEntry, settle, type JobData, type ResultRecord } from "./wire.js";

/** One item's outcome. */
export interface Settlement {
  readonly index: number;
  readonly result: PromiseSettledResult<unknown>;
}

/** What a read of the done list (or a sweep) found. */
export interface Collected {
  readonly settled: Settlement[];
  /** The batch's meta record is gone: Redis lost the batch (or it was taken over and ended). */
  readonly metaGone: boolean;
}

export interface JobsSettings {
  readonly batchId: string;
  readonly keys: BatchKeys;
  readonly queueKeys: Keys;
  readonly queue: Queue<JobData>;
  readonly redis: Redis;
  readonly window: number;
  /** How the batch awaits Redis (cut short when it ends; failing on an outage). */
  readonly wait: <T>(promise: Promise<T>, blocking?: number) => Promise<T>;
}

/** How many done-list entries one read takes at most. */
const READ_COUNT = 1_000;
/** How long one blocking read waits before the batch looks for jobs gone without a result. */
const IDLE_SECONDS = 1;
/** How long a settling batch waits at most for its last jobs to be gone, in ms. */
const JOB_GONE_MS = 5_000;

const NOTHING: Collected = { settled: [], metaGone: false };

export class Jobs {
  readonly #settings: JobsSettings;
  /** Indices enqueued and not yet collected: the jobs of the batch that may be in Redis. */
  readonly #outstanding = new Set<number>();
  /** The last indices collected: their jobs may still be in Redis for a moment. */
  #recent: number[] = [];
  /** Outstanding items whose job the last sweep found gone with no result: lost if again. */
  #suspects = new Set<number>();

  constructor(settings: JobsSettings) {
    this.#settings = settings;
  }

  /** How many jobs of the batch may be in Redis (enqueued, not yet collected). */
  get size(): number {
    return this.#outstanding.size;
  }

  /** Items about to be enqueued. */
  add(indices: readonly number[]): void {
    for (const index of indices) this.#outstanding.add(index);
  }

  /** Items whose enqueue failed (their jobs were removed). */
  forget(indices: readonly number[]): void {
    for (const index of indices) this.#outstanding.delete(index);
  }

  /**
   * Waits (a blocking read, a second at most) for workers to settle items, and reads their
   * results; when none came, looks for jobs that will never report (see `#sweep`). While the
   * batch stops, only keeps count: nothing is read back.
   */
  async collect(blocking: Redis, stopping: boolean): Promise<Collected> {
    const { keys, redis, wait } = this.#settings;
    const reply = await wait(
      blocking.blmpop(IDLE_SECONDS, 1, keys.done, "LEFT", "COUNT", READ_COUNT),
      IDLE_SECONDS * 1_000,
    );
    if (reply === null) return this.#sweep(stopping);
    const finished: number[] = [];
    const cancelled: number[] = [];
    for (const entry of reply[1]) {
      const { index, cancelled: wasCancelled } = parseDoneEntry(entry);
      if (!this.#outstanding.delete(index)) continue; // a duplicate, a wake-up, or stale
      this.#collected(index);
      (wasCancelled ? cancelled : finished).push(index);
    }
    if (stopping) return NOTHING;
    const settled: Settlement[] = [];
    if (finished.length > 0) {
      const records = await wait(redis.hmget(keys.results, ...finished.map(String)));
      finished.forEach((index, offset) => {
        const record = records[offset];
        settled.push({
          index,
          result:
            typeof record === "string"
              ? settle(JSON.parse(record) as ResultRecord)
              : { status: "rejected", reason: dataLost(`the result of item ${String(index)}`) },
        });
      });
    }
    // Cancelled by a stop the batch has not heard of yet: it is stopping (a worker's fail-fast
    // announcement follows its own entry), or another run of it stopped it.
    for (const index of cancelled) {
      const reason = new PipelineError(`Item ${String(index)} was cancelled: its batch stopped`);
      settled.push({ index, result: { status: "rejected", reason } });
    }
    return { settled, metaGone: false };
  }

  #collected(index: number): void {
    this.#recent.push(index);
    const window = this.#settings.window;
    if (this.#recent.length > 2 * window) this.#recent = this.#recent.slice(-window);
  }

  /**
   * When no result came for a while: items whose job BullMQ moved to failed (stalled too
   * often), items whose job is gone although no done entry came (settled from their result
   * when it is there, else failed as lost once a second sweep finds them so), and every
   * outstanding item when the batch's meta record is gone (Redis lost the batch).
   */
  async #sweep(stopping: boolean): Promise<Collected> {
    if (this.#outstanding.size === 0) return NOTHING;
    const { batchId, keys, queueKeys, queue, redis, wait } = this.#settings;
    const indices = [...this.#outstanding];
    const pipeline = redis
      .pipeline()
      .exists(keys.meta)
      .zmscore(queueKeys.failed, ...indices.map((index) => jobId(batchId, index)));
    for (const index of indices) pipeline.exists(queueKeys.job(batchId, index));
    const replies = (await wait(pipeline.exec())) ?? [];
    if (replies[0]?.[1] === 0) {
      // Redis lost the batch (restarted empty, or evicted it): its jobs and results are gone.
      this.#outstanding.clear();
      const reason = () => dataLost("the batch's jobs and results");
      return {
        settled: stopping
          ? []
          : indices.map((index) => ({ index, result: { status: "rejected", reason: reason() } })),
        metaGone: true,
      };
    }
    const settled: Settlement[] = [];
    const scores = (replies[1]?.[1] ?? []) as (string | null)[];
    const gone: number[] = [];
    for (const [offset, index] of indices.entries()) {
      if (typeof scores[offset] === "string") {
        const job = await wait(queue.getJob(jobId(batchId, index)));
        const reason = new PipelineError(
          `BullMQ failed the job of item ${String(index)}: ${job?.failedReason ?? "unknown reason"}`,
        );
        await wait(job?.remove().catch(() => undefined) ?? Promise.resolve());
        this.#outstanding.delete(index);
        settled.push({ index, result: { status: "rejected", reason } });
      } else if (replies[offset + 2]?.[1] === 0) gone.push(index);
    }
    const suspects = this.#suspects;
    this.#suspects = new Set();
    if (gone.length === 0) return { settled, metaGone: false };
    const records = await wait(redis.hmget(keys.results, ...gone.map(String)));
    for (const [offset, index] of gone.entries()) {
      const record = records[offset];
      if (typeof record === "string") {
        settled.push({ index, result: settle(JSON.parse(record) as ResultRecord) });
      } else if (suspects.has(index)) {
        const reason = new PipelineError(
          `The job of item ${String(index)} is gone from Redis without a result: Redis lost it (evicted, or restarted without persistence) or refused the worker's write (out of memory: see the worker's onError)`,
        );
        settled.push({ index, result: { status: "rejected", reason } });
      } else {
        this.#suspects.add(index);
        continue;
      }
      this.#outstanding.delete(index);
      this.#collected(index);
    }
    return { settled, metaGone: false };
  }

  /** Removes the batch's jobs that no worker holds; a held one cannot be removed. */
  async removeWaiting(): Promise<void> {
    const { batchId, queue, wait } = this.#settings;
    const indices = [...this.#outstanding];
    const removed = await wait(
      Promise.all(indices.map((index) => queue.remove(jobId(batchId, index)).catch(() => 0))),
    );
    indices.forEach((index, offset) => {
      if (removed[offset] === 1) this.#outstanding.delete(index);
    });
  }

  /**
   * A worker records an item's result just before BullMQ removes its job: waits (briefly)
   * until the jobs of the last results are gone, so that a settled batch leaves nothing behind.
   */
  async gone(): Promise<void> {
    const { batchId, queueKeys, redis, wait } = this.#settings;
    const keys = this.#recent.map((index) => queueKeys.job(batchId, index));
    // BullMQ removes a job one round trip after its result: mostly gone by the first retry.
    for (let waited = 0, pause = 1; keys.length > 0 && waited < JOB_GONE_MS; waited += pause) {
      if ((await wait(redis.exists(...keys))) === 0) return;
      await new Promise((resolve) => setTimeout(resolve, pause));
      pause = Math.min(pause * 2, 10);
    }
  }
}
