/**
 * The producer's side of one batch: takes the batch's hold ({@link Hold}), reads the input
 * lazily ({@link Input}), keeps at most `window` items taken and not yet handed to the caller
 * (jobs in Redis, results waiting there or in a stream's reorder ring), collects the results
 * the workers record ({@link Jobs}) and hands them to its {@link Consumer}.
 *
 * How it ends:
 * - settled (every item handed): its keys are deleted at once;
 * - interrupted (fail-fast, `queue.close()`, a consumer that left, the caller's signal, an
 *   outage, a refused enqueue): the stop is announced, the waiting jobs removed, the running
 *   ones given a moment to report their cancellation; a named batch then keeps its results
 *   (its resume state) for `keepFor` ms, any other deletes every key. The caller's signal and
 *   an outage settle the batch at once and leave that cleanup to run on (see
 *   {@link Batch.finished});
 * - lost (another producer took it over): it touches nothing.
 */
import type { Queue } from "bullmq";
import type { Redis } from "ioredis";
import { PipelineError, type Progress } from "../index.js";
import { now } from "../internal/clock.js";
import { closeClient, whenReady, type Client, type ConnectionPool } from "./connection.js";
import { addJobs, BULK_COUNT, checkItem, type Entry } from "./enqueue.js";
import { RedisUnavailableError } from "./errors.js";
import { Guard } from "./guard.js";
import { Hold } from "./hold.js";
import { Input, type CloseOutcome } from "./input.js";
import { Jobs, type Settlement } from "./jobs.js";
import type { BatchKeys, Keys } from "./keys.js";
import type { ProducerScripts } from "./scripts.js";
import {
  isFailure,
  metaFields,
  settle,
  stopMessage,
  type JobData,
  type ResultRecord,
} from "./wire.js";

export type { CloseOutcome };

/** What a batch needs from its {@link PipelineQueue}. */
export interface Backend {
  readonly queue: Queue<JobData>;
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

/** How long a stopping batch waits at most for its running jobs to report, in ms. */
const STOP_WAIT_MS = 5_000;

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
  readonly #hold: Hold;
  readonly #jobs: Jobs;
  #input: Input | undefined = undefined;
  /** The last bulk add of jobs, which the cleanup awaits before removing jobs. */
  #adding: Promise<void> = Promise.resolve();
  /** Results a stream yielded: deleted from Redis with the next read. */
  #forgotten: number[] = [];
  #skipped = 0;
  #done = 0;
  #failed = 0;
  #reported = "";
  /** The batch ended in a way that leaves no resume state worth keeping. */
  #discardState = false;
  /** The loop is blocked on a read while the window is full. */
  #waitingForRoom = false;
  /** The loop is blocked on a read (of the done list). */
  #reading = false;
  /** Resolves the loop's wait for the consumer to read. */
  #wake: (() => void) | undefined = undefined;
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
    this.#hold = new Hold({
      batchId: settings.batchId,
      keys: this.#keys,
      scripts: backend.scripts,
      lockDuration: backend.lockDuration,
      keepFor: settings.keepFor,
      onLost: (error) => {
        this.#stopWith(error);
      },
    });
    this.#jobs = new Jobs({
      batchId: settings.batchId,
      keys: this.#keys,
      queueKeys: backend.keys,
      queue: backend.queue,
      redis: this.#redis,
      window: settings.window,
      wait: (promise, blocking = 0) => this.#waits.wait(promise, blocking),
    });
    this.finished = new Promise((resolve) => (this.#finish = resolve));
  }

  /** How many items were taken from the input. */
  get taken(): number {
    return this.#input?.taken ?? 0;
  }

  /**
   * Runs the batch: resolves once every result was handed and the keys are gone; rejects with
   * the error that ended it. An abort of the caller's signal, or an outage, rejects at once.
   */
  run(items: Iterable<unknown> | AsyncIterable<unknown>): Promise<void> {
    return new Promise((resolve, reject) => {
      const signal = this.#settings.signal;
      if (signal?.aborted === true) {
        this.#finish();
        reject(signal.reason as Error);
        return;
      }
      const onAbort = () => {
        this.#stopWith(signal?.reason);
        reject(signal?.reason as Error);
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      const onEnd = (failure: { readonly error: unknown } | undefined) => {
        // An outage is not waited out a second time by the cleanup.
        if (failure?.error instanceof RedisUnavailableError) reject(failure.error);
      };
      this.#execute(items, onEnd).then(
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

  /** Ends the loop's blocking read early. */
  #wakeRead(): void {
    if (!this.#hold.held) return;
    this.#backend.scripts
      .wake(this.#keys, this.#hold.holder, this.#settings.keepFor)
      .catch(() => undefined);
  }

  /** Items taken from the input and not yet handed to the caller. */
  #open(): number {
    return this.taken - this.#skipped - this.#consumer.handed();
  }

  /**
   * An await on Redis: cut short when the batch ends, and failing with an outage when Redis
   * does not answer within `outageTimeout` (beyond `blocking`, a blocking read's own wait).
   */
  #redisWait<T>(promise: Promise<T>, blocking = 0): Promise<T> {
    return this.#waits.wait(promise, blocking);
  }

  /**
   * An await on Redis that the batch's end does not cut short (only an outage does): for the
   * writes whose outcome the cleanup must know (the hold taken).
   */
  #answered<T>(promise: Promise<T>): Promise<T> {
    return this.#newGuard().wait(promise, 0);
  }

  #newGuard(timeout = this.#settings.outageTimeout): Guard {
    return new Guard(timeout, () => this.#backend.outage(timeout));
  }

  /** The whole batch, cleanup included; resolves with how it failed, if it did. */
  async #execute(
    items: Iterable<unknown> | AsyncIterable<unknown>,
    onEnd: (failure: { readonly error: unknown } | undefined) => void,
  ): Promise<{ readonly error: unknown } | undefined> {
    let blocking: Client | undefined;
    let complete = false;
    try {
      // An input that was slow to answer has an item now: end a blocking read for it.
      this.#input = new Input(items, () => {
        if (this.#reading) this.#wakeRead();
      });
      await this.#guard.wait(this.#backend.ready());
      blocking = this.#backend.blocking.take();
      await this.#guard.wait(whenReady(blocking.redis, this.#backend.connectTimeout));
      await this.#answered(this.#hold.take(this.#meta()));
      await this.#loop(blocking.redis);
      // The loop also ends when the last item failed a fail-fast batch.
      complete = this.#guard.failure === undefined;
    } catch (error) {
      this.#guard.fail(error);
    }
    const failure = this.#guard.failure;
    onEnd(failure);
    // The cleanup's awaits are not cut short by the batch's end, only by an outage. It runs on
    // after an outage ended the batch, so it waits for Redis a little longer: up to the hold's
    // lockDuration at least (a resume waits that long anyway, should the cleanup give up).
    this.#waits = this.#newGuard(
      Math.max(this.#settings.outageTimeout, this.#backend.lockDuration),
    );
    this.#hold.release();
    let reusable = true;
    try {
      if (complete) {
        this.#report(true);
        await this.#settled();
      } else {
        await this.#interrupted(blocking?.redis);
      }
    } catch {
      // Redis went away during the cleanup: the keys expire after keepFor.
      reusable = false;
    }
    if (!complete && this.#input !== undefined) this.#closeOutcome = await this.#input.close();
    if (blocking !== undefined) {
      if (reusable) await this.#backend.blocking.give(blocking);
      else await closeClient(blocking, 0);
    }
    this.#finish();
    return failure;
  }

  /** The batch's meta record (see `BatchMeta`), as hash fields. */
  #meta(): string[] {
    const settings = this.#settings;
    return metaFields({
      run: this.#hold.holder,
      stages: this.#backend.stageNames,
      version: this.#backend.version,
      context: settings.context,
      failFast: settings.failFast,
      named: settings.named,
    });
  }

  async #loop(blocking: Redis): Promise<void> {
    const window = this.#settings.window;
    const input = this.#input as Input;
    for (;;) {
      while (!input.exhausted && this.#open() < window) {
        const room = Math.min(window - this.#open(), BULK_COUNT);
        // With jobs out, a slow input does not hold back the collection of their results.
        const taken = await this.#guard.wait(input.take(room, this.#jobs.size === 0));
        if (taken.length === 0) break;
        await this.#enqueue(taken);
      }
      if (this.#jobs.size === 0) {
        if (input.exhausted && this.#open() === 0) return;
        // Every result is in; the consumer has not read enough of them to make room.
        await this.#guard.wait(new Promise<void>((resolve) => (this.#wake = resolve)));
        continue;
      }
      await this.#writeForgotten();
      this.#waitingForRoom = !input.exhausted && this.#open() >= window;
      this.#reading = true;
      const collected = await this.#jobs.collect(blocking, false);
      this.#reading = false;
      this.#waitingForRoom = false;
      // After a pause (of this process, or of Redis) the hold may have lapsed, and another
      // producer may have run the batch meanwhile (its results then read as lost): learn
      // whether the batch is still this one's before anything read is handed out.
      if (this.#hold.lapsed) await this.#redisWait(this.#hold.freshen());
      this.#deliver(collected.settled);
      if (collected.metaGone) await this.#metaGone();
    }
  }

  /**
   * The batch's meta record is gone: Redis lost it (its items failed as lost, and the rest of
   * the input runs, the batch written afresh), unless this producer's hold lapsed meanwhile
   * (another producer may have run the batch: it ends, touching nothing).
   */
  async #metaGone(): Promise<void> {
    this.#hold.metaGone();
    if (this.#guard.failure === undefined) await this.#answered(this.#hold.take(this.#meta()));
  }

  /** Enqueues one job per item; settles at once the items that cannot or need not run. */
  async #enqueue(entries: Entry[]): Promise<void> {
    const settled: Settlement[] = [];
    let fresh: Entry[] = [];
    let sizes: number[] = [];
    for (const entry of entries) {
      const checked = checkItem(entry, this.#settings.maxItemBytes);
      if (typeof checked === "number") {
        fresh.push(entry);
        sizes.push(checked);
      } else {
        settled.push({ index: entry.index, result: { status: "rejected", reason: checked } });
      }
    }
    if (fresh.length > 0 && this.#settings.named) {
      ({ fresh, sizes } = await this.#resume(fresh, sizes, settled));
    }
    if (fresh.length > 0) {
      // After a pause (of this process, or of Redis) the hold may have lapsed: never enqueue
      // for a batch another producer may have taken over.
      await this.#redisWait(this.#hold.freshen());
      if (this.#guard.failure !== undefined) return;
      const indices = fresh.map((entry) => entry.index);
      this.#jobs.add(indices);
      const adding = addJobs(this.#backend.queue, this.#settings.batchId, fresh, sizes);
      // The cleanup waits for it (should the batch end meanwhile), then removes what it added.
      this.#adding = adding.catch(() => undefined);
      try {
        await this.#redisWait(adding);
      } catch (error) {
        if (error instanceof PipelineError) {
          // Redis refused the jobs (it is full), and those that got in were removed: the
          // batch's state is not worth keeping there.
          this.#jobs.forget(indices);
          this.#discardState = true;
        }
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
    settled: Settlement[],
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
  #deliver(settled: readonly Settlement[]): void {
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

  /** A batch whose every result was handed: its keys go once its last jobs are gone. */
  async #settled(): Promise<void> {
    await this.#jobs.gone();
    const keys = this.#keys;
    await this.#redisWait(
      this.#backend.scripts.end(
        keys.hold,
        [keys.meta, keys.results, keys.done, keys.stop, keys.yielded],
        this.#hold.holder,
      ),
    );
  }

  /**
   * A batch that did not settle: announces the stop, removes the waiting jobs, gives the
   * running ones a moment to report, then deletes its keys, or, for a named batch, all but its
   * resume state. A batch another producer took over is not touched.
   */
  async #interrupted(blocking: Redis | undefined): Promise<void> {
    if (!this.#hold.held) return;
    const keys = this.#keys;
    const { batchId, keepFor, named } = this.#settings;
    await this.#redisWait(
      this.#redis
        .multi()
        .set(keys.stop, "1", "PX", keepFor)
        .publish(this.#backend.keys.stopChannel, stopMessage(batchId, this.#hold.holder))
        .exec(),
    );
    await this.#redisWait(this.#adding);
    await this.#jobs.removeWaiting();
    const deadline = now() + STOP_WAIT_MS;
    while (this.#jobs.size > 0 && blocking !== undefined && now() < deadline) {
      await this.#jobs.collect(blocking, true);
      if (this.#jobs.size > 0) await this.#jobs.removeWaiting();
    }
    // A worker writes a cancelled item's done entry just before BullMQ removes its job: the
    // batch settles once those jobs are gone too, so that none is left behind.
    await this.#jobs.gone();
    const keep = named && !this.#discardState;
    // What a stream yielded before it stopped is not run (nor yielded) again on resume.
    if (keep) await this.#writeForgotten();
    await this.#redisWait(
      this.#backend.scripts.end(
        keys.hold,
        keep ? [keys.done] : [keys.meta, keys.results, keys.done, keys.stop, keys.yielded],
        this.#hold.holder,
      ),
    );
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
      inFlight: this.#jobs.size,
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
