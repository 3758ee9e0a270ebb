/**
 * A worker process of `npm run demo -- --workers N`: runs the demo pipeline for the jobs of the
 * demo's queue, counts retries in Redis (so the producer's progress line shows them live), and
 * on SIGTERM finishes its jobs, leaves its stage durations in Redis, and exits.
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

const pipeline = makePipeline({
  baseUrl: required("DEMO_SERVER"),
  onRetry: ({ error }) => {
    redis.hincrby(keys.retries, describeError(error), 1).catch(() => undefined);
  },
  collect: () => undefined,
  outer: [keepTiming],
});
const worker = new PipelineWorker(pipeline, {
  queueName,
  connection: redis,
  concurrency: Number(env.DEMO_CONCURRENCY ?? 1),
});
await worker.waitUntilReady();
process.stdout.write("ready\n");
process.once("SIGTERM", () => {
  void (async () => {
    await worker.close();
    await redis.rpush(keys.timings, JSON.stringify(timings));
    await redis.quit();
  })();
});
