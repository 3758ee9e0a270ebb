/**
 * A worker process of `npm run demo -- --workers N`: runs the demo pipeline for the jobs of the
 * demo's queue, counts retries and the records it runs in Redis (so the producer's progress
 * line shows them live), and on SIGTERM finishes its jobs, leaves its stage durations in Redis,
 * and exits. It runs in a process group of its own (a terminal's Ctrl-C does not reach it: the
 * demo stops it, in order), and exits should the demo die (their IPC channel closes).
 *
 * Environment: REDIS_URL, DEMO_QUEUE, DEMO_SERVER (the quote service), DEMO_CONCURRENCY.
 */
import type { Middleware } from "async-pipeline";
import { PipelineWorker } from "async-pipeline/bullmq";
import { Redis } from "ioredis";
import { demoKeys } from "./distributed.js";
import { makePipeline } from "./pipeline.js";
import { describeError } from "./report.js";

const env = process.env;
const required = (name: string): string => {
  const value = env[name];
  if (value === undefined) throw new Error(`demo worker: ${name} is not set`);
  return value;
};
const queueName = required("DEMO_QUEUE");
const keys = demoKeys(queueName);
const redis = new Redis(required("REDIS_URL"), { maxRetriesPerRequest: null });
const timings: Record<string, number[]> = {};

/** Keeps the duration timingMiddleware (inside it) has just recorded on the job's context. */
const keepTiming: Middleware<object> = async (next, stageName, value, context) => {
  try {
    return await next(value);
  } finally {
    const recorded = (context as { timings?: Record<string, number[]> }).timings?.[stageName];
    const last = recorded?.at(-1);
    if (last !== undefined) (timings[stageName] ??= []).push(last);
  }
};

/** How many records run here now: a record is inside one of its stages while it runs. */
let running = 0;
const counting: Middleware<object> = async (next, _stageName, value) => {
  running++;
  try {
    return await next(value);
  } finally {
    running--;
  }
};

const pipeline = makePipeline({
  baseUrl: required("DEMO_SERVER"),
  onRetry: ({ error }) => {
    redis.hincrby(keys.retries, describeError(error), 1).catch(() => undefined);
  },
  collect: () => undefined,
  outer: [counting, keepTiming],
});
const worker = new PipelineWorker(pipeline, {
  queueName,
  connection: redis,
  concurrency: Number(env.DEMO_CONCURRENCY ?? 1),
});
const field = String(process.pid);
let reported = -1;
const reporting = setInterval(() => {
  if (running === reported) return;
  reported = running;
  redis.hset(keys.running, field, running).catch(() => undefined);
}, 100);
await worker.waitUntilReady();
process.stdout.write("ready\n");

let stopping = false;
async function stop(code: number): Promise<void> {
  if (stopping) return;
  stopping = true;
  clearInterval(reporting);
  await worker.close();
  await redis.hdel(keys.running, field).catch(() => undefined);
  await redis.rpush(keys.timings, JSON.stringify(timings)).catch(() => undefined);
  await redis.quit().catch(() => undefined);
  process.exit(code);
}
process.once("SIGTERM", () => void stop(0));
// The demo died without stopping this worker: stop anyway.
process.once("disconnect", () => void stop(1));
