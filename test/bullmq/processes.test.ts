/**
 * `async-pipeline/bullmq` against a real Redis and real worker processes (children running
 * test/bullmq/worker-process.ts, killable with SIGKILL): order, error round trips, fail-fast,
 * abort, a worker killed mid-batch, and a producer killed mid-batch and resumed.
 *
 * Starting a process through tsx takes seconds on a busy machine, so the file starts its worker
 * processes once: two shared ones (w0, w1: the arithmetic, scripted and stall queues) and one
 * that the stall test kills (victim: the stall queue only).
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { StageExecutionError } from "../../src/index.js";
import { BatchInUseError, PipelineMismatchError, PipelineQueue } from "../../src/bullmq/index.js";
import { arithmetic, readLog, scripted, type LogEntry, type Step } from "./pipelines.js";
import {
  batchState,
  client,
  connection,
  jobKeys,
  keysContaining,
  queueName,
  RESUME_STATE,
  startProducer,
  startWorker,
  stopAll,
  until,
  type WorkerProcess,
} from "./support.js";

const redis = client();
const base = queueName();
const stall = { LOCK_DURATION: 2_000, STALLED_INTERVAL: 500, MAX_STALLED_COUNT: 3, CONCURRENCY: 2 };
let workers: WorkerProcess[] = [];
let victim: WorkerProcess;
const numbers = new PipelineQueue(arithmetic(), {
  queueName: `${base}-arithmetic`,
  connection: connection(),
});
const scripts = new PipelineQueue(scripted(), {
  queueName: `${base}-scripted`,
  connection: connection(),
});

beforeAll(async () => {
  workers = await Promise.all([
    startWorker(base, ["arithmetic", "scripted", "stall"], { ...stall, WORKER_NAME: "w0" }),
    startWorker(base, ["arithmetic", "scripted", "stall"], { ...stall, WORKER_NAME: "w1" }),
    startWorker(base, ["stall"], { ...stall, CONCURRENCY: 4, WORKER_NAME: "victim" }),
  ]);
  victim = workers[2]!;
}, 60_000);

afterAll(async () => {
  await Promise.all([numbers.close(), scripts.close()]);
  await stopAll(workers);
  redis.disconnect();
});

const starts = (log: LogEntry[]) => log.filter((entry) => entry.event === "start");
const ids = (entries: LogEntry[]) => entries.map((entry) => entry.id).sort((a, b) => a - b);
const logKey = () => `log-${randomUUID()}`;

describe("with two worker processes", { timeout: 30_000 }, () => {
  it("map gives the outputs in input order, equal to pipeline.map", async () => {
    const items = Array.from({ length: 200 }, (_, index) => String(index));
    const batchId = `order-${randomUUID()}`;
    const outputs = await numbers.map(items, { batchId, window: 50 });
    expect(outputs).toEqual(await arithmetic().map(items));
    expect(await keysContaining(redis, batchId)).toEqual([]);
  });

  it("spreads the items over both processes, each item run once", async () => {
    const log = logKey();
    const items = Array.from({ length: 40 }, (_, id) => ({ id, ms: 20 }));
    const outputs = await scripts.map(items, { context: { tag: "remote", log } });
    expect(outputs).toEqual(items.map(({ id }) => ({ id, square: id * id, tag: "remote" })));
    const started = starts(await readLog(redis, log));
    expect(ids(started)).toEqual(items.map(({ id }) => id));
    expect(new Set(started.map((entry) => entry.worker))).toEqual(new Set(["w0", "w1"]));
  });

  it("mapSettled rebuilds a remote failure as a StageExecutionError", async () => {
    const settled = await scripts.mapSettled([{ id: 1 }, { id: 2, action: "fail" }, { id: 3 }]);
    expect(settled.map((entry) => entry.status)).toEqual(["fulfilled", "rejected", "fulfilled"]);
    const reason = (settled[1] as PromiseRejectedResult).reason as StageExecutionError;
    expect(reason).toBeInstanceOf(StageExecutionError);
    expect(reason.name).toBe("StageExecutionError");
    expect(reason.stageName).toBe("work");
    expect(reason.attempts).toBe(2);
    expect(reason.message).toBe('Stage "work" failed: bad item 2');
    const original = reason.originalError as Error;
    expect(original).toBeInstanceOf(RangeError);
    expect(original.name).toBe("RangeError");
    expect(original.message).toBe("bad item 2");
    expect(original.stack).toContain("pipelines.ts");
    expect(reason.cause).toBe(original);
  });

  it("a remote error keeps its own fields and its cause chain; a thrown object arrives as an Error", async () => {
    const settled = await scripts.mapSettled([
      { id: 1, action: "rich" },
      { id: 2, action: "object" },
    ]);
    const [rich, object] = settled.map(
      (entry) => ((entry as PromiseRejectedResult).reason as StageExecutionError).originalError,
    ) as [Error & Record<string, unknown>, Error & { value: unknown }];
    expect(rich.message).toBe("upstream failed");
    expect(rich.code).toBe("E_UPSTREAM");
    expect(rich.status).toBe(503);
    expect(rich.details).toEqual({ host: "quotes" });
    const root = rich.cause as TypeError;
    expect(root).toBeInstanceOf(TypeError);
    expect(root.message).toBe("socket hang up");
    expect((root.cause as Error & { value: unknown }).value).toEqual({ errno: -104 });
    expect(object).toBeInstanceOf(Error);
    expect(object.message).toBe('{"code":42}');
    expect(object.value).toEqual({ code: 42 });
  });

  it("a worker of another version fails the job with a PipelineMismatchError naming both", async () => {
    const other = queueName();
    const worker = await startWorker(other, ["scripted"], { VERSION: "1.4.0", WORKER_NAME: "old" });
    const queue = new PipelineQueue(scripted(), {
      queueName: `${other}-scripted`,
      connection: connection(),
      version: "1.5.0",
    });
    try {
      const error = await queue.map([{ id: 1 }]).catch((reason: unknown) => reason);
      expect(error).toBeInstanceOf(PipelineMismatchError);
      expect((error as PipelineMismatchError).producerVersion).toBe("1.5.0");
      expect((error as PipelineMismatchError).workerVersion).toBe("1.4.0");
      expect((error as Error).message).toMatch(/version "1\.5\.0".*version "1\.4\.0"/);
    } finally {
      await queue.close();
      await stopAll([worker]);
    }
  });

  it("an item larger than maxItemBytes fails alone; the workers run the others", async () => {
    const log = logKey();
    const items: (Step & { padding?: string })[] = [
      { id: 0 },
      { id: 1, padding: "x".repeat(4_096) },
      { id: 2 },
    ];
    const settled = await scripts.mapSettled(items, { maxItemBytes: 1_024, context: { log } });
    expect(settled.map((entry) => entry.status)).toEqual(["fulfilled", "rejected", "fulfilled"]);
    const reason = (settled[1] as PromiseRejectedResult).reason as Error;
    expect(reason).toBeInstanceOf(RangeError);
    expect(reason.message).toMatch(
      /^The item at index 1 is \d+ bytes of JSON, more than maxItemBytes \(1024\)$/,
    );
    // The oversized item never reached a worker.
    expect(ids(starts(await readLog(redis, log)))).toEqual([0, 2]);
  });

  it("map fails fast: waiting jobs removed, running ones cancelled, nothing else starts", async () => {
    const log = logKey();
    // Every item hangs until cancelled but the fourth, which fails after a moment.
    const items: Step[] = Array.from({ length: 30 }, (_, id) => ({ id, action: "hang" }));
    items[3] = { id: 3, action: "fail", ms: 100 };
    const batchId = `fail-${randomUUID()}`;
    const error = (await scripts
      .map(items, { batchId, window: 30, context: { log } })
      .catch((reason: unknown) => reason)) as StageExecutionError;
    expect(error).toBeInstanceOf(StageExecutionError);
    expect(error.message).toBe('Stage "work" failed: bad item 3');
    // Settled means no job of the batch is left in Redis: none can start any more. The named
    // batch keeps its resume state, until discarded.
    expect(await jobKeys(redis, `${base}-scripted`, batchId)).toEqual([]);
    expect((await batchState(redis, batchId)).every((part) => RESUME_STATE.includes(part))).toBe(
      true,
    );
    await scripts.discard(batchId);
    expect(await keysContaining(redis, batchId)).toEqual([]);
    const entries = await readLog(redis, log);
    const started = starts(entries);
    expect(started.map((entry) => entry.id)).toContain(3);
    // Every item that started, the failing one aside, was cancelled through call.signal.
    const aborted = entries.filter((entry) => entry.event === "aborted");
    expect(ids(aborted)).toEqual(ids(started.filter((entry) => entry.id !== 3)));
    expect(entries.some((entry) => entry.event === "end")).toBe(false);
    expect(started.length).toBeLessThan(items.length);
  });

  it("signal rejects with its reason, removes waiting jobs and cancels running ones", async () => {
    const log = logKey();
    const items: Step[] = Array.from({ length: 20 }, (_, id) => ({ id, action: "hang" }));
    const controller = new AbortController();
    const batchId = `abort-${randomUUID()}`;
    const outcome = scripts
      .map(items, { batchId, signal: controller.signal, context: { log } })
      .catch((error: unknown) => error);
    // Two processes of concurrency 2: four items run, the others wait.
    await until(async () => starts(await readLog(redis, log)).length === 4);
    const reason = new Error("operator stopped the batch");
    controller.abort(reason);
    expect(await outcome).toBe(reason);
    // The abort settles the batch at once; the cleanup follows: the running items are
    // cancelled and the waiting jobs removed, the resume state kept.
    await until(async () =>
      (await batchState(redis, batchId)).every((part) => RESUME_STATE.includes(part)),
    );
    await until(
      async () =>
        (await readLog(redis, log)).filter((entry) => entry.event === "aborted").length === 4,
    );
    const entries = await readLog(redis, log);
    expect(starts(entries)).toHaveLength(4);
    expect(ids(entries.filter((entry) => entry.event === "aborted"))).toEqual(ids(starts(entries)));
  });
});

describe("a worker killed with SIGKILL mid-batch", () => {
  it("has its jobs taken over once stalled; every item settles exactly once", async () => {
    const log = logKey();
    const queue = new PipelineQueue(scripted(), {
      queueName: `${base}-stall`,
      connection: connection(),
    });
    const items: Step[] = Array.from({ length: 24 }, (_, id) => ({ id, ms: 300 }));
    const batchId = `stall-${randomUUID()}`;
    const seen: number[] = [];
    const streaming = (async () => {
      for await (const output of queue.stream(items, {
        batchId,
        ordered: false,
        context: { log },
      })) {
        seen.push(output.id);
      }
    })();
    await until(async () =>
      starts(await readLog(redis, log)).some((entry) => entry.worker === "victim"),
    );
    victim.child.kill("SIGKILL");
    await victim.exited;
    const before = await readLog(redis, log);
    const ended = new Set(before.filter((entry) => entry.event === "end").map((entry) => entry.id));
    const interrupted = starts(before)
      .filter((entry) => entry.worker === "victim" && !ended.has(entry.id))
      .map((entry) => entry.id);
    expect(interrupted.length).toBeGreaterThan(0);
    await streaming;
    await queue.close();
    // Every item exactly once in the stream, the victim's unfinished ones run again elsewhere.
    expect(seen.sort((a, b) => a - b)).toEqual(items.map(({ id }) => id));
    const after = starts(await readLog(redis, log));
    for (const id of interrupted) {
      const runs = after.filter((entry) => entry.id === id);
      expect(runs.map((entry) => entry.worker).slice(0, 1)).toEqual(["victim"]);
      expect(runs.length).toBe(2);
    }
    expect(await keysContaining(redis, batchId)).toEqual([]);
  }, 60_000);
});

describe("a producer killed mid-batch", () => {
  it("is resumed with the same batchId: collects what is done, runs no finished item again", async () => {
    const log = logKey();
    const batchId = `resume-${randomUUID()}`;
    const count = 30;
    const producer = startProducer(`${base}-scripted`, batchId, count, log, {
      LOCK_DURATION: "2000",
    });
    await until(() => /progress ([6-9]|1\d)\n/.test(producer.stdout()), 30_000);
    producer.child.kill("SIGKILL");
    await producer.exited;
    const finished = await redis.hkeys(`bull:${base}-scripted:pipeline:${batchId}:results`);
    expect(finished.length).toBeGreaterThanOrEqual(6);
    expect(finished.length).toBeLessThan(count);

    const items: Step[] = Array.from({ length: count }, (_, id) => ({ id, ms: 100 }));
    // The dead producer holds the batch for at most its lockDuration (2 s): until then a
    // resume is refused, touching nothing; then it proceeds.
    const died = performance.now();
    let refused = 0;
    let outputs: { id: number }[] | undefined;
    while (outputs === undefined) {
      try {
        outputs = await scripts.map(items, { batchId, window: 6, context: { log } });
      } catch (error) {
        expect(error).toBeInstanceOf(BatchInUseError);
        expect((error as BatchInUseError).batchId).toBe(batchId);
        refused++;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
    expect(refused).toBeGreaterThan(0);
    // Generous for a loaded machine: the hold lapses 2 s after the last renewal.
    expect(performance.now() - died).toBeLessThan(2_000 + 8_000);
    expect(outputs.map((entry) => entry.id)).toEqual(items.map(({ id }) => id));
    // No item ran twice: in particular none of those finished before the producer died.
    expect(ids(starts(await readLog(redis, log)))).toEqual(items.map(({ id }) => id));
    expect(await keysContaining(redis, batchId)).toEqual([]);
  }, 60_000);
});
