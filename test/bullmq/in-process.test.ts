/**
 * `async-pipeline/bullmq` with the workers in the test process (so coverage sees them), against
 * the real Redis of the global setup: the window, endless inputs, JSON safety, stage-name
 * mismatches, an unreachable Redis, graceful close, stream forms, progress and bad options.
 */
import { Queue, Worker } from "bullmq";
import { Redis } from "ioredis";
import { afterAll, describe, expect, it, vi } from "vitest";
import {
  Pipeline,
  PipelineError,
  Stage,
  StageExecutionError,
  type Progress,
  type StageCall,
} from "../../src/index.js";
import {
  BatchInUseError,
  PipelineMismatchError,
  PipelineQueue,
  PipelineWorker,
  RedisUnavailableError,
} from "../../src/bullmq/index.js";
import { ErrorReporter, printError } from "../../src/bullmq/report.js";
import { StopChannel } from "../../src/bullmq/stops.js";
import { metaFields } from "../../src/bullmq/wire.js";
import { freePort } from "../../demo/redis-server.js";
import { arithmetic, renamed } from "./pipelines.js";
import {
  batchState,
  client,
  connection,
  jobKeys,
  keysContaining,
  queueName,
  redisUrl,
  RESUME_STATE,
  until,
} from "./support.js";

const redis = client();
const closing: { close(): Promise<void> }[] = [];

afterAll(async () => {
  await Promise.all(closing.map((entry) => entry.close()));
  redis.disconnect();
});

/** A worker and a queue on a fresh queue name, closed after the file. */
function pair<I, O, C extends object>(
  pipeline: Pipeline<I, O, C>,
  workerOptions: { concurrency?: number } = {},
  workerPipeline: Pipeline<unknown, unknown, object> = pipeline as never,
) {
  const name = queueName();
  const worker = new PipelineWorker(workerPipeline, {
    queueName: name,
    connection: connection(),
    ...workerOptions,
  });
  const queue = new PipelineQueue(pipeline, { queueName: name, connection: connection() });
  closing.push(queue, worker);
  return { name, worker, queue };
}

const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const slow = new Pipeline([
  new Stage("slow", async (value: number) => {
    await delay(5);
    return value + 1;
  }),
]);
const echo = new Pipeline([new Stage("echo", (value: unknown): unknown => value)]);

describe("window", { timeout: 30_000 }, () => {
  it("never has more than `window` jobs of the batch in Redis", async () => {
    const { name, queue } = pair(slow, { concurrency: 3 });
    const batchId = `window-${crypto.randomUUID()}`;
    const reported: number[] = [];
    let finished = false;
    let most = 0;
    const sampling = (async () => {
      while (!finished) most = Math.max(most, (await jobKeys(redis, name, batchId)).length);
    })();
    const items = Array.from({ length: 60 }, (_, index) => index);
    const outputs = await queue.map(items, {
      batchId,
      window: 5,
      onProgress: (progress) => reported.push(progress.inFlight),
    });
    finished = true;
    await sampling;
    expect(outputs).toEqual(items.map((item) => item + 1));
    expect(most).toBeGreaterThan(0);
    expect(most).toBeLessThanOrEqual(5);
    expect(Math.max(...reported)).toBeLessThanOrEqual(5);
  });

  it("runs an endless input in bounded memory and stops cleanly on abort", async () => {
    const { queue } = pair(slow, { concurrency: 4 });
    let pulled = 0;
    let closed = false;
    function* endless() {
      try {
        for (;;) yield pulled++;
      } finally {
        closed = true;
      }
    }
    const controller = new AbortController();
    const reason = new Error("enough");
    const batchId = `endless-${crypto.randomUUID()}`;
    let seen = 0;
    let mostAhead = 0;
    const outcome = await (async () => {
      for await (const output of queue.stream(endless(), {
        batchId,
        window: 8,
        ordered: false,
        signal: controller.signal,
      })) {
        expect(typeof output).toBe("number");
        seen++;
        mostAhead = Math.max(mostAhead, pulled - seen);
        if (seen === 150) controller.abort(reason);
      }
    })().catch((error: unknown) => error);
    expect(outcome).toBe(reason);
    expect(mostAhead).toBeLessThanOrEqual(8);
    // The abort settled the batch at once; its cleanup follows: the input closed, the jobs
    // gone, and the named batch's resume state kept (for keepFor), until discarded.
    await until(() => closed);
    await until(async () =>
      (await batchState(redis, batchId)).every((part) => RESUME_STATE.includes(part)),
    );
    await until(async () => {
      try {
        await queue.discard(batchId);
        return true;
      } catch {
        return false; // still held by the stopping batch
      }
    });
    expect(await keysContaining(redis, batchId)).toEqual([]);
  });

  it("leaving a stream early stops the batch and removes its keys", async () => {
    const { queue } = pair(slow, { concurrency: 2 });
    const batchId = `break-${crypto.randomUUID()}`;
    const seen: number[] = [];
    for await (const output of queue.stream(
      Array.from({ length: 100 }, (_, index) => index),
      { batchId, window: 10 },
    )) {
      seen.push(output);
      if (seen.length === 3) break;
    }
    expect(seen).toEqual([1, 2, 3]);
    expect(await keysContaining(redis, batchId)).toEqual([]);
  });
});

describe("stopping a batch, workers in this process", { timeout: 30_000 }, () => {
  const hanging = (started: number[], aborted: number[]) =>
    new Pipeline([
      new Stage("hang", (value: number, _context: object, call: { signal: AbortSignal }) => {
        started.push(value);
        if (value === 2) return Promise.reject(new Error("two"));
        return new Promise<number>((_resolve, reject) => {
          call.signal.addEventListener("abort", () => {
            aborted.push(value);
            reject(call.signal.reason as Error);
          });
        });
      }),
    ]);

  it("map fails fast and cancels what runs; a named batch keeps its resume state", async () => {
    const started: number[] = [];
    const aborted: number[] = [];
    const { queue } = pair(hanging(started, aborted), { concurrency: 3 });
    const batchId = `fail-${crypto.randomUUID()}`;
    await expect(queue.map([0, 1, 2, 3, 4, 5], { batchId })).rejects.toThrow(
      'Stage "hang" failed: two',
    );
    expect(aborted.sort()).toEqual(started.filter((value) => value !== 2).sort());
    // No job left; what is kept expires (keepFor), and discard deletes it at once.
    const kept = await batchState(redis, batchId);
    expect(kept.every((part) => RESUME_STATE.includes(part))).toBe(true);
    for (const part of kept) {
      const ttl = await redis.pttl(`bull:${queue.queue.name}:pipeline:${batchId}${part}`);
      expect(ttl).toBeGreaterThan(0);
      expect(ttl).toBeLessThanOrEqual(7 * 24 * 3_600_000);
    }
    await queue.discard(batchId);
    expect(await keysContaining(redis, batchId)).toEqual([]);
  });

  it("an unnamed batch fails fast too, and leaves no key", async () => {
    const started: number[] = [];
    const aborted: number[] = [];
    const { name, queue } = pair(hanging(started, aborted), { concurrency: 3 });
    await expect(queue.map([0, 1, 2, 3, 4, 5])).rejects.toThrow('Stage "hang" failed: two');
    expect(aborted.sort()).toEqual(started.filter((value) => value !== 2).sort());
    expect(await keysContaining(redis, `${name}:pipeline:`)).toEqual([]);
  });

  it("an abort rejects with the signal's reason", async () => {
    const started: number[] = [];
    const aborted: number[] = [];
    const { queue } = pair(hanging(started, aborted), { concurrency: 2 });
    const controller = new AbortController();
    const batchId = `abort-${crypto.randomUUID()}`;
    const outcome = queue.mapSettled([0, 1, 3, 4], { batchId, signal: controller.signal });
    await until(() => started.length === 2);
    controller.abort("stop now");
    await expect(outcome).rejects.toBe("stop now");
    // The cleanup follows the rejection: the running items are cancelled, no job is left.
    await until(() => aborted.length === 2);
    expect(aborted.sort()).toEqual([0, 1]);
    await until(async () =>
      (await batchState(redis, batchId)).every((part) => RESUME_STATE.includes(part)),
    );
    expect(started.sort()).toEqual([0, 1]);
  });
});

describe("JSON", { timeout: 30_000 }, () => {
  it("fails an item that is not JSON-safe with a TypeError naming its index", async () => {
    const { queue } = pair(echo);
    const items: unknown[] = [
      1,
      new Date(0),
      { a: undefined },
      Number.NaN,
      // eslint-disable-next-line no-sparse-arrays -- a hole is what this checks
      [1, , 3],
      "ok",
      new Map(),
    ];
    const settled = await queue.mapSettled(items);
    expect(settled.map((entry) => entry.status)).toEqual([
      "fulfilled",
      "rejected",
      "rejected",
      "rejected",
      "rejected",
      "fulfilled",
      "rejected",
    ]);
    const messages = settled.map((entry) =>
      entry.status === "rejected" ? (entry.reason as TypeError).message : entry.value,
    );
    expect(messages[1]).toMatch(
      /^The item at index 1 is not JSON-safe \(value has a toJSON method \(a Date\)\)/,
    );
    expect(messages[2]).toContain("index 2 is not JSON-safe (value.a is undefined)");
    expect(messages[3]).toContain("index 3 is not JSON-safe (value is NaN)");
    expect(messages[4]).toContain("index 4 is not JSON-safe (value[1] is a hole)");
    expect(messages[6]).toContain("index 6 is not JSON-safe (value is a Map)");
    for (const index of [1, 2, 3, 4, 6]) {
      expect((settled[index] as PromiseRejectedResult).reason).toBeInstanceOf(TypeError);
    }
  });

  it("fails an item whose output is not JSON-safe, and map fails fast with it", async () => {
    const outputs = new Pipeline([
      new Stage("wrap", (value: number) => (value === 2 ? { at: new Set([value]) } : { value })),
    ]);
    const { queue } = pair(outputs);
    const settled = await queue.mapSettled([1, 2, 3]);
    expect(settled[0]).toEqual({ status: "fulfilled", value: { value: 1 } });
    const reason = (settled[1] as PromiseRejectedResult).reason as TypeError;
    expect(reason).toBeInstanceOf(TypeError);
    expect(reason.message).toContain(
      "The output of the item at index 1 is not JSON-safe (value.at is a Set)",
    );
    await expect(queue.map([1, 2, 3])).rejects.toThrow(/index 1 is not JSON-safe/);
  });

  it("rejects a context template that is not JSON-safe, and accepts cycles nowhere", async () => {
    const { queue } = pair(echo);
    await expect(queue.map([1], { context: { when: new Date() } })).rejects.toThrow(
      new TypeError(
        "context is not JSON-safe (context.when has a toJSON method (a Date)): it travels as JSON",
      ),
    );
    const cycle: Record<string, unknown> = {};
    cycle.self = cycle;
    const [entry] = await queue.mapSettled([cycle]);
    expect((entry as PromiseRejectedResult).reason).toEqual(
      new TypeError(
        "The item at index 0 is not JSON-safe (value.self is a circular reference): items, context templates and outputs travel as JSON",
      ),
    );
  });
});

describe("a worker whose pipeline has other stage names", { timeout: 30_000 }, () => {
  it("fails the job with an error naming both pipelines' stages", async () => {
    const { queue } = pair(arithmetic(), {}, renamed() as never);
    const [entry] = await queue.mapSettled(["3"]);
    const reason = (entry as PromiseRejectedResult).reason as Error;
    expect(reason.name).toBe("PipelineMismatchError");
    expect(reason.message).toBe(
      'The job was enqueued for a pipeline with stages ["parse","square","format"], but this worker runs ["parse","cube","format"]: run the same pipeline on the producer and the workers',
    );
  });
});

describe("an unreachable Redis", { timeout: 30_000 }, () => {
  it("fails batches and waitUntilReady with a RedisUnavailableError in bounded time", async () => {
    const port = await freePort(); // nothing listens there
    const options = {
      queueName: queueName(),
      connection: { host: "127.0.0.1", port },
      connectTimeout: 300,
    };
    const queue = new PipelineQueue(echo, options);
    const worker = new PipelineWorker(echo, { ...options, onError: () => undefined });
    const error = (await queue
      .map([1])
      .catch((reason: unknown) => reason)) as RedisUnavailableError;
    expect(error).toBeInstanceOf(RedisUnavailableError);
    expect(error).toBeInstanceOf(PipelineError);
    expect(error.name).toBe("RedisUnavailableError");
    expect(error.address).toBe(`127.0.0.1:${String(port)}`);
    expect(error.timeout).toBe(300);
    expect(error.message).toMatch(
      new RegExp(
        `^Could not connect to Redis at 127\\.0\\.0\\.1:${String(port)} within 300 ms: .*ECONNREFUSED`,
      ),
    );
    await expect(worker.waitUntilReady()).rejects.toBeInstanceOf(RedisUnavailableError);
    await queue.close();
    await worker.close();
  });
});

describe("worker.close()", { timeout: 30_000 }, () => {
  it("finishes the active jobs and takes no new ones", async () => {
    const events: string[] = [];
    const tagged = (tag: string) =>
      new Pipeline([
        new Stage("step", async (value: number) => {
          events.push(`${tag} start ${String(value)}`);
          await delay(150);
          events.push(`${tag} end ${String(value)}`);
          return value * 10;
        }),
      ]);
    const name = queueName();
    const first = new PipelineWorker(tagged("A"), {
      queueName: name,
      connection: connection(),
      concurrency: 2,
    });
    const queue = new PipelineQueue(tagged("producer"), {
      queueName: name,
      connection: connection(),
    });
    closing.push(queue);
    const mapping = queue.map([1, 2, 3, 4, 5, 6], { window: 6 });
    await until(() => events.filter((event) => event.startsWith("A start")).length === 2);
    await first.close();
    const startedByA = events.filter((event) => event.startsWith("A start"));
    expect(startedByA).toHaveLength(2);
    // Both jobs A had taken finished before close() resolved.
    expect(events.filter((event) => event.startsWith("A end"))).toHaveLength(2);
    const second = new PipelineWorker(tagged("B"), {
      queueName: name,
      connection: connection(),
      concurrency: 2,
    });
    closing.push(second);
    expect(await mapping).toEqual([10, 20, 30, 40, 50, 60]);
    expect(events.filter((event) => event.startsWith("A start"))).toEqual(startedByA);
    expect(events.filter((event) => event.startsWith("B start"))).toHaveLength(4);
    expect(first.close()).toBe(first.close());
  });
});

describe("stream, progress, connections", { timeout: 30_000 }, () => {
  it("streams in input order by default, settled entries on request", async () => {
    // The failing item fails well after the items before it finished: fail-fast aborts what
    // runs when an item fails, here nothing.
    const failing = new Pipeline([
      new Stage("check", async (value: number) => {
        await delay(value === 4 ? 150 : (value * 3) % 7);
        if (value === 4) throw new Error("four");
        return value;
      }),
    ]);
    const { queue } = pair(failing, { concurrency: 4 });
    const items = [0, 1, 2, 3, 4, 5, 6, 7];
    const ordered: PromiseSettledResult<number>[] = [];
    for await (const entry of queue.stream(items, { settled: true })) ordered.push(entry);
    expect(ordered.map((entry) => (entry.status === "fulfilled" ? entry.value : "x"))).toEqual([
      0,
      1,
      2,
      3,
      "x",
      5,
      6,
      7,
    ]);
    const unordered: number[] = [];
    for await (const entry of queue.stream(items, { settled: true, ordered: false })) {
      unordered.push(entry.status === "fulfilled" ? entry.value : -1);
    }
    expect(unordered.sort((a, b) => a - b)).toEqual([-1, 0, 1, 2, 3, 5, 6, 7]);
    const yielded: number[] = [];
    const error = await (async () => {
      for await (const value of queue.stream(items)) yielded.push(value);
    })().catch((reason: unknown) => reason);
    expect((error as Error).message).toBe('Stage "check" failed: four');
    expect(yielded).toEqual([0, 1, 2, 3]);
  });

  it("reports progress as in-process, and takes async inputs", async () => {
    const { queue } = pair(slow, { concurrency: 2 });
    const seen: Progress[] = [];
    async function* numbers() {
      for (let index = 0; index < 10; index++) {
        await delay(1);
        yield index;
      }
    }
    const outputs = await queue.map(numbers(), { onProgress: (progress) => seen.push(progress) });
    expect(outputs).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    const last = seen.at(-1)!;
    expect(last).toEqual({ done: 10, failed: 0, inFlight: 0, total: undefined });
    expect(Object.isFrozen(last)).toBe(true);
    const settled = await queue.mapSettled(new Set([1, 2]), {
      onProgress: () => {
        throw new Error("ignored");
      },
    });
    expect(settled).toEqual([
      { status: "fulfilled", value: 2 },
      { status: "fulfilled", value: 3 },
    ]);
  });

  it("uses an ioredis instance given as connection, and leaves it open", async () => {
    const shared = new Redis(redisUrl(), { maxRetriesPerRequest: null });
    const name = queueName();
    const worker = new PipelineWorker(slow, {
      queueName: name,
      connection: shared,
      prefix: "custom",
    });
    const queue = new PipelineQueue(slow, {
      queueName: name,
      connection: shared,
      prefix: "custom",
    });
    expect(await queue.map([1, 2])).toEqual([2, 3]);
    expect(queue.queue.name).toBe(name);
    expect(worker.worker.name).toBe(name);
    await queue.close();
    await worker.close();
    expect(await shared.ping()).toBe("PONG");
    shared.disconnect();
  });

  it("reuses its connections for blocking reads between batches, and closes them", async () => {
    const name = queueName();
    const tag = `pool-${crypto.randomUUID()}`;
    const worker = new PipelineWorker(slow, { queueName: name, connection: connection() });
    closing.push(worker);
    const queue = new PipelineQueue(slow, {
      queueName: name,
      connection: { ...connection(), connectionName: tag },
    });
    const named = async (): Promise<number> => {
      const list = String(await redis.client("LIST"));
      return list.split("\n").filter((line) => line.includes(` name=${tag} `)).length;
    };
    expect(await queue.map([1, 2])).toEqual([2, 3]);
    const after = await named();
    expect(await queue.map([3])).toEqual([4]);
    expect(await Promise.all([queue.map([5]), queue.map([6])])).toEqual([[6], [7]]);
    expect(await queue.map([7])).toEqual([8]);
    // Two batches at once needed a second connection; the later ones reused the two.
    expect(await named()).toBe(after + 1);
    await queue.close();
    await until(async () => (await named()) === 0);
  });

  it("settles an item whose job BullMQ failed instead of waiting for ever", async () => {
    const name = queueName();
    const queue = new PipelineQueue(echo, { queueName: name, connection: connection() });
    closing.push(queue);
    // A foreign worker on the queue whose processor throws: BullMQ moves the job to failed.
    const foreign = new Worker(name, () => Promise.reject(new Error("foreign failure")), {
      connection: new Redis(redisUrl(), { maxRetriesPerRequest: null }),
    });
    const [entry] = await queue.mapSettled(["x"]);
    await foreign.close();
    expect((entry as PromiseRejectedResult).reason).toEqual(
      new PipelineError("BullMQ failed the job of item 0: foreign failure"),
    );
  });

  it("settles an item whose job finished without a done entry, from Redis or as lost", async () => {
    const name = queueName();
    const queue = new PipelineQueue(echo, { queueName: name, connection: connection() });
    closing.push(queue);
    // A foreign worker completes the jobs without the library's write (as when it failed):
    // item 1's result it records by hand, item 0's nowhere.
    const foreign = new Worker(
      name,
      async (job) => {
        // A job's id is <batchId>-<index>.
        const at = (job.id ?? "").lastIndexOf("-");
        if (job.id?.slice(at + 1) !== "1") return;
        const results = `bull:${name}:pipeline:${job.id.slice(0, at)}:results`;
        await redis.hset(results, "1", JSON.stringify({ ok: "recorded" }));
      },
      { connection: new Redis(redisUrl(), { maxRetriesPerRequest: null }) },
    );
    const settled = await queue.mapSettled(["a", "b"]);
    await foreign.close();
    expect(settled).toEqual([
      {
        status: "rejected",
        reason: new PipelineError(
          "The job of item 0 is gone from Redis without a result: Redis lost it (evicted, or restarted without persistence) or refused the worker's write (out of memory: see the worker's onError)",
        ),
      },
      { status: "fulfilled", value: "recorded" },
    ]);
    expect(await keysContaining(redis, `${name}:pipeline:`)).toEqual([]);
  });
});

describe("stop announcements", { timeout: 30_000 }, () => {
  /** Writes a batch's meta record and enqueues one job, as a producer of an unnamed batch. */
  async function enqueue(queue: Queue, batchId: string, index: number): Promise<void> {
    const meta = `bull:${queue.name}:pipeline:${batchId}:meta`;
    const fields = metaFields({
      run: "r1",
      stages: ["echo"],
      version: undefined,
      context: undefined,
      failFast: false,
      named: false,
    });
    await redis.hset(meta, ...fields);
    await redis.pexpire(meta, 60_000);
    await queue.add("item", index, {
      jobId: `${batchId}-${String(index)}`,
      removeOnComplete: true,
      attempts: 1,
    });
  }

  /** A worker of an "echo" pipeline that records what it ran, and a plain BullMQ queue. */
  function recordingWorker() {
    const ran: unknown[] = [];
    const recording = new Pipeline([
      new Stage("echo", (value: unknown) => {
        ran.push(value);
        return value;
      }),
    ]);
    const name = queueName();
    const worker = new PipelineWorker(recording, { queueName: name, connection: connection() });
    const queue = new Queue(name, { connection: connection() });
    closing.push(worker, queue);
    return { ran, name, worker, queue };
  }

  async function doneEntries(name: string, batchId: string, count: number): Promise<string[]> {
    const key = `bull:${name}:pipeline:${batchId}:done`;
    await until(async () => (await redis.llen(key)) >= count);
    return redis.lrange(key, 0, -1);
  }

  it("a worker asks Redis for a batch it has not heard of, then trusts the announcements", async () => {
    const { ran, name, worker, queue } = recordingWorker();
    await worker.waitUntilReady();
    const base = `bull:${name}:pipeline`;
    // Stopped before this worker heard of it (no announcement): the job must not start.
    await redis.set(`${base}:early:stop`, "1");
    await enqueue(queue, "early", 0);
    expect(await doneEntries(name, "early", 1)).toEqual(["c0"]);
    // A batch it has checked once: a stop announced afterwards arrives as a message, and the
    // next job of it does not start although no stop flag is in Redis.
    await enqueue(queue, "late", 0);
    expect(await doneEntries(name, "late", 1)).toEqual(["0"]);
    // An announcement of another run of the batch is not this one's.
    await redis.publish(`${base}:stop`, "late:r0");
    await delay(50);
    await enqueue(queue, "late", 1);
    expect(await doneEntries(name, "late", 2)).toEqual(["0", "1"]);
    await redis.publish(`${base}:stop`, "late:r1");
    await delay(50);
    await enqueue(queue, "late", 2);
    expect(await doneEntries(name, "late", 3)).toEqual(["0", "1", "c2"]);
    expect(ran).toEqual([0, 1]);
    await redis.del(
      ...["early", "late"].flatMap((id) => [
        `${base}:${id}:stop`,
        `${base}:${id}:done`,
        `${base}:${id}:results`,
        `${base}:${id}:meta`,
      ]),
    );
  });

  it("a worker fails a job that no PipelineQueue enqueued, and runs nothing", async () => {
    const { ran, queue } = recordingWorker();
    const job = await queue.add("manual", 1, { jobId: "manual" });
    await until(async () => (await job.getState()) === "failed");
    const failed = await queue.getJob("manual");
    expect(failed?.failedReason).toBe("Job manual was not enqueued by a PipelineQueue");
    expect(ran).toEqual([]);
  });

  it("a worker on a lazyConnect instance listens without being asked to connect", async () => {
    const lazy = new Redis(redisUrl(), { lazyConnect: true, maxRetriesPerRequest: null });
    const name = queueName();
    const worker = new PipelineWorker(echo, { queueName: name, connection: lazy });
    const channel = `bull:${name}:pipeline:stop`;
    await until(async () => {
      const [, count] = (await redis.pubsub("NUMSUB", channel)) as [string, number];
      return count === 1;
    });
    await worker.close();
    lazy.disconnect();
  });

  it("after its subscription was lost, a new generation begins (announcements were missed)", async () => {
    const subscriber = client();
    const channel = `stops-${crypto.randomUUID()}`;
    const heard: string[] = [];
    const stops = new StopChannel(
      subscriber,
      channel,
      (id, run) => heard.push(`${id} ${run}`),
      () => undefined,
    );
    await stops.listening;
    expect(stops.generation).toBe(0);
    await redis.publish(channel, "b:r1");
    await until(() => heard.length === 1);
    expect(heard).toEqual(["b r1"]);
    const id = await subscriber.client("ID");
    await redis.client("KILL", "ID", String(id));
    await until(() => stops.generation !== 0);
    // Listening again once ioredis has reconnected and the subscription is answered.
    await until(() => stops.generation !== undefined);
    expect(stops.generation).toBe(1);
    await redis.publish(channel, "c:r2");
    await until(() => heard.length === 2);
    subscriber.disconnect();
  });
});

describe("errors keep their fields", { timeout: 30_000 }, () => {
  it("a remote error arrives with its own JSON-safe fields and its cause chain, up to 5 deep", async () => {
    class HttpError extends Error {
      override name = "HttpError";
      readonly status = 503;
      readonly code = "E_UPSTREAM";
      readonly details = { retryAfter: 30, hosts: ["a", "b"] };
      readonly socket = { write: () => undefined }; // not JSON-safe: left out
    }
    const failing = new Pipeline([
      new Stage("call", (value: number) => {
        let cause: unknown = new Error("level 6");
        for (let level = 5; level >= 2; level--) {
          cause = new Error(`level ${String(level)}`, { cause });
        }
        if (value === 1) throw Object.assign(new HttpError("upstream down"), { cause });
        if (value === 2) throw { code: 42, reason: "plain object" } as unknown as Error;
        throw "a string" as unknown as Error;
      }),
    ]);
    const { queue } = pair(failing);
    const settled = await queue.mapSettled([1, 2, 3]);
    const reasons = settled.map((entry) => (entry as PromiseRejectedResult).reason as Error);
    const original = (reasons[0] as StageExecutionError).originalError as Error &
      Record<string, unknown>;
    expect(reasons[0]).toBeInstanceOf(StageExecutionError);
    expect(original.name).toBe("HttpError");
    expect(original.message).toBe("upstream down");
    expect(original.status).toBe(503);
    expect(original.code).toBe("E_UPSTREAM");
    expect(original.details).toEqual({ retryAfter: 30, hosts: ["a", "b"] });
    expect("socket" in original).toBe(false);
    const chain: string[] = [];
    for (let cause: unknown = original.cause; cause instanceof Error; cause = cause.cause) {
      chain.push(cause.message);
    }
    // The error itself and four causes: five deep.
    expect(chain).toEqual(["level 2", "level 3", "level 4", "level 5"]);
    const plain = (reasons[1] as StageExecutionError).originalError as Error & { value: unknown };
    expect(plain).toBeInstanceOf(Error);
    expect(plain.message).toBe('{"code":42,"reason":"plain object"}');
    expect(plain.value).toEqual({ code: 42, reason: "plain object" });
    const text = (reasons[2] as StageExecutionError).originalError as Error & { value: unknown };
    expect(text.message).toBe("a string");
    expect(text.value).toBe("a string");
  });
});

describe("versions", { timeout: 30_000 }, () => {
  it("a worker of another version fails the job with a PipelineMismatchError naming both", async () => {
    const name = queueName();
    const worker = new PipelineWorker(echo, {
      queueName: name,
      connection: connection(),
      version: "2026.12.1",
    });
    const queue = new PipelineQueue(echo, {
      queueName: name,
      connection: connection(),
      version: "2026.12.2",
    });
    closing.push(queue, worker);
    const [entry] = await queue.mapSettled(["x"]);
    const reason = (entry as PromiseRejectedResult).reason as PipelineMismatchError;
    expect(reason).toBeInstanceOf(PipelineMismatchError);
    expect(reason).toBeInstanceOf(PipelineError);
    expect(reason.message).toBe(
      'The job was enqueued by a producer with version "2026.12.2" (stages ["echo"]), but this worker runs version "2026.12.1" (stages ["echo"]): run the same version on the producer and the workers',
    );
    expect(reason.producerVersion).toBe("2026.12.2");
    expect(reason.workerVersion).toBe("2026.12.1");
    await expect(queue.map(["x"])).rejects.toBeInstanceOf(PipelineMismatchError);
    // A producer without a version and a worker with one differ too.
    const unversioned = new PipelineQueue(echo, { queueName: name, connection: connection() });
    closing.push(unversioned);
    const [other] = await unversioned.mapSettled(["y"]);
    expect(((other as PromiseRejectedResult).reason as Error).message).toMatch(
      /^The job was enqueued by a producer with no version .* this worker runs version "2026\.12\.1"/,
    );
  });
});

describe("a producer's hold", { timeout: 30_000 }, () => {
  /**
   * A named batch of 300 items of 20 ms each, run by one worker in this process, from a queue
   * whose lockDuration is 300 ms; `removeAll` stops the worker and deletes what is left.
   */
  function heldBatch(prefix: string) {
    const nap = new Pipeline([
      new Stage("nap", async (value: number) => {
        await delay(20);
        return value;
      }),
    ]);
    const name = queueName();
    const worker = new PipelineWorker(nap, { queueName: name, connection: connection() });
    const queue = new PipelineQueue(nap, {
      queueName: name,
      connection: connection(),
      lockDuration: 300,
    });
    closing.push(queue, worker);
    const batchId = `${prefix}-${crypto.randomUUID()}`;
    const items = Array.from({ length: 300 }, (_, index) => index);
    const batch = queue.map(items, { batchId, window: 4 }).catch((error: unknown) => error);
    const removeAll = async () => {
      await worker.close();
      await queue.queue.obliterate({ force: true });
      const left = await keysContaining(redis, batchId);
      if (left.length > 0) await redis.del(...left);
    };
    return { batchId, base: `bull:${name}:pipeline:${batchId}`, batch, removeAll };
  }

  it("is renewed while its batch runs; once another producer took it over, the batch ends touching nothing", async () => {
    const { batchId, base, batch, removeAll } = heldBatch("held");
    await until(async () => (await redis.get(`${base}:hold`)) !== null);
    const holder = await redis.get(`${base}:hold`);
    // Taken for 300 ms: without a renewal (every 100 ms) it would be gone for good by now.
    await delay(600);
    await until(async () => (await redis.get(`${base}:hold`)) === holder, 5_000);
    // What a producer that resumed the batch after this one's hold lapsed would have done.
    await redis.set(`${base}:hold`, "another-producer", "PX", 60_000);
    const error = await batch;
    expect(error).toBeInstanceOf(BatchInUseError);
    expect((error as BatchInUseError).batchId).toBe(batchId);
    expect((error as Error).message).toMatch(/was taken over by another producer/);
    // The batch is the other producer's now: its hold and records are left as they were.
    expect(await redis.get(`${base}:hold`)).toBe("another-producer");
    expect(await redis.exists(`${base}:meta`)).toBe(1);
    await removeAll();
  });

  it("lapsed while its process was paused, and the batch gone: the batch ends touching nothing", async () => {
    const { batchId, base, batch, removeAll } = heldBatch("lapsed");
    await until(async () => (await redis.hlen(`${base}:results`)) >= 4);
    // Another producer ran the batch to the end meanwhile (its keys are gone), while this
    // process did not run for twice the lockDuration: nothing renewed the hold.
    await redis.del(`${base}:meta`, `${base}:hold`);
    const paused = performance.now();
    let spins = 0;
    while (performance.now() - paused < 600) spins++;
    expect(spins).toBeGreaterThan(0);
    const error = await batch;
    expect(error).toBeInstanceOf(BatchInUseError);
    expect((error as Error).message).toMatch(
      new RegExp(
        `^Batch "${batchId}" is gone from Redis after this producer could not renew its hold`,
      ),
    );
    // No key of the batch was written back.
    expect(await redis.exists(`${base}:meta`, `${base}:hold`)).toBe(0);
    await removeAll();
  });
});

describe("connections and limits", { timeout: 30_000 }, () => {
  it("takes a redis:// URL as connection, and a rediss:// one as TLS", async () => {
    const name = queueName();
    const worker = new PipelineWorker(slow, { queueName: name, connection: redisUrl() });
    const queue = new PipelineQueue(slow, { queueName: name, connection: redisUrl() });
    closing.push(queue, worker);
    expect(await queue.map([1, 2])).toEqual([2, 3]);
    const secure = new PipelineQueue(slow, {
      queueName: name,
      connection: "rediss://127.0.0.1:1",
      connectTimeout: 200,
    });
    const client = (secure.queue.opts.connection as Redis).options;
    expect(client.tls).toBeDefined();
    expect(client.maxRetriesPerRequest).toBeNull();
    await secure.close();
  });

  it("fails an item larger than maxItemBytes alone, with a RangeError naming its index and size", async () => {
    const { queue } = pair(echo);
    const big = "x".repeat(2_000);
    const settled = await queue.mapSettled(["small", big, { text: big }, 7], {
      maxItemBytes: 1_024,
    });
    expect(settled.map((entry) => entry.status)).toEqual([
      "fulfilled",
      "rejected",
      "rejected",
      "fulfilled",
    ]);
    const reasons = [1, 2].map(
      (index) => (settled[index] as PromiseRejectedResult).reason as Error,
    );
    expect(reasons[0]).toBeInstanceOf(RangeError);
    expect(reasons[0]?.message).toMatch(
      /^The item at index 1 is \d+ bytes of JSON, more than maxItemBytes \(1024\)$/,
    );
    expect(reasons[1]?.message).toBe(
      "The item at index 2 is 2011 bytes of JSON, more than maxItemBytes (1024)",
    );
    // A string of many multi-byte characters is measured in bytes, not characters.
    const wide = new PipelineQueue(echo, {
      queueName: queueName(),
      connection: connection(),
      maxItemBytes: 100,
    });
    closing.push(wide);
    const [entry] = await wide.mapSettled([{ text: "é".repeat(60) }]);
    expect(((entry as PromiseRejectedResult).reason as Error).message).toBe(
      "The item at index 0 is 131 bytes of JSON, more than maxItemBytes (100)",
    );
  });

  it("passes a worker's repeated errors to onError once per 10 s, then says how many were held back", async () => {
    vi.useFakeTimers({ toFake: ["performance"] });
    try {
      const seen: unknown[] = [];
      const reporter = new ErrorReporter((error) => seen.push(error));
      const refused = () =>
        Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:1"), { code: "ECONNREFUSED" });
      for (let count = 0; count < 16; count++) reporter.report(refused());
      reporter.report(new Error("another"));
      reporter.report("a string");
      expect(seen).toHaveLength(3);
      vi.advanceTimersByTime(10_000);
      reporter.report(refused());
      expect(seen).toHaveLength(4);
      expect((seen[3] as Error).message).toBe(
        "connect ECONNREFUSED 127.0.0.1:1 (and 15 more like it in the last 10 s)",
      );
      const failing = new ErrorReporter(() => {
        throw new Error("ignored");
      });
      failing.report(new Error("x"));
      const rejecting = new ErrorReporter(() => Promise.reject(new Error("ignored")));
      rejecting.report(new Error("x"));
    } finally {
      vi.useRealTimers();
    }
  });

  it("prints a worker's errors as one line each by default, and reports an unreachable Redis", async () => {
    const lines: unknown[] = [];
    const spy = vi.spyOn(console, "error").mockImplementation((line: unknown) => {
      lines.push(line);
    });
    try {
      const port = await freePort();
      const worker = new PipelineWorker(echo, {
        queueName: "unreachable",
        connection: { host: "127.0.0.1", port },
      });
      await until(() => lines.length > 0);
      await delay(1_500);
      await worker.close();
      expect(lines.length).toBeLessThanOrEqual(3);
      expect(lines[0]).toMatch(
        /^async-pipeline\/bullmq worker \(queue "unreachable"\): Error: connect ECONNREFUSED/,
      );
      printError("q")("not an error");
      expect(lines.at(-1)).toBe('async-pipeline/bullmq worker (queue "q"): not an error');
    } finally {
      spy.mockRestore();
    }
  });

  it("a closed queue runs no batch; discard deletes a batch's kept state and refuses a running one", async () => {
    const { queue } = pair(slow);
    await expect(queue.discard("")).rejects.toThrow(/batchId/);
    await expect(queue.discard(undefined as never)).rejects.toThrow(
      new TypeError("batchId must be a non-empty string"),
    );
    await queue.discard("never-ran");
    await queue.close();
    await expect(queue.map([1])).rejects.toThrow(new PipelineError("The queue is closed"));
    await expect(queue.discard("x")).rejects.toThrow(new PipelineError("The queue is closed"));
  });
});

describe("worker.close() that gives up", { timeout: 30_000 }, () => {
  it("aborts what runs after closeTimeout and leaves it to another worker", async () => {
    const runs: string[] = [];
    const stubborn = (tag: string) =>
      new Pipeline([
        new Stage("work", async (value: number, _context: object, call: StageCall) => {
          runs.push(`${tag} ${String(value)}`);
          // Ignores its signal for a second, as a slow handler would.
          await delay(tag === "A" ? 1_000 : 10);
          if (call.signal.aborted) throw call.signal.reason;
          return value * 10;
        }),
      ]);
    const name = queueName();
    const first = new PipelineWorker(stubborn("A"), {
      queueName: name,
      connection: connection(),
      concurrency: 2,
      closeTimeout: 100,
      lockDuration: 1_000,
      stalledInterval: 500,
    });
    const queue = new PipelineQueue(stubborn("producer"), {
      queueName: name,
      connection: connection(),
    });
    closing.push(queue);
    const mapping = queue.map([1, 2]);
    await until(() => runs.length === 2);
    const asked = performance.now();
    await first.close();
    expect(performance.now() - asked).toBeLessThan(100 + 2_000);
    const second = new PipelineWorker(stubborn("B"), {
      queueName: name,
      connection: connection(),
      concurrency: 2,
      lockDuration: 1_000,
      stalledInterval: 500,
    });
    closing.push(second);
    expect(await mapping).toEqual([10, 20]);
    expect(runs.filter((run) => run.startsWith("B")).sort()).toEqual(["B 1", "B 2"]);
  });
});

describe("stream", { timeout: 30_000 }, () => {
  it("return() during a pending next() stops the batch at once", async () => {
    const started: number[] = [];
    const hanging = new Pipeline([
      new Stage("hang", (value: number, _context: object, call: StageCall) => {
        started.push(value);
        return new Promise<number>((_resolve, reject) => {
          call.signal.addEventListener("abort", () => {
            reject(call.signal.reason as Error);
          });
        });
      }),
    ]);
    const { name, queue } = pair(hanging, { concurrency: 2 });
    const stream = queue.stream([0, 1, 2, 3]);
    const pending = stream.next();
    await until(() => started.length === 2);
    await stream.return(undefined);
    expect(await pending).toEqual({ done: true, value: undefined });
    expect(await keysContaining(redis, `${name}:pipeline:`)).toEqual([]);
    expect(await stream.next()).toEqual({ done: true, value: undefined });
  });

  it("a named stream resumed after an abort skips what it yielded and yields the rest in order", async () => {
    const { queue } = pair(slow, { concurrency: 2 });
    const batchId = `stream-resume-${crypto.randomUUID()}`;
    const items = Array.from({ length: 30 }, (_, index) => index);
    const controller = new AbortController();
    const first: number[] = [];
    const error = await (async () => {
      for await (const output of queue.stream(items, {
        batchId,
        window: 6,
        signal: controller.signal,
      })) {
        first.push(output);
        if (first.length === 10) controller.abort(new Error("interrupted"));
      }
    })().catch((reason: unknown) => reason);
    expect((error as Error).message).toBe("interrupted");
    expect(first).toEqual(items.slice(0, 10).map((item) => item + 1));
    await until(async () =>
      (await batchState(redis, batchId)).every((part) => RESUME_STATE.includes(part)),
    );
    await until(async () => {
      try {
        const rest: number[] = [];
        for await (const output of queue.stream(items, { batchId, window: 6 })) rest.push(output);
        expect(rest).toEqual(items.slice(10).map((item) => item + 1));
        return true;
      } catch (reason) {
        if (reason instanceof BatchInUseError) return false;
        throw reason;
      }
    });
    expect(await keysContaining(redis, batchId)).toEqual([]);
  });

  it("an input that never answers does not hold the end of its batch, nor close()", async () => {
    const queue = new PipelineQueue(slow, { queueName: queueName(), connection: connection() });
    const worker = new PipelineWorker(slow, {
      queueName: queue.queue.name,
      connection: connection(),
    });
    closing.push(worker);
    let returned = false;
    async function* stuck() {
      try {
        yield 1;
        yield 2;
        await new Promise(() => undefined); // never yields again
      } finally {
        returned = true;
      }
    }
    const stream = queue.stream(stuck());
    expect(await stream.next()).toEqual({ done: false, value: 2 });
    expect(await stream.next()).toEqual({ done: false, value: 3 });
    const pending = stream.next();
    await delay(100);
    await stream.return(undefined);
    expect(await pending).toEqual({ done: true, value: undefined });
    await queue.close();
    // Its return() was asked for (an async generator queues it behind the pull, for ever).
    expect(returned).toBe(false);
    expect(await keysContaining(redis, `${queue.queue.name}:pipeline:`)).toEqual([]);
  });

  it("a slow input does not hold back the results of the items already taken", async () => {
    const { queue } = pair(slow, { concurrency: 2 });
    async function* slowly() {
      yield 1;
      await delay(5_000); // the next item comes late
      yield 2;
    }
    const started = performance.now();
    const arrivals: number[] = [];
    for await (const output of queue.stream(slowly())) {
      arrivals.push(performance.now() - started);
      expect(output).toBe(arrivals.length + 1);
    }
    expect(arrivals).toHaveLength(2);
    // The first result is not kept waiting for the second item (generous for a loaded machine).
    expect(arrivals[0]).toBeLessThan(3_000);
    expect(arrivals[1]).toBeGreaterThanOrEqual(5_000);
  });

  it("an unordered stream forgets what it yielded as it goes", async () => {
    const { queue } = pair(slow, { concurrency: 3 });
    const batchId = `unordered-${crypto.randomUUID()}`;
    const seen: number[] = [];
    for await (const output of queue.stream([1, 2, 3, 4, 5, 6, 7, 8], {
      batchId,
      ordered: false,
      window: 3,
    })) {
      seen.push(output);
      const stored = await redis.hkeys(`bull:${queue.queue.name}:pipeline:${batchId}:results`);
      expect(stored.length).toBeLessThanOrEqual(3);
    }
    expect(seen.sort((a, b) => a - b)).toEqual([2, 3, 4, 5, 6, 7, 8, 9]);
  });
});

describe("bad arguments", () => {
  it("are rejected with errors that name the option", async () => {
    const base = { queueName: queueName(), connection: connection() };
    expect(() => new PipelineQueue(echo, { ...base, queueName: "a:b" })).toThrow(
      new RangeError('queueName must not contain ":", got "a:b"'),
    );
    expect(() => new PipelineQueue(echo, undefined as never)).toThrow(TypeError);
    expect(() => new PipelineQueue(echo, { ...base, connection: 6379 as never })).toThrow(
      new TypeError(
        "connection must be ioredis options, an ioredis instance, or a redis:// or rediss:// URL",
      ),
    );
    expect(() => new PipelineWorker(echo, { ...base, concurrency: 0 })).toThrow(
      new RangeError("concurrency must be an integer of at least 1, got 0"),
    );
    expect(() => new PipelineWorker(echo, { ...base, lockDuration: "1s" as never })).toThrow(
      new TypeError('lockDuration must be a number, got "1s"'),
    );
    expect(() => new PipelineWorker(echo, { ...base, onError: 1 as never })).toThrow(
      new TypeError("onError must be a function"),
    );
    const queue = new PipelineQueue(echo, base);
    closing.push(queue);
    await expect(queue.map([1], { window: 0 })).rejects.toThrow(
      new RangeError("window must be an integer of at least 1, got 0"),
    );
    await expect(queue.map([1], { batchId: "x:y" })).rejects.toThrow(
      new RangeError('batchId must not contain ":", got "x:y"'),
    );
    await expect(queue.map(42 as never)).rejects.toThrow(
      new TypeError("items must be an Iterable or an AsyncIterable"),
    );
    await expect(queue.mapSettled([1], { signal: AbortSignal.abort("early") })).rejects.toBe(
      "early",
    );
    // Unknown keys: a typo names the option meant; map takes no stream-only key.
    expect(() => new PipelineQueue(echo, { ...base, prefx: "x" } as never)).toThrow(
      new TypeError('unknown option "prefx" (did you mean "prefix"?)'),
    );
    expect(() => new PipelineWorker(echo, { ...base, concurency: 2 } as never)).toThrow(
      new TypeError('unknown option "concurency" (did you mean "concurrency"?)'),
    );
    await expect(queue.map([1], { windw: 10 } as never)).rejects.toThrow(
      new TypeError('unknown option "windw" (did you mean "window"?)'),
    );
    await expect(queue.mapSettled([1], { ordered: false } as never)).rejects.toThrow(
      new TypeError('unknown option "ordered" ("ordered" is an option of stream, not mapSettled)'),
    );
    // Names from elsewhere, and the other side's options, are named as such.
    expect(() => new PipelineQueue(echo, { ...base, redis: {} } as never)).toThrow(
      new TypeError('unknown option "redis" (did you mean "connection"?)'),
    );
    expect(() => new PipelineQueue(echo, { ...base, stalledInterval: 1 } as never)).toThrow(
      new TypeError(
        'unknown option "stalledInterval" ("stalledInterval" is an option of PipelineWorker, not PipelineQueue)',
      ),
    );
    await expect(queue.map([1], { jobId: "nightly" } as never)).rejects.toThrow(
      new TypeError('unknown option "jobId" (did you mean "batchId"?)'),
    );
    const stream = queue.stream([1], { ordered: "yes" as never });
    await expect(stream.next()).rejects.toThrow(
      new TypeError('ordered must be a boolean, got "yes"'),
    );
  });
});
