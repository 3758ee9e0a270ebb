/**
 * Case 7: distributed batches. Jobs per second through `PipelineQueue.map` with one, two and
 * four worker processes, against a hand-written BullMQ floor doing the same trivial job
 * (`Queue.addBulk`, a `Worker` that returns `value + 1`, results collected from `QueueEvents`),
 * one group per worker count (its own child process, redis-server and worker processes, ours
 * and the floor's interleaved round by round); and Redis memory per outstanding job and per
 * stored result (`INFO memory`).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { Queue, QueueEvents } from "bullmq";
import { Redis } from "ioredis";
import { startRedisServer, type RedisServer } from "../../demo/redis-server.js";
import { ratio, type Contender, type Measurement } from "../harness.js";
import { loadBullmq, Pipeline, Stage } from "../lib.js";
import {
  OURS,
  clockName,
  formatBytes,
  formatNs,
  formatRate,
  formatRatioRange,
  formatSpread,
  score,
  type Settings,
  type Table,
} from "../report.js";
import { defineCase } from "../suite.js";

const WORKER = fileURLToPath(new URL("../bullmq-worker.ts", import.meta.url));
/** The worker-process counts measured, one group each. */
const WORKER_COUNTS = [1, 2, 4] as const;
const groupId = (workers: number) => `jobs through Redis, ${String(workers)} worker processes`;
const ours = (workers: number) =>
  `${OURS} PipelineQueue.map, ${String(workers)} worker process${workers > 1 ? "es" : ""}`;
const floor = (workers: number) =>
  `BullMQ addBulk + Worker + QueueEvents, ${String(workers)} worker process${workers > 1 ? "es" : ""}`;

const pipeline = () => new Pipeline([new Stage("increment", (value: number) => value + 1)]);

function startWorker(
  mode: "pipeline" | "floor",
  queueName: string,
  url: string,
): Promise<ChildProcess> {
  const child = spawn(process.execPath, ["--import", "tsx", WORKER, mode, queueName], {
    stdio: ["ignore", "pipe", "inherit"],
    env: { ...process.env, REDIS_URL: url },
  });
  return new Promise((resolve, reject) => {
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
      if (chunk.includes("ready")) resolve(child);
    });
    child.once("exit", (code) => {
      reject(new Error(`bench worker exited (${String(code)})`));
    });
  });
}

/** Kills what a group started when its child process exits (a group has no teardown). */
function killOnExit(server: RedisServer, children: ChildProcess[]): void {
  process.once("exit", () => {
    for (const child of children) child.kill("SIGKILL");
    process.kill(server.pid, "SIGKILL");
  });
}

/** The floor: what one would write by hand with BullMQ to map items through workers. */
function handWritten(
  queueName: string,
  url: string,
): { op: (items: number[]) => Promise<number[]> } {
  const connection = new Redis(url, { maxRetriesPerRequest: null });
  const queue = new Queue<number>(queueName, { connection });
  const events = new QueueEvents(queueName, {
    connection: new Redis(url, { maxRetriesPerRequest: null }),
  });
  const waiting = new Map<string, (value: number) => void>();
  events.on("completed", ({ jobId, returnvalue }) => {
    waiting.get(jobId)?.(Number(returnvalue));
    waiting.delete(jobId);
  });
  let batch = 0;
  return {
    async op(items) {
      await events.waitUntilReady();
      const prefix = `b${String(batch++)}`;
      const results = items.map(
        (_, index) =>
          new Promise<number>((resolve) => waiting.set(`${prefix}-${String(index)}`, resolve)),
      );
      await queue.addBulk(
        items.map((value, index) => ({
          name: "item",
          data: value,
          opts: { jobId: `${prefix}-${String(index)}`, removeOnComplete: true, removeOnFail: true },
        })),
      );
      return Promise.all(results);
    },
  };
}

function items(settings: { quick: boolean }): number[] {
  return Array.from({ length: settings.quick ? 200 : 2_000 }, (_, index) => index);
}

/** Ours and the floor, each on `workers` worker processes of its own, on one redis-server. */
async function contenders(settings: { quick: boolean }, workers: number): Promise<Contender[]> {
  const server = await startRedisServer();
  const children: ChildProcess[] = [];
  killOnExit(server, children);
  const { PipelineQueue } = await loadBullmq();
  const input = items(settings);
  const check = (output: unknown) =>
    Array.isArray(output) &&
    output.length === input.length &&
    output.every((value, index) => value === index + 1);
  const ourQueue = `ours-${String(workers)}`;
  const floorQueue = `floor-${String(workers)}`;
  for (let index = 0; index < workers; index++) {
    children.push(await startWorker("pipeline", ourQueue, server.url));
    children.push(await startWorker("floor", floorQueue, server.url));
  }
  const queue = new PipelineQueue(pipeline(), {
    queueName: ourQueue,
    connection: { port: server.port, host: "127.0.0.1" },
  });
  const hand = handWritten(floorQueue, server.url);
  return [
    { name: ours(workers), op: () => queue.map(input, { window: input.length }), check },
    { name: floor(workers), op: () => hand.op(input), check },
  ];
}

/** Redis memory per outstanding job (no worker takes them) and per stored result. */
async function memory(
  settings: Settings,
): Promise<{ perJob: number; perResult: number; count: number }> {
  const server = await startRedisServer();
  const redis = new Redis(server.url);
  try {
    const { PipelineQueue } = await loadBullmq();
    const count = settings.quick ? 500 : 10_000;
    const used = async () => Number(/used_memory:(\d+)/.exec(await redis.info("memory"))?.[1]);
    const queue = new PipelineQueue(pipeline(), {
      queueName: "memory",
      connection: { port: server.port, host: "127.0.0.1" },
    });
    await queue.queue.waitUntilReady();
    const before = await used();
    const controller = new AbortController();
    const running = queue
      .map(input(count), { window: count, signal: controller.signal })
      .catch(() => undefined);
    while ((await queue.queue.getWaitingCount()) < count)
      await new Promise((resolve) => setTimeout(resolve, 20));
    const perJob = ((await used()) - before) / count;
    controller.abort();
    await running;
    await queue.close();
    // A stored result is one field of the batch's results hash: `{"ok":<output>}` as JSON.
    const empty = await used();
    for (let start = 0; start < count; start += 1_000) {
      const fields = input(Math.min(1_000, count - start)).flatMap((index) => [
        String(start + index),
        JSON.stringify({ ok: start + index + 1 }),
      ]);
      await redis.hset("results", ...fields);
    }
    const perResult = ((await used()) - empty) / count;
    return { perJob, perResult, count };
  } finally {
    redis.disconnect();
    await server.stop();
  }
}

function input(count: number): number[] {
  return Array.from({ length: count }, (_, index) => index);
}

export default defineCase({
  groups: (settings) =>
    WORKER_COUNTS.map((workers) => ({
      id: groupId(workers),
      options: {
        rounds: settings.quick ? 2 : 10,
        sampleMs: settings.quick ? 10 : 300,
        warmupMs: settings.quick ? 0 : 1_000,
        unitsPerOp: items(settings).length,
      },
      contenders: () => contenders(settings, workers),
    })),
  section: async (settings, measure) => {
    const measurements = new Map<number, Measurement>();
    for (const workers of WORKER_COUNTS) measurements.set(workers, await measure(groupId(workers)));
    const count = items(settings).length;
    const rows = WORKER_COUNTS.flatMap((workers) => {
      const measurement = measurements.get(workers)!;
      return measurement.results.map((entry) => [
        entry.name,
        formatSpread(entry.ns, formatNs),
        formatRate(entry.ns.median),
        entry.name.startsWith(OURS)
          ? formatRatioRange(ratio(measurement, entry.name, floor(workers)))
          : "—",
      ]);
    });
    const table: Table = {
      caption: `map of ${String(count)} trivial jobs through a local Redis, 16 concurrency per worker process`,
      headers: [
        "implementation",
        `${clockName(settings)} per job (median ±IQR/2)`,
        "jobs/s",
        "time ÷ BullMQ floor",
      ],
      align: ["l", "r", "r", "r"],
      rows,
    };
    const { perJob, perResult, count: stored } = await memory(settings);
    const versus = WORKER_COUNTS.map((workers) => ({
      workers,
      ratio: ratio(measurements.get(workers)!, ours(workers), floor(workers)),
    }));
    return {
      title: "7. Distributed batches (async-pipeline/bullmq)",
      intro: [
        "Jobs per second through `PipelineQueue.map` against a hand-written BullMQ floor (`Queue.addBulk`,",
        "a `Worker` returning `value + 1`, results from `QueueEvents`, the same window), with 1, 2 and 4",
        "worker processes: one group each, in a child process of its own with its own redis-server and",
        "worker processes, the two contenders interleaved round by round. The producer, the workers and",
        "Redis share the machine. Goal: ≤ 1.15× the floor at every worker count.",
      ],
      tables: [
        table,
        {
          caption: `Redis memory (INFO used_memory), ${String(stored)} jobs or results`,
          headers: ["what", "bytes each"],
          align: ["l", "r"],
          rows: [
            ["an outstanding job (waiting, in BullMQ's keys)", formatBytes(perJob)],
            ['a stored result (`{"ok":n}` in the batch\'s results hash)', formatBytes(perResult)],
          ],
        },
      ],
      notes: [],
      charts: [],
      headlines: [
        `bullmq: PipelineQueue.map ${versus
          .map(({ workers, ratio: range }) => `${formatRatioRange(range)} with ${String(workers)}`)
          .join(
            ", ",
          )} worker processes, × the BullMQ floor; ${formatBytes(perJob)} of Redis per outstanding job, ${formatBytes(perResult)} per stored result`,
      ],
      scores: WORKER_COUNTS.map((workers) =>
        score(measurements.get(workers)!, {
          id: `bullmq-${String(workers)}-vs-floor`,
          label: `\`PipelineQueue.map\`, ${String(workers)} worker process${workers > 1 ? "es" : ""} ÷ BullMQ floor`,
          ours: ours(workers),
          reference: floor(workers),
          goal: 1.15,
        }),
      ),
    };
  },
});
