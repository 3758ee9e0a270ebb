/**
 * `npm run demo -- --workers N`: the same job through Redis. The producer (this process) keeps
 * the quote service and the progress line, and enqueues the records with PipelineQueue; N
 * worker processes (demo/worker.ts) run the pipeline. Redis is REDIS_URL when set, else a
 * redis-server started here for the run.
 *
 * Ctrl-C in a terminal sends SIGINT to the whole foreground process group. The workers and the
 * redis-server run in process groups of their own, so that it reaches only this process, which
 * then stops them in order: the batch first (its jobs cancelled), then the workers (each
 * closes gracefully), then Redis. Should this process die without that, each worker notices
 * its parent gone (their IPC channel closes) and exits, and the 'exit' handler below kills
 * what is left.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { Progress } from "async-pipeline";
import { PipelineQueue } from "async-pipeline/bullmq";
import { Redis } from "ioredis";
import { makePipeline, type PricedOrder } from "./pipeline.js";
import {
  HOW_TO_GET_REDIS,
  hasRedisServer,
  startRedisServer,
  type RedisServer,
} from "./redis-server.js";
import type { Tally } from "./report.js";

/** The demo's own Redis keys, beside the queue's. */
export function demoKeys(queueName: string): { retries: string; timings: string; running: string } {
  return {
    retries: `demo:${queueName}:retries`,
    timings: `demo:${queueName}:timings`,
    // Per worker process (by pid): how many records it is running now.
    running: `demo:${queueName}:running`,
  };
}

/** The processes this run started, killed on any exit of this process that did not stop them. */
const started = new Set<number>();
process.once("exit", () => {
  for (const pid of started) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // Gone already.
    }
  }
});

export interface DistributedRun {
  readonly records: readonly string[];
  readonly workers: number;
  readonly concurrency: number;
  readonly serverUrl: string;
  readonly signal: AbortSignal;
  readonly retries: Tally;
  readonly onProgress: (progress: Progress) => void;
  readonly log: (line: string) => void;
}

export interface DistributedResult {
  /** `undefined` when the batch was interrupted. */
  readonly settled: PromiseSettledResult<PricedOrder>[] | undefined;
  readonly timings: Record<string, number[]>;
  readonly collected: PricedOrder[];
}

/** Where Redis is: REDIS_URL, or a local redis-server started for this run. */
async function redisFor(
  log: (line: string) => void,
): Promise<{ url: string; server?: RedisServer }> {
  const url = process.env.REDIS_URL;
  if (url !== undefined && url !== "") return { url };
  if (!hasRedisServer()) {
    throw new Error(
      `--workers needs Redis: set REDIS_URL, or install redis-server. ${HOW_TO_GET_REDIS}`,
    );
  }
  const server = await startRedisServer({ detached: true });
  started.add(server.pid);
  void server.exited.then(() => started.delete(server.pid));
  log(`redis: started redis-server at ${server.url} (pid ${String(server.pid)}) for this run`);
  return { url: server.url, server };
}

function startWorker(env: Record<string, string>): Promise<ChildProcess> {
  const file = fileURLToPath(new URL("worker.ts", import.meta.url));
  const child = spawn(process.execPath, ["--import", "tsx", file], {
    stdio: ["ignore", "pipe", "inherit", "ipc"],
    env: { ...process.env, ...env },
    detached: true,
  });
  const pid = child.pid;
  if (pid !== undefined) {
    started.add(pid);
    child.once("exit", () => started.delete(pid));
  }
  // Spawned with a pipe for stdout (its "ready" line).
  const stdout = child.stdout as NodeJS.ReadableStream;
  return new Promise((resolve, reject) => {
    let output = "";
    stdout.setEncoding("utf8").on("data", (chunk: string) => {
      output += chunk;
      if (output.includes("ready\n")) resolve(child);
    });
    child.once("exit", (code) => {
      reject(new Error(`a demo worker exited early (${String(code)})`));
    });
  });
}

/** Runs the demo's batch on `workers` worker processes through Redis. */
export async function runDistributed(run: DistributedRun): Promise<DistributedResult> {
  const { url, server } = await redisFor(run.log);
  const queueName = `demo-${String(process.pid)}-${String(Date.now())}`;
  const keys = demoKeys(queueName);
  const redis = new Redis(url, { maxRetriesPerRequest: null });
  const children: ChildProcess[] = [];
  try {
    const perWorker = Math.max(1, Math.ceil(run.concurrency / run.workers));
    const env = {
      REDIS_URL: url,
      DEMO_QUEUE: queueName,
      DEMO_SERVER: run.serverUrl,
      DEMO_CONCURRENCY: String(perWorker),
    };
    children.push(
      ...(await Promise.all(Array.from({ length: run.workers }, () => startWorker(env)))),
    );
    run.log(
      `workers: ${String(run.workers)} processes × concurrency ${String(perWorker)}, queue ${queueName}`,
    );
    run.log(`worker pids: ${children.map((child) => String(child.pid)).join(", ")}`);
    const pipeline = makePipeline({
      baseUrl: run.serverUrl,
      onRetry: () => undefined,
      collect: () => undefined,
    });
    const queue = new PipelineQueue(pipeline, { queueName, connection: url });
    // The workers count retries and the records they run in Redis; the progress line reads
    // them from here. Its "in flight" is what the workers run (the batch's `inFlight` counts
    // its jobs in Redis, waiting ones included: up to the window).
    let running = 0;
    let last: Progress | undefined;
    const report = (progress: Progress) => {
      last = progress;
      run.onProgress({ ...progress, inFlight: Math.min(running, progress.inFlight) });
    };
    const poll = setInterval(() => {
      void refreshRetries(redis, keys.retries, run.retries);
      void redis
        .hvals(keys.running)
        .then((counts) => {
          running = counts.reduce((sum, count) => sum + Number(count), 0);
          if (last !== undefined) report(last);
        })
        .catch(() => undefined);
    }, 200);
    let settled: PromiseSettledResult<PricedOrder>[] | undefined;
    try {
      settled = await queue.mapSettled(run.records, {
        signal: run.signal,
        window: Math.max(run.concurrency * 4, 64),
        onProgress: report,
      });
    } catch (error) {
      if (error !== run.signal.reason) throw error;
    } finally {
      clearInterval(poll);
      await queue.close();
    }
    // Graceful shutdown: each worker finishes its jobs, leaves its durations, and exits.
    await Promise.all(children.map((child) => stop(child)));
    children.length = 0;
    await refreshRetries(redis, keys.retries, run.retries);
    const timings: Record<string, number[]> = {};
    for (const entry of await redis.lrange(keys.timings, 0, -1)) {
      for (const [stage, values] of Object.entries(JSON.parse(entry) as Record<string, number[]>)) {
        (timings[stage] ??= []).push(...values);
      }
    }
    const collected = (settled ?? []).flatMap((entry) =>
      entry.status === "fulfilled" ? [entry.value] : [],
    );
    return { settled, timings, collected };
  } finally {
    await Promise.all(children.map((child) => stop(child)));
    await redis.del(keys.retries, keys.timings, keys.running).catch(() => undefined);
    redis.disconnect();
    await server?.stop();
  }
}

async function refreshRetries(redis: Redis, key: string, retries: Tally): Promise<void> {
  const counts = await redis.hgetall(key).catch(() => ({}));
  retries.replace(
    Object.fromEntries(Object.entries(counts).map(([reason, count]) => [reason, Number(count)])),
  );
}

function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once("exit", () => {
      resolve();
    });
    child.kill("SIGTERM");
  });
}
