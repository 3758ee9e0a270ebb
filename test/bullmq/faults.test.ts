/**
 * "Distributed batches in production: faults, outages, operators" (API.md): each rule against
 * a redis-server of this file's own, which the tests pause (SIGSTOP), kill (SIGKILL) and
 * restart (with and without persistence), and against real worker processes
 * (test/bullmq/worker-process.ts), which they pause and kill too. The workers log to the
 * shared test Redis (unaffected by the faults), with timestamps.
 *
 * Every test has a hard deadline (its timeout) and waits with `until`, which fails with a
 * message instead of hanging; deadlines are generous where time is not what is asserted.
 */
import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { PipelineError } from "../../src/index.js";
import {
  BatchInUseError,
  PipelineQueue,
  RedisUnavailableError,
  type PipelineQueueOptions,
} from "../../src/bullmq/index.js";
import { startRedisServer, type RedisServer } from "../../demo/redis-server.js";
import { readLog, scripted, type LogEntry, type ScriptContext, type Step } from "./pipelines.js";
import {
  batchState,
  client,
  keysContaining,
  queueName,
  redisUrl,
  RESUME_STATE,
  startProducer,
  startWorker,
  stopAll,
  until,
  type WorkerProcess,
} from "./support.js";

/** The shared test Redis: the workers' logs. */
const logs = client();
const base = queueName();
const queue = `${base}-scripted`;
const settings = { LOCK_DURATION: 2_000, STALLED_INTERVAL: 500, MAX_STALLED_COUNT: 5 };
let server: RedisServer;
let workers: WorkerProcess[] = [];
const extra: WorkerProcess[] = [];
const queues: PipelineQueue[] = [];

function env(more: Record<string, string | number> = {}): Record<string, string | number> {
  return { ...settings, CONCURRENCY: 2, REDIS_URL: server.url, LOG_URL: redisUrl(), ...more };
}

beforeAll(async () => {
  server = await startRedisServer();
  workers = await Promise.all(
    ["w0", "w1"].map((name) => startWorker(base, ["scripted"], env({ WORKER_NAME: name }))),
  );
}, 60_000);

afterEach(async () => {
  // A test that failed half-way must not leave Redis paused for the next one.
  resume();
  await Promise.all(queues.splice(0).map((entry) => entry.close()));
  await stopAll(extra.splice(0));
});

afterAll(async () => {
  await stopAll(workers);
  await server.stop();
  logs.disconnect();
});

/** What the scripted pipeline gives for an item. */
interface Labelled {
  readonly id: number;
  readonly square: number;
  readonly tag: string;
}

/** A producer on this file's Redis, closed after the test. */
function producer(
  options: Partial<PipelineQueueOptions> = {},
): PipelineQueue<Step, Labelled, ScriptContext> {
  const made = new PipelineQueue(scripted(), {
    queueName: queue,
    connection: server.url,
    ...options,
  });
  queues.push(made);
  return made;
}

/** A plain client of this file's Redis (its commands wait while Redis is paused). */
function redis(): Redis {
  return new Redis(server.url, { maxRetriesPerRequest: null });
}

function pause(): void {
  process.kill(server.pid, "SIGSTOP");
}

function resume(): void {
  try {
    process.kill(server.pid, "SIGCONT");
  } catch {
    // Not running (killed by the test): nothing to resume.
  }
}

/** Kills Redis and starts it again on the same port (empty, unless it persisted to `dir`). */
async function restart(persistIn?: string): Promise<void> {
  process.kill(server.pid, "SIGKILL");
  await server.exited;
  server = await startRedisServer({ port: server.port, persistIn });
}

const logKey = () => `log-${randomUUID()}`;
const steps = (count: number, ms: number): Step[] =>
  Array.from({ length: count }, (_, id) => ({ id, ms }));
const starts = (log: LogEntry[]) => log.filter((entry) => entry.event === "start");
const ended = (log: LogEntry[]) =>
  new Set(log.filter((entry) => entry.event === "end").map((entry) => entry.id));

/** How many times each item started. */
function runsOf(log: LogEntry[]): Map<number, number> {
  const runs = new Map<number, number>();
  for (const entry of starts(log)) runs.set(entry.id, (runs.get(entry.id) ?? 0) + 1);
  return runs;
}

async function keysOf(batchId: string): Promise<string[]> {
  const connection = redis();
  try {
    return await keysContaining(connection, batchId);
  } finally {
    connection.disconnect();
  }
}

async function stateOf(batchId: string): Promise<string[]> {
  const connection = redis();
  try {
    return await batchState(connection, batchId);
  } finally {
    connection.disconnect();
  }
}

/** The items whose output batch `batchId` recorded (not its failures). */
async function recordedOutputs(batchId: string): Promise<Set<number>> {
  const connection = redis();
  try {
    const key = (await keysContaining(connection, batchId)).find((name) =>
      name.endsWith(":results"),
    );
    const records = key === undefined ? {} : await connection.hgetall(key);
    return new Set(
      Object.entries(records)
        .filter(([, text]) => "ok" in (JSON.parse(text) as object))
        .map(([index]) => Number(index)),
    );
  } finally {
    connection.disconnect();
  }
}

/** Only a named batch's resume state is left (no job, no done list, no hold). */
async function onlyResumeState(batchId: string): Promise<boolean> {
  return (await stateOf(batchId)).every((part) => RESUME_STATE.includes(part));
}

/** A producer process on this file's Redis and queue (see `startProducer`). */
function producerProcess(
  batchId: string,
  count: number,
  log: string,
  more: Record<string, string> = {},
) {
  return startProducer(queue, batchId, count, log, { REDIS_URL: server.url, ...more });
}

describe("Redis outages", () => {
  it("a batch waits out a short outage and settles with every item once, in order", async () => {
    const log = logKey();
    const items = steps(40, 50);
    const batch = producer({ outageTimeout: 30_000 }).map(items, { window: 10, context: { log } });
    await until(async () => starts(await readLog(logs, log)).length >= 8);
    pause();
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    resume();
    const outputs = await batch;
    expect(outputs.map((output) => output.id)).toEqual(items.map((item) => item.id));
    expect([...runsOf(await readLog(logs, log)).values()].every((runs) => runs <= 2)).toBe(true);
  }, 60_000);

  it("rejects with RedisUnavailableError once Redis has not answered for outageTimeout", async () => {
    const log = logKey();
    const outageTimeout = 1_000;
    const batchId = `outage-${randomUUID()}`;
    const batch = producer({ outageTimeout })
      .map(steps(30, 100), { batchId, window: 6, context: { log } })
      .catch((error: unknown) => error);
    await until(async () => starts(await readLog(logs, log)).length >= 4);
    pause();
    const paused = performance.now();
    const error = (await batch) as RedisUnavailableError;
    const waited = performance.now() - paused;
    expect(error).toBeInstanceOf(RedisUnavailableError);
    expect(error.message).toMatch(/did not answer for 1000 ms \(outageTimeout\)/);
    expect(error.timeout).toBe(outageTimeout);
    // outageTimeout beyond the blocking read's own second; generous for a loaded machine.
    expect(waited).toBeGreaterThanOrEqual(outageTimeout - 50);
    expect(waited).toBeLessThan(outageTimeout + 1_000 + 3_000);
    resume();
    // The cleanup happens once Redis is back: no job left, the named batch's resume state kept.
    await until(
      () => onlyResumeState(batchId),
      30_000,
      () => stateOf(batchId),
    );
  }, 60_000);

  it("rejects with RedisUnavailableError when Redis is killed, naming the refused connection", async () => {
    const log = logKey();
    const batch = producer({ outageTimeout: 1_500 })
      .map(steps(30, 100), { window: 6, context: { log } })
      .catch((error: unknown) => error);
    await until(async () => starts(await readLog(logs, log)).length >= 4);
    process.kill(server.pid, "SIGKILL");
    await server.exited;
    const error = (await batch) as RedisUnavailableError;
    expect(error).toBeInstanceOf(RedisUnavailableError);
    expect(error.message).toMatch(/ECONNREFUSED/);
    server = await startRedisServer({ port: server.port });
  }, 60_000);

  it("the caller's signal settles a batch at once while Redis is paused; the cleanup follows", async () => {
    const log = logKey();
    const controller = new AbortController();
    const batch = producer()
      .map(steps(30, 100), { window: 6, context: { log }, signal: controller.signal })
      .catch((error: unknown) => error);
    await until(async () => starts(await readLog(logs, log)).length >= 4);
    pause();
    await new Promise((resolve) => setTimeout(resolve, 200));
    const reason = new Error("Ctrl-C");
    const aborted = performance.now();
    controller.abort(reason);
    expect(await batch).toBe(reason);
    // At once: the rejection does not wait for Redis (generous for a loaded machine).
    expect(performance.now() - aborted).toBeLessThan(1_000);
    resume();
    // An unnamed batch: once Redis is back, nothing of it is left.
    const connection = redis();
    try {
      await until(
        async () => (await keysContaining(connection, `${queue}:pipeline:`)).length === 0,
        30_000,
      );
    } finally {
      connection.disconnect();
    }
  }, 60_000);

  it("no connection prints an unhandled error event; the worker's errors are one line each, held back when repeated", async () => {
    const log = logKey();
    const worker = await startWorker(base, ["scripted"], env({ WORKER_NAME: "lonely" }));
    extra.push(worker);
    const batchId = `errors-${randomUUID()}`;
    const running = producerProcess(batchId, 30, log, { OUTAGE_TIMEOUT: "2500", ITEM_MS: "100" });
    await until(() => running.stdout().includes("progress 2"), 30_000);
    process.kill(server.pid, "SIGKILL");
    await server.exited;
    const before = worker.output().length;
    await until(() => running.stdout().includes("failed"), 30_000);
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    server = await startRedisServer({ port: server.port });
    await running.exited;
    expect(running.stdout()).toMatch(/failed RedisUnavailableError: Redis at .* did not answer/);
    const all = running.stderr() + worker.output();
    expect(all).not.toMatch(/Unhandled error event/);
    // About four seconds without Redis: one line per distinct error, no stack traces.
    const lines = worker
      .output()
      .slice(before)
      .split("\n")
      .filter((line) => line.includes("async-pipeline/bullmq worker"));
    expect(lines.length).toBeGreaterThan(0);
    expect(lines.length).toBeLessThanOrEqual(6);
    expect(worker.output().slice(before)).not.toMatch(/^\s+at /m);
  }, 90_000);

  it("worker.close() returns within closeTimeout while Redis is paused; its job is taken over, not lost", async () => {
    const log = logKey();
    const victim = await startWorker(
      base,
      ["scripted"],
      env({ WORKER_NAME: "closing", CLOSE_TIMEOUT: 1_000, CONCURRENCY: 4 }),
    );
    extra.push(victim);
    const items = steps(12, 1_500);
    const batch = producer({ outageTimeout: 60_000 }).map(items, { window: 12, context: { log } });
    await until(async () =>
      starts(await readLog(logs, log)).some((entry) => entry.worker === "closing"),
    );
    pause();
    const closing = performance.now();
    victim.child.kill("SIGTERM");
    await victim.exited;
    const took = performance.now() - closing;
    expect(victim.output()).toMatch(/closed in \d+ ms/);
    const reported = Number(/closed in (\d+) ms/.exec(victim.output())?.[1]);
    expect(reported).toBeGreaterThanOrEqual(950);
    expect(reported).toBeLessThan(1_000 + 2_000);
    expect(took).toBeLessThan(1_000 + 10_000);
    resume();
    // Its jobs' locks expire and the other workers run them: every item once in the outputs.
    const outputs = await batch;
    expect(outputs.map((output) => output.id)).toEqual(items.map((item) => item.id));
    const abandoned = starts(await readLog(logs, log)).filter(
      (entry) => entry.worker === "closing",
    );
    const runs = runsOf(await readLog(logs, log));
    for (const entry of abandoned) expect(runs.get(entry.id)).toBeGreaterThanOrEqual(1);
  }, 90_000);
});

describe("data loss is named", () => {
  it("Redis restarted without persistence: the lost items fail saying Redis lost them", async () => {
    const log = logKey();
    const items = steps(60, 60);
    const batch = producer().mapSettled(items, { window: 12, context: { log } });
    await until(async () => ended(await readLog(logs, log)).size >= 10);
    await restart();
    const settled = await batch;
    expect(settled).toHaveLength(items.length);
    const failed = settled.flatMap((entry) =>
      entry.status === "rejected" ? [entry.reason as unknown] : [],
    );
    expect(failed.length).toBeGreaterThan(0);
    expect(failed.length).toBeLessThan(items.length);
    for (const reason of failed) {
      expect(reason).toBeInstanceOf(PipelineError);
      expect((reason as Error).message).toMatch(/^Redis lost /);
      expect((reason as Error).message).not.toMatch(/could not write/);
    }
    for (const [index, entry] of settled.entries()) {
      if (entry.status === "fulfilled") expect(entry.value.id).toBe(index);
    }
    const connection = redis();
    try {
      await until(
        async () => (await keysContaining(connection, `${queue}:pipeline:`)).length === 0,
      );
    } finally {
      connection.disconnect();
    }
  }, 90_000);

  it("map rejects with the same error; an evicted results hash is named as lost results", async () => {
    const log = logKey();
    const batch = producer()
      .map(steps(60, 60), { window: 12, context: { log } })
      .catch((error: unknown) => error);
    await until(async () => ended(await readLog(logs, log)).size >= 6);
    await restart();
    const error = (await batch) as PipelineError;
    expect(error).toBeInstanceOf(PipelineError);
    expect(error.message).toMatch(/^Redis lost /);

    // An eviction, as Redis would do under maxmemory-policy allkeys-lru: the results hash goes.
    const evicted = logKey();
    const batchId = `evict-${randomUUID()}`;
    const settling = producer().mapSettled(steps(40, 60), {
      batchId,
      window: 10,
      context: { log: evicted },
    });
    const connection = redis();
    let deleting = true;
    const evicting = (async () => {
      while (deleting) {
        await connection.del(`bull:${queue}:pipeline:${batchId}:results`);
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    })();
    const settled = await settling;
    deleting = false;
    await evicting;
    connection.disconnect();
    const lost = settled.flatMap((entry) =>
      entry.status === "rejected" ? [entry.reason as unknown] : [],
    );
    expect(lost.length).toBeGreaterThan(0);
    for (const reason of lost) {
      expect(reason).toBeInstanceOf(PipelineError);
      expect((reason as Error).message).toMatch(/^Redis lost the result of item \d+/);
    }
  }, 90_000);

  it("Redis restarted with persistence: every item once, in order, no key left", async () => {
    const dir = mkdtempSync(join(tmpdir(), "redis-aof-"));
    try {
      await restart(dir);
      const log = logKey();
      const items = steps(40, 60);
      const batchId = `aof-${randomUUID()}`;
      const batch = producer({ outageTimeout: 30_000 }).map(items, {
        batchId,
        window: 10,
        context: { log },
      });
      await until(async () => ended(await readLog(logs, log)).size >= 10);
      await restart(dir);
      const outputs = await batch;
      expect(outputs.map((output) => output.id)).toEqual(items.map((item) => item.id));
      expect(await keysOf(batchId)).toEqual([]);
    } finally {
      await restart();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 90_000);
});

describe("operators", () => {
  it("Ctrl-C on a named batch keeps its resume state; the same call resumes it, running no finished item again", async () => {
    const log = logKey();
    const items = steps(40, 100);
    const batchId = `nightly-${randomUUID()}`;
    const controller = new AbortController();
    const first = producer()
      .map(items, { batchId, window: 8, context: { log }, signal: controller.signal })
      .catch((error: unknown) => error);
    await until(async () => ended(await readLog(logs, log)).size >= 12);
    controller.abort(new Error("SIGINT"));
    expect(((await first) as Error).message).toBe("SIGINT");
    await until(() => onlyResumeState(batchId));
    const finishedBefore = ended(await readLog(logs, log));
    const connection = redis();
    const kept = await connection.hkeys(`bull:${queue}:pipeline:${batchId}:results`);
    connection.disconnect();
    expect(kept.length).toBeGreaterThanOrEqual(12);

    const outputs = await producer().map(items, { batchId, window: 8, context: { log } });
    expect(outputs.map((output) => output.id)).toEqual(items.map((item) => item.id));
    const runs = runsOf(await readLog(logs, log));
    for (const id of kept.map(Number)) expect(runs.get(id)).toBe(1);
    for (const id of finishedBefore) expect(runs.get(id)).toBe(1);
    expect(await keysOf(batchId)).toEqual([]);
  }, 90_000);

  it("fail-fast keeps the resume state; the resume runs the failed item again, not the finished ones", async () => {
    const log = logKey();
    const items = steps(30, 50);
    const batchId = `failed-${randomUUID()}`;
    const error = await producer()
      .map(items, { batchId, window: 6, context: { log, failIds: [20] } })
      .catch((reason: unknown) => reason);
    expect((error as Error).message).toBe('Stage "work" failed: bad item 20');
    await until(() => onlyResumeState(batchId));
    const before = await readLog(logs, log);
    // Finished: its output is in the resume state. An item whose handler ended just as the
    // stop came counts as cancelled (cancellation wins over an output), is not recorded, and
    // runs again on resume: its "end" in the log does not make it finished.
    const finishedBefore = await recordedOutputs(batchId);
    expect(finishedBefore.size).toBeGreaterThan(10);
    const endedBefore = ended(before);
    for (const id of finishedBefore) expect(endedBefore.has(id), `item ${String(id)}`).toBe(true);
    const outputs = await producer().map(items, { batchId, window: 6, context: { log } });
    expect(outputs.map((output) => output.id)).toEqual(items.map((item) => item.id));
    // The starts of the resume alone.
    const runsBefore = runsOf(before);
    const runs = runsOf(await readLog(logs, log));
    const resumed = (id: number): number => (runs.get(id) ?? 0) - (runsBefore.get(id) ?? 0);
    for (const id of finishedBefore) expect(resumed(id), `item ${String(id)}`).toBe(0);
    expect(resumed(20)).toBe(1);
    expect(await keysOf(batchId)).toEqual([]);
  }, 90_000);

  it("queue.close() while batches run rejects them, cancels their jobs, and only then closes", async () => {
    const log = logKey();
    const closing = producer();
    const named = `closed-${randomUUID()}`;
    const hanging: Step[] = Array.from({ length: 20 }, (_, id) => ({ id, action: "hang" }));
    const first = closing
      .map(hanging, { batchId: named, window: 20, context: { log } })
      .catch((error: unknown) => error);
    const second = closing
      .mapSettled(
        hanging.map((step) => ({ ...step, id: step.id + 100 })),
        { window: 20, context: { log } },
      )
      .catch((error: unknown) => error);
    await until(async () => starts(await readLog(logs, log)).length === 4);
    await closing.close();
    for (const outcome of [await first, await second]) {
      expect(outcome).toBeInstanceOf(PipelineError);
      expect((outcome as Error).message).toMatch(/queue was closed/);
    }
    // The cleanup was over when close() resolved: the running items were aborted, no job left.
    const entries = await readLog(logs, log);
    const aborted = entries.filter((entry) => entry.event === "aborted").map((entry) => entry.id);
    expect(aborted.sort()).toEqual(
      starts(entries)
        .map((entry) => entry.id)
        .sort(),
    );
    expect(await onlyResumeState(named)).toBe(true);
    const connection = redis();
    try {
      const left = await keysContaining(connection, `${queue}:pipeline:`);
      expect(left.every((key) => key.includes(named))).toBe(true);
    } finally {
      connection.disconnect();
    }
    // No job of those batches starts afterwards.
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    expect(starts(await readLog(logs, log))).toHaveLength(4);
    await producer().discard(named);
    expect(await keysOf(named)).toEqual([]);
  }, 60_000);

  it("a second producer of a running batchId is refused at once; the first goes on untouched", async () => {
    const log = logKey();
    const items = steps(30, 80);
    const batchId = `twice-${randomUUID()}`;
    const seen: number[] = [];
    const first = (async () => {
      for await (const output of producer().stream(items, {
        batchId,
        window: 8,
        context: { log },
      })) {
        seen.push(output.id);
      }
    })();
    await until(async () => ended(await readLog(logs, log)).size >= 4);
    const asked = performance.now();
    const error = await producer()
      .stream(items, { batchId, window: 8, context: { log } })
      .next()
      .catch((reason: unknown) => reason);
    expect(performance.now() - asked).toBeLessThan(5_000);
    expect(error).toBeInstanceOf(BatchInUseError);
    expect((error as BatchInUseError).batchId).toBe(batchId);
    expect((error as Error).message).toContain(batchId);
    await expect(producer().discard(batchId)).rejects.toBeInstanceOf(BatchInUseError);
    await first;
    expect(seen).toEqual(items.map((item) => item.id));
    expect([...runsOf(await readLog(logs, log)).values()].every((runs) => runs === 1)).toBe(true);
    expect(await keysOf(batchId)).toEqual([]);
  }, 60_000);

  it("a producer paused past its lockDuration loses the batch to the one resuming it, and touches nothing after", async () => {
    const log = logKey();
    const batchId = `paused-${randomUUID()}`;
    const count = 40;
    const paused = producerProcess(batchId, count, log, { LOCK_DURATION: "1500", ITEM_MS: "100" });
    await until(() => /progress ([6-9]|\d\d)\n/.test(paused.stdout()), 30_000);
    paused.child.kill("SIGSTOP");
    try {
      // Its hold lapses 1.5 s after its last renewal: a resume is refused until then.
      let outputs: Labelled[] | undefined;
      while (outputs === undefined) {
        try {
          outputs = await producer().map(steps(count, 100), {
            batchId,
            window: 6,
            context: { log },
          });
        } catch (error) {
          expect(error).toBeInstanceOf(BatchInUseError);
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
      }
      expect(outputs.map((output) => output.id)).toEqual(steps(count, 0).map((step) => step.id));
    } finally {
      paused.child.kill("SIGCONT");
    }
    await paused.exited;
    // Woken, it learns that its hold lapsed (another producer ran the batch to the end).
    expect(paused.stdout()).toMatch(
      /failed BatchInUseError: Batch ".*" (was taken over|is gone from Redis after this producer could not renew its hold)/,
    );
    // It deleted nothing of the batch the other producer settled, nor wrote anything back.
    expect(await keysOf(batchId)).toEqual([]);
  }, 90_000);

  it("keepFor expires a kept resume state; discard deletes one at once", async () => {
    const log = logKey();
    const batchId = `expiring-${randomUUID()}`;
    const controller = new AbortController();
    const batch = producer({ keepFor: 60_000 })
      .map(steps(20, 100), {
        batchId,
        keepFor: 1_500,
        window: 4,
        context: { log },
        signal: controller.signal,
      })
      .catch(() => undefined);
    await until(async () => ended(await readLog(logs, log)).size >= 2);
    controller.abort();
    await batch;
    await until(() => onlyResumeState(batchId));
    const connection = redis();
    try {
      const results = `bull:${queue}:pipeline:${batchId}:results`;
      expect(await connection.pttl(results)).toBeGreaterThan(0);
      expect(await connection.pttl(results)).toBeLessThanOrEqual(1_500);
      await until(async () => (await keysContaining(connection, batchId)).length === 0, 10_000);
    } finally {
      connection.disconnect();
    }
  }, 60_000);
});

describe("fail-fast stops within milliseconds", () => {
  it("no item starts more than 50 ms after the failing item's last attempt, at most one per worker slot, none in its process", async () => {
    const log = logKey();
    // Items short enough that the 2 × 2 slots keep taking new ones; item 40 fails (twice:
    // the stage retries once).
    const items = steps(400, 15);
    items[40] = { id: 40, action: "fail", ms: 15 };
    const error = await producer()
      .map(items, { window: 400, context: { log } })
      .catch((reason: unknown) => reason);
    expect((error as Error).message).toBe('Stage "work" failed: bad item 40');
    const entries = await readLog(logs, log);
    const failure = entries.filter((entry) => entry.event === "failed" && entry.id === 40);
    expect(failure.map((entry) => entry.attempt)).toEqual([1, 2]);
    const last = failure[1]!;
    const late = starts(entries).filter((entry) => entry.at > last.at);
    const slots = workers.length * 2;
    expect(late.length).toBeLessThanOrEqual(slots);
    for (const entry of late) {
      expect(entry.at - last.at).toBeLessThanOrEqual(50);
      expect(entry.worker).not.toBe(last.worker);
    }
  }, 60_000);
});

describe("a settled batch stays settled", () => {
  it("a worker paused past its lock finishes its item after the batch settled, and writes nothing", async () => {
    const log = logKey();
    const victim = await startWorker(
      base,
      ["scripted"],
      env({ WORKER_NAME: "sleeper", CONCURRENCY: 1, LOCK_DURATION: 1_000 }),
    );
    extra.push(victim);
    const items = steps(16, 400);
    const batchId = `settled-${randomUUID()}`;
    const batch = producer().map(items, { batchId, window: 16, context: { log } });
    await until(async () =>
      starts(await readLog(logs, log)).some((entry) => entry.worker === "sleeper"),
    );
    victim.child.kill("SIGSTOP");
    try {
      const outputs = await batch;
      expect(outputs.map((output) => output.id)).toEqual(items.map((item) => item.id));
      expect(await keysOf(batchId)).toEqual([]);
    } finally {
      victim.child.kill("SIGCONT");
    }
    // Woken, it ends its item (its timer is long due) and tries to record it.
    await until(async () =>
      (await readLog(logs, log)).some(
        (entry) => entry.worker === "sleeper" && entry.event === "end",
      ),
    );
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    expect(await keysOf(batchId)).toEqual([]);
  }, 60_000);
});

describe("window bounds everything", () => {
  it("an ordered stream behind one slow item reads at most window items ahead, in Redis and in memory", async () => {
    const window = 20;
    let pulled = 0;
    let read = 0;
    let most = 0;
    function* endless(): Generator<Step> {
      for (let id = 0; ; id++) {
        pulled++;
        // Taken from the input and not yet handed to the loop below.
        most = Math.max(most, pulled - read);
        yield { id, ms: id === 0 ? 2_000 : 5 };
      }
    }
    const batchId = `window-${randomUUID()}`;
    const connection = redis();
    let inRedis = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        // Items in Redis (a job, or a result) that the loop below has not read yet.
        const jobs = (await keysContaining(connection, `${queue}:${batchId}-`))
          .filter((key) => /-\d+$/.test(key))
          .map((key) => Number(/-(\d+)$/.exec(key)?.[1]));
        const results = (await connection.hkeys(`bull:${queue}:pipeline:${batchId}:results`)).map(
          Number,
        );
        const ahead = new Set([...jobs, ...results].filter((index) => index >= read));
        inRedis = Math.max(inRedis, ahead.size);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    })();
    try {
      for await (const output of producer().stream(endless(), { batchId, window })) {
        expect(output.id).toBe(read);
        read++;
        if (read === 60) break;
      }
    } finally {
      sampling = false;
      await sampler;
      connection.disconnect();
    }
    // The loop body counts a read after the stream has handed it, and the batch, told of the
    // read, takes the next item at once, before the body runs: hence the one.
    expect(most).toBeLessThanOrEqual(window + 1);
    expect(inRedis).toBeGreaterThan(window / 2);
    expect(inRedis).toBeLessThanOrEqual(window + 1);
  }, 60_000);
});

describe("enqueueing fails item by item", () => {
  it("when Redis refuses part of an enqueue (maxmemory), the jobs that got in are removed and the batch rejects naming the cause", async () => {
    const full = await startRedisServer({ maxmemory: 4 * 1024 * 1024 });
    const connection = new Redis(full.url, { maxRetriesPerRequest: null });
    try {
      const name = queueName();
      const echo = new PipelineQueue(scripted(), { queueName: name, connection: full.url });
      queues.push(echo);
      const batchId = `full-${randomUUID()}`;
      // 100 items of 64 KiB: about 6 MiB, more than Redis may hold.
      const items = Array.from({ length: 100 }, (_, id) => ({
        id,
        ms: 0,
        padding: "x".repeat(64 * 1024),
      }));
      const error = (await echo
        .map(items, { batchId })
        .catch((reason: unknown) => reason)) as Error;
      expect(error).toBeInstanceOf(PipelineError);
      expect(error.message).toMatch(
        /^Redis refused to enqueue the items at index \d+ to \d+: OOM command not allowed/,
      );
      expect((error.cause as Error).message).toMatch(/^OOM/);
      // Nothing of the batch is left: no job, no key (BullMQ's own queue keys aside).
      expect(await keysContaining(connection, batchId)).toEqual([]);
      expect(await connection.llen(`bull:${name}:wait`)).toBe(0);
    } finally {
      connection.disconnect();
      await full.stop();
    }
  }, 60_000);
});
