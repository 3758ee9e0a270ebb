/**
 * The producer's side of one batch: takes the batch's hold, reads the input lazily, keeps at
 * most `window` items taken and not yet handed to the caller (jobs in Redis, results waiting
 * there or in a stream's reorder ring), collects the results the workers record and hands
 * them to its {@link Consumer}.
 *
 * How it ends:
 * - settled (every item handed): its keys are deleted at once;
 * - interrupted (fail-fast, `queue.close()`, a consumer that left, the caller's signal, an
 *   outage, a refused enqueue): the stop is announced, the waiting jobs removed, the running
 *   ones given a moment to report their cancellation; a named batch then keeps its results
 *   (its resume state) for `keepFor` ms, any other deletes every key. The caller's signal and
 *   an outage settle the batch at once and leave that cleanup to run on (see
 *   {@link Batch.finished}).
 */
import type { Queue } from "bullmq";
import type { Redis } from "ioredis";
import { PipelineError, type Progress } from "../index.js";
import { now } from "../internal/clock.js";
import { closeClient, whenReady, type Client, type ConnectionPool } from "./connection.js";
import { addJobs, BULK_COUNT, checkItem, type Entry } from "./enqueue.js";
import { BatchInUseError, dataLost, RedisUnavailableError } from "./errors.js";
import { Guard } from "./guard.js";
import { jobId, type BatchKeys, type Keys } from "./keys.js";
import type { ProducerScripts } from "./scripts.js";
import {
  isFailure,
  metaFields,
  parseDoneEntry,
  settle,
  stopMessage,
  type JobPayload,
  type ResultRecord,
} from "./wire.js";

/** What a batch needs from its {@link PipelineQueue}. */
export interface Backend {
  readonly queue: Queue<JobPayload>;
  readonly client: Client;
  /** The connections for blocking reads, one per running batch. */
  readonly blocking: ConnectionPool;
  readonly keys: Keys;
  readonly scripts: ProducerScripts;
  readonly stageNames: readonly string[];
  readonly version: string | undefined;
  readonly connectTimeout: number;
  /** How long a producer's hold on a batch lasts without renewal, in ms. */
  readonly lockDuration: number;
  /** Resolves once Redis is ready (rejects after `connectTimeout`). */
  ready(): Promise<void>;
  /** The error of an outage: Redis did not answer for `timeout` ms. */
  outage(timeout: number): RedisUnavailableError;
}

/** How one batch runs. */
export interface BatchSettings {
  readonly batchId: string;
  /** True when the caller named the batch: it can be resumed, and keeps its resume state. */
  readonly named: boolean;
  readonly window: number;
  /** The context template as JSON. */
  readonly context: string | undefined;
  readonly signal: AbortSignal | undefined;
  readonly onProgress: ((progress: Progress) => unknown) | undefined;
  readonly total: number | undefined;
  /** The first failure ends the batch (`map`, a stream without `settled`). */
  readonly failFast: boolean;
  /** A stream: results it yielded are deleted and skipped on resume. */
  readonly streams: boolean;
  readonly keepFor: number;
  readonly outageTimeout: number;
  readonly maxItemBytes: number;
}

/** Where a batch's results go: `map`'s array, or a stream's reader. */
export interface Consumer {
  /** The result of item `index`. */
  arrive(index: number, result: PromiseSettledResult<unknown>): void;
  /**
   * Item `index` was yielded by an earlier run of the (streamed) batch: nothing to hand.
   * Called for a stream only.
   */
  skip?(index: number): void;
  /** How many results (and skipped items) the caller has had so far. */
  handed(): number;
}

/** What closing the input threw, if anything. */
export type CloseOutcome = { readonly error: unknown } | undefined;

/** How many done-list entries one read takes at most. */
const READ_COUNT = 1_000;
/** How long one blocking read waits before the batch looks for jobs gone without a result. */
const IDLE_SECONDS = 1;
const IDLE_MS = IDLE_SECONDS * 1_000;
/** How long a stopping batch waits at most for its running jobs to report, in ms. */
const STOP_WAIT_MS = 5_000;
/** How long a settling batch waits at most for its last jobs to be gone, in ms. */
const JOB_GONE_MS = 5_000;
const LATER = Symbol("later");

type Step = IteratorResult<unknown>;

/** One batch of a {@link PipelineQueue}. */
export class Batch {
  readonly #backend: Backend;
  readonly #settings: BatchSettings;
  readonly #consumer: Consumer;
  readonly #redis: Redis;
  readonly #keys: BatchKeys;
  readonly #guard: Guard;
  /** What Redis awaits race: the batch's guard, then, once it ended, the cleanup's. */
  #waits: Guard;
  /** The hold's id, this run's id in the meta record. */
  readonly #holder = globalThis.crypto.randomUUID();
  /** Indices enqueued and not yet collected: the jobs of the batch that may be in Redis. */
  readonly #outstanding = new Set<number>();
  /** The last indices collected: their jobs may still be in Redis for a moment. */
  #recent: number[] = [];
  /** Results a stream yielded: deleted from Redis with the next read. */
  #forgotten: number[] = [];
  /** Outstanding items whose job the last sweep found gone with no result: lost if again. */
  #suspects = new Set<number>();
  #iterator: Iterator<unknown> | AsyncIterator<unknown> | undefined = undefined;
  #pending: Promise<Step> | undefined = undefined;
  #taken = 0;
  #skipped = 0;
  #done = 0;
  #failed = 0;
  #reported = "";
  /** The hold was taken: the batch's keys are this run's to clean up. */
  #held = false;
  /** Another producer took the batch over: its keys are not ours to touch. */
  #lost = false;
  /** The batch ended in a way that leaves no resume state worth keeping. */
  #discardState = false;
  /** The loop is blocked on a read while the window is full. */
  #waitingForRoom = false;
  /** Resolves the loop's wait for the consumer to read. */
  #wake: (() => void) | undefined = undefined;
  #renewal: ReturnType<typeof setTimeout> | undefined = undefined;
  #renewing: Promise<void> | undefined = undefined;
  /** When the hold was last taken or renewed (the clock of `now()`). */
  #heldAt = 0;
  #closeOutcome: CloseOutcome = undefined;
  /** Settles once the batch and its cleanup are over (never rejects). */
  readonly finished: Promise<void>;
  #finish: () => void = () => undefined;

  constructor(backend: Backend, settings: BatchSettings, consumer: Consumer) {
    this.#backend = backend;
    this.#settings = settings;
    this.#consumer = consumer;
    this.#redis = backend.client.redis;
    this.#keys = backend.keys.batch(settings.batchId);
    this.#guard = this.#newGuard();
    this.#waits = this.#guard;
    this.finished = new Promise((resolve) => (this.#finish = resolve));
  }

  /**
   * Runs the batch: resolves once every result was handed and the keys are gone; rejects with
   * the error that ended it. An abort of the caller's signal, or an outage, rejects at once.
   */
  run(items: Iterable<unknown> | AsyncIterable<unknown>): Promise<void> {
    return new Promise((resolve, reject) => {
      const signal = this.#settings.signal;
      const onAbort = () => {
        this.#stopWith(signal?.reason);
        reject(signal?.reason as Error);
      };
      if (signal?.aborted === true) {
        this.#finish();
        reject(signal.reason as Error);
        return;
      }
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#execute(items, () => {
        // An outage is not waited out a second time in the cleanup.
        const failure = this.#guard.failure;
        if (failure?.error instanceof RedisUnavailableError) reject(failure.error);
      }).then(
        (failure) => {
          signal?.removeEventListener("abort", onAbort);
          if (failure === undefined) resolve();
          else reject(failure.error);
        },
        (error: unknown) => {
          signal?.removeEventListener("abort", onAbort);
          reject(error);
        },
      );
    });
  }

  /**
   * Stops the batch: the queue is closing (a named batch keeps its resume state), or the
   * consumer left (`keep` false: nothing is kept). Resolves with what closing the input
   * threw, once the cleanup is over.
   */
  async stop(reason: unknown, keep: boolean): Promise<CloseOutcome> {
    if (!keep && this.#guard.failure === undefined) this.#discardState = true;
    this.#stopWith(reason);
    await this.finished;
    return this.#closeOutcome;
  }

  /** The consumer read: there may be room to take more input now. */
  resume(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
    if (this.#waitingForRoom && this.#open() < this.#settings.window) {
      this.#waitingForRoom = false;
      this.#wakeRead();
    }
  }

  /** Ends the loop's blocking read early. */
  #wakeRead(): void {
    if (!this.#held || this.#lost) return;
    this.#backend.scripts
      .wake(this.#keys, this.#holder, this.#settings.keepFor)
      .catch(() => undefined);
  }

  /**
   * Marks yielded results of a stream as delivered: they leave Redis, and a resumed stream
   * skips their items. Written with the next read.
   */
  forget(index: number): void {
    this.#forgotten.push(index);
  }

  #stopWith(reason: unknown): void {
    if (this.#guard.failure !== undefined) return;
    this.#guard.fail(reason);
    this.#wakeRead();
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  /** How many items were taken from the input. */
  get taken(): number {
    return this.#taken;
  }

  #open(): number {
    return this.#taken - this.#skipped - this.#consumer.handed();
  }

  /** The whole batch, cleanup included; resolves with how it failed, if it did. */
  async #execute(
    items: Iterable<unknown> | AsyncIterable<unknown>,
    onFailure: () => void,
  ): Promise<{ readonly error: unknown } | undefined> {
    let blocking: Client | undefined;
    let complete = false;
    let reusable = true;
    try {
      this.#iterator = iteratorOf(items);
      const isAsync = Symbol.asyncIterator in (items as object);
      await this.#guard.wait(this.#backend.ready());
      blocking = this.#backend.blocking.take();
      await this.#guard.wait(whenReady(blocking.redis, this.#backend.connectTimeout));
      await this.#start();
      await this.#loop(blocking.redis, isAsync);
      // The loop also ends when the last item failed a fail-fast batch.
      complete = this.#guard.failure === undefined;
    } catch (error) {
      this.#guard.fail(error);
    }
    const failure = this.#guard.failure;
    // The cleanup's awaits are not cut short by the batch's end, only by an outage.
    this.#waits = this.#newGuard();
    try {
      if (failure !== undefined) onFailure();
      this.#stopRenewal();
      if (complete) {
        this.#report(true);
        await this.#settled();
      } else {
        await this.#interrupted(blocking?.redis);
      }
    } catch {
      // Redis went away during the cleanup: the keys expire after keepFor.
      reusable = false;
    } finally {
      this.#pending?.catch(() => undefined);
      if (!complete && this.#iterator !== undefined) {
        this.#closeOutcome = await closeQuietly(this.#iterator);
      }
      if (blocking !== undefined) {
        if (reusable) await this.#backend.blocking.give(blocking);
        else await closeClient(blocking, 0);
      }
      this.#finish();
    }
    return failure;
  }

  /** Takes the batch's hold and writes its meta record; keeps both alive while it runs. */
  async #start(): Promise<void> {
    const settings = this.#settings;
    const meta = metaFields({
      run: this.#holder,
      stages: this.#backend.stageNames,
      version: this.#backend.version,
      context: settings.context,
      failFast: settings.failFast,
      named: settings.named,
    });
    const asked = now();
    const started = await this.#redisWait(
      this.#backend.scripts.start(
        this.#keys,
        this.#holder,
        this.#backend.lockDuration,
        settings.keepFor,
        meta,
      ),
    );
    if (!started) throw new BatchInUseError(settings.batchId, this.#held ? "taken" : "running");
    this.#held = true;
    this.#heldAt = asked;
    this.#stopRenewal();
    this.#scheduleRenewal();
  }

  #scheduleRenewal(): void {
    this.#renewal = setTimeout(() => {
      void this.#renew();
    }, this.#backend.lockDuration / 3);
  }

  /** True when the hold may have lapsed: not renewed for a lockDuration. */
  #lapsed(): boolean {
    return now() - this.#heldAt >= this.#backend.lockDuration;
  }

  /** Renews the hold (one renewal at a time); a lost batch ends with a `BatchInUseError`. */
  #renew(): Promise<void> {
    this.#renewing ??= this.#renewOnce().finally(() => {
      this.#renewing = undefined;
      if (this.#renewal !== undefined) this.#scheduleRenewal();
    });
    return this.#renewing;
  }

  async #renewOnce(): Promise<void> {
    const asked = now();
    let state: "held" | "lost" | "gone";
    try {
      state = await this.#backend.scripts.renew(
        this.#keys,
        this.#holder,
        this.#backend.lockDuration,
        this.#settings.keepFor,
      );
    } catch {
      return; // Redis is away: the batch's own awaits notice the outage.
    }
    if (state === "held") this.#heldAt = asked;
    else if (state === "lost") this.#loseHold("taken");
    else if (this.#lapsed()) this.#loseHold("gone");
    // Else the meta record is gone while the hold held: Redis lost it (see #sweep).
  }

  #loseHold(how: "taken" | "gone"): void {
    this.#lost = true;
    this.#stopWith(new BatchInUseError(this.#settings.batchId, how));
  }

  #stopRenewal(): void {
    clearTimeout(this.#renewal);
    this.#renewal = undefined;
  }

  /**
   * An await on Redis: cut short when the batch ends, and failing with an outage when Redis
   * does not answer within `outageTimeout` (beyond `blocking`, a blocking read's own wait).
   */
  #redisWait<T>(promise: Promise<T>, blocking = 0): Promise<T> {
    return this.#waits.wait(promise, blocking);
  }

  #newGuard(): Guard {
    const timeout = this.#settings.outageTimeout;
    return new Guard(timeout, () => this.#backend.outage(timeout));
  }

  async #loop(blocking: Redis, isAsync: boolean): Promise<void> {
    const window = this.#settings.window;
    let exhausted = false;
    for (;;) {
      while (!exhausted && this.#open() < window) {
        const room = Math.min(window - this.#open(), BULK_COUNT);
        const taken = await this.#guard.wait(this.#take(room, isAsync));
        exhausted = taken.exhausted;
        if (taken.values.length > 0) await this.#enqueue(taken.values);
        if (taken.values.length === 0) break;
      }
      if (this.#outstanding.size === 0) {
        if (exhausted && this.#open() === 0) return;
        // Every result is in; the consumer has not read enough of them to make room.
        await this.#guard.wait(new Promise<void>((resolve) => (this.#wake = resolve)));
        continue;
      }
      await this.#writeForgotten();
      this.#waitingForRoom = !exhausted && this.#open() >= window;
      const settled = await this.#collect(blocking);
      this.#waitingForRoom = false;
      this.#deliver(settled);
    }
  }

  /**
   * Takes up to `room` items. From an async input it stops early when the next item is not
   * ready at once, so that a slow input never holds back the items already taken.
   */
  async #take(room: number, isAsync: boolean): Promise<{ values: Entry[]; exhausted: boolean }> {
    const iterator = this.#iterator as Iterator<unknown> | AsyncIterator<unknown>;
    const values: Entry[] = [];
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
      values.push({ index: this.#taken++, value: step.value });
    }
    return { values, exhausted: false };
  }

  /** Enqueues one job per item; settles at once the items that cannot or need not run. */
  async #enqueue(entries: Entry[]): Promise<void> {
    const settled: { index: number; result: PromiseSettledResult<unknown> }[] = [];
    let fresh: Entry[] = [];
    let sizes: number[] = [];
    const maxItemBytes = this.#settings.maxItemBytes;
    for (const entry of entries) {
      const checked = checkItem(entry, maxItemBytes);
      if (typeof checked === "number") {
        fresh.push(entry);
        sizes.push(checked);
      } else {
        settled.push({ index: entry.index, result: { status: "rejected", reason: checked } });
      }
    }
    if (fresh.length > 0 && this.#settings.named) {
      const resumed = await this.#resume(fresh, sizes, settled);
      fresh = resumed.fresh;
      sizes = resumed.sizes;
    }
    if (fresh.length > 0) {
      // After a pause (of this process, or of Redis) the hold may have lapsed: never enqueue
      // for a batch another producer may have taken over.
      if (now() - this.#heldAt > this.#backend.lockDuration / 2) {
        await this.#redisWait(this.#renew());
        if (this.#guard.failure !== undefined) return;
      }
      for (const entry of fresh) this.#outstanding.add(entry.index);
      try {
        await this.#redisWait(addJobs(this.#backend.queue, this.#settings.batchId, fresh, sizes));
      } catch (error) {
        for (const entry of fresh) this.#outstanding.delete(entry.index);
        // Redis is full: the batch's state is not worth keeping there.
        if (error instanceof PipelineError) this.#discardState = true;
        throw error;
      }
    }
    this.#deliver(settled);
  }

  /**
   * A named batch: items with a result in Redis settle from it, and a stream skips those it
   * yielded before; only the others run. A fail-fast batch runs its stored failures again.
   */
  async #resume(
    entries: Entry[],
    sizes: number[],
    settled: { index: number; result: PromiseSettledResult<unknown> }[],
  ): Promise<{ fresh: Entry[]; sizes: number[] }> {
    const keys = this.#keys;
    const { streams, failFast } = this.#settings;
    const pipeline = this.#redis
      .pipeline()
      .hmget(keys.results, ...entries.map((entry) => String(entry.index)));
    if (streams) for (const entry of entries) pipeline.getbit(keys.yielded, entry.index);
    const replies = (await this.#redisWait(pipeline.exec())) ?? [];
    const records = replies[0]?.[1] as (string | null)[];
    const fresh: Entry[] = [];
    const freshSizes: number[] = [];
    const rerun: string[] = [];
    entries.forEach((entry, offset) => {
      const text = records[offset];
      if (typeof text === "string") {
        const record = JSON.parse(text) as ResultRecord;
        if (!(failFast && isFailure(record))) {
          settled.push({ index: entry.index, result: settle(record) });
          return;
        }
        rerun.push(String(entry.index));
      } else if (streams && replies[offset + 1]?.[1] === 1) {
        this.#skipped++;
        this.#consumer.skip?.(entry.index);
        return;
      }
      fresh.push(entry);
      freshSizes.push(sizes[offset] ?? 0);
    });
    if (rerun.length > 0) await this.#redisWait(this.#redis.hdel(keys.results, ...rerun));
    return { fresh, sizes: freshSizes };
  }

  /** Hands results to the consumer, in the order given; a failure may end the batch. */
  #deliver(settled: readonly { index: number; result: PromiseSettledResult<unknown> }[]): void {
    if (settled.length === 0) return;
    for (const { index, result } of settled) {
      // After a fail-fast failure (or any end), later results are not handed.
      if (this.#guard.failure !== undefined) break;
      this.#done++;
      if (result.status === "rejected") {
        this.#failed++;
        if (this.#settings.failFast) {
          this.#report(false);
          this.#stopWith(result.reason);
          return;
        }
      }
      this.#consumer.arrive(index, result);
    }
    this.#report(false);
  }

  /** Waits for workers to settle items; looks for jobs gone without a result when none does. */
  async #collect(
    blocking: Redis,
    stopping = false,
  ): Promise<{ index: number; result: PromiseSettledResult<unknown> }[]> {
    const keys = this.#keys;
    const reply = await this.#redisWait(
      blocking.blmpop(IDLE_SECONDS, 1, keys.done, "LEFT", "COUNT", READ_COUNT),
      IDLE_MS,
    );
    if (reply === null) return this.#sweep(stopping);
    const settledIndices: number[] = [];
    const cancelled: number[] = [];
    for (const entry of reply[1]) {
      const { index, cancelled: wasCancelled } = parseDoneEntry(entry);
      if (!this.#outstanding.delete(index)) continue; // a duplicate, a wake-up, or stale
      this.#collected(index);
      if (wasCancelled) cancelled.push(index);
      else settledIndices.push(index);
    }
    if (stopping) return [];
    const settled: { index: number; result: PromiseSettledResult<unknown> }[] = [];
    if (settledIndices.length > 0) {
      const records = await this.#redisWait(
        this.#redis.hmget(keys.results, ...settledIndices.map((index) => String(index))),
      );
      settledIndices.forEach((index, offset) => {
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
    // Cancelled by a stop this batch has not heard of: it is stopping (a worker's fail-fast
    // announcement precedes its own entries), or another run of it stopped it.
    for (const index of cancelled) {
      settled.push({
        index,
        result: {
          status: "rejected",
          reason: new PipelineError(`Item ${String(index)} was cancelled: its batch was stopped`),
        },
      });
    }
    return settled;
  }

  #collected(index: number): void {
    this.#recent.push(index);
    if (this.#recent.length > 2 * this.#settings.window) {
      this.#recent = this.#recent.slice(-this.#settings.window);
    }
  }

  /**
   * When no result came for a while: items whose job BullMQ moved to failed (stalled too
   * often), items whose job is gone although no done entry came (settled from their result
   * when it is there, else failed as lost once a second sweep finds them so), and every
   * outstanding item when the batch's meta record is gone (Redis lost the batch).
   */
  async #sweep(
    stopping: boolean,
  ): Promise<{ index: number; result: PromiseSettledResult<unknown> }[]> {
    if (this.#outstanding.size === 0) return [];
    const { batchId } = this.#settings;
    const keys = this.#backend.keys;
    const indices = [...this.#outstanding];
    const pipeline = this.#redis
      .pipeline()
      .exists(this.#keys.meta)
      .zmscore(keys.failed, ...indices.map((index) => jobId(batchId, index)));
    for (const index of indices) pipeline.exists(keys.job(batchId, index));
    const replies = (await this.#redisWait(pipeline.exec())) ?? [];
    const settled: { index: number; result: PromiseSettledResult<unknown> }[] = [];
    if (replies[0]?.[1] === 0) {
      // Redis lost the batch (restarted empty, or evicted it): its jobs and results are gone.
      for (const index of indices) {
        this.#outstanding.delete(index);
        settled.push({
          index,
          result: { status: "rejected", reason: dataLost("the batch's jobs and results") },
        });
      }
      if (this.#lapsed()) {
        // Not Redis losing it, perhaps: this producer's hold lapsed meanwhile.
        this.#loseHold("gone");
        return [];
      }
      // The rest of the input can still run: the batch is written afresh.
      if (!stopping) await this.#start();
      return settled;
    }
    const scores = (replies[1]?.[1] ?? []) as (string | null)[];
    const gone: number[] = [];
    for (const [offset, index] of indices.entries()) {
      if (scores[offset] !== null && scores[offset] !== undefined) {
        const job = await this.#redisWait(this.#backend.queue.getJob(jobId(batchId, index)));
        const reason = new PipelineError(
          `BullMQ failed the job of item ${String(index)}: ${job?.failedReason ?? "unknown reason"}`,
        );
        await this.#redisWait(job?.remove().catch(() => undefined) ?? Promise.resolve());
        this.#outstanding.delete(index);
        settled.push({ index, result: { status: "rejected", reason } });
      } else if (replies[offset + 2]?.[1] === 0) gone.push(index);
    }
    const suspects = this.#suspects;
    this.#suspects = new Set();
    if (gone.length === 0) return settled;
    const records = await this.#redisWait(
      this.#redis.hmget(this.#keys.results, ...gone.map(String)),
    );
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
    return settled;
  }

  /** A batch whose every result was handed: its keys go once its last jobs are gone. */
  async #settled(): Promise<void> {
    await this.#jobsGone();
    const keys = this.#keys;
    await this.#redisWait(
      this.#backend.scripts.end(
        keys.hold,
        [keys.meta, keys.results, keys.done, keys.stop, keys.yielded],
        this.#holder,
      ),
    );
  }

  /**
   * A batch that did not settle: announces the stop, removes the waiting jobs, gives the
   * running ones a moment to report, then deletes its keys, or, for a named batch, all but its
   * resume state.
   */
  async #interrupted(blocking: Redis | undefined): Promise<void> {
    if (!this.#held || this.#lost) return;
    const keys = this.#keys;
    await this.#redisWait(
      this.#redis
        .multi()
        .set(keys.stop, "1", "PX", this.#settings.keepFor)
        .publish(this.#backend.keys.stopChannel, stopMessage(this.#settings.batchId, this.#holder))
        .exec(),
    );
    await this.#redisWait(this.#removeWaiting());
    const deadline = now() + STOP_WAIT_MS;
    while (this.#outstanding.size > 0 && blocking !== undefined && now() < deadline) {
      await this.#collect(blocking, true);
      if (this.#outstanding.size > 0) await this.#redisWait(this.#removeWaiting());
    }
    const keep = this.#settings.named && !this.#discardState;
    // What a stream yielded before it stopped is not run (nor yielded) again on resume.
    if (keep) await this.#writeForgotten();
    await this.#redisWait(
      this.#backend.scripts.end(
        keys.hold,
        keep ? [keys.done] : [keys.meta, keys.results, keys.done, keys.stop, keys.yielded],
        this.#holder,
      ),
    );
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

  /**
   * A worker records an item's result just before BullMQ removes its job: waits (briefly) until
   * the jobs of the last results are gone, so that a settled batch leaves nothing behind.
   */
  async #jobsGone(): Promise<void> {
    const keys = this.#recent.map((index) => this.#backend.keys.job(this.#settings.batchId, index));
    // BullMQ removes a job one round trip after its result: mostly gone by the first retry.
    for (let waited = 0, pause = 1; keys.length > 0 && waited < JOB_GONE_MS; waited += pause) {
      if ((await this.#redisWait(this.#redis.exists(...keys))) === 0) return;
      await new Promise((resolve) => setTimeout(resolve, pause));
      pause = Math.min(pause * 2, 10);
    }
  }

  async #writeForgotten(): Promise<void> {
    if (this.#forgotten.length === 0) return;
    const keys = this.#keys;
    const indices = this.#forgotten;
    this.#forgotten = [];
    const multi = this.#redis.multi().hdel(keys.results, ...indices.map(String));
    for (const index of indices) multi.setbit(keys.yielded, index, 1);
    multi.pexpire(keys.yielded, this.#settings.keepFor);
    await this.#redisWait(multi.exec());
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

async function closeQuietly(
  iterator: Iterator<unknown> | AsyncIterator<unknown>,
): Promise<CloseOutcome> {
  try {
    await iterator.return?.();
    return undefined;
  } catch (error) {
    return { error };
  }
}

function nextTurn(): Promise<typeof LATER> {
  return new Promise((resolve) => setImmediate(resolve, LATER));
}
