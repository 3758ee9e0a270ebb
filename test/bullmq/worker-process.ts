/**
 * A worker process for the BullMQ tests: `worker-process.ts <base> <role>...` runs one
 * PipelineWorker per role on queue `<base>-<role>`: `arithmetic`, `scripted` (the test
 * pipelines) or `stall` (the scripted pipeline, for the test that kills a worker). Settings in
 * the environment: REDIS_URL (the queue's Redis), LOG_URL (where the scripted pipeline logs;
 * REDIS_URL by default), CONCURRENCY, LOCK_DURATION, STALLED_INTERVAL, MAX_STALLED_COUNT,
 * VERSION and CLOSE_TIMEOUT; errors go to the default onError (stderr). Prints `ready` once connected; SIGTERM closes the workers gracefully, prints `closed` and
 * exits.
 */
import { PipelineWorker } from "../../src/bullmq/index.js";
import { arithmetic, Log, scripted } from "./pipelines.js";

const [base, ...roles] = process.argv.slice(2) as [string, ...string[]];
const env = process.env;
const url = new URL(env.REDIS_URL!);
const number = (key: string) => (env[key] === undefined ? undefined : Number(env[key]));
const log = new Log(env.LOG_URL ?? url.href, env.WORKER_NAME ?? String(process.pid));
const workers = roles.map(
  (role) =>
    new PipelineWorker((role === "arithmetic" ? arithmetic() : scripted(log)) as never, {
      queueName: `${base}-${role}`,
      connection: url.href,
      concurrency: number("CONCURRENCY"),
      lockDuration: number("LOCK_DURATION"),
      stalledInterval: number("STALLED_INTERVAL"),
      maxStalledCount: number("MAX_STALLED_COUNT"),
      version: env.VERSION,
      closeTimeout: number("CLOSE_TIMEOUT"),
    }),
);
await Promise.all(workers.map((worker) => worker.waitUntilReady()));
process.stdout.write("ready\n");
process.once("SIGTERM", () => {
  const started = performance.now();
  void Promise.all(workers.map((worker) => worker.close())).then(() => {
    log.close();
    const ms = Math.round(performance.now() - started);
    process.stdout.write(`closed in ${String(ms)} ms\n`, () => process.exit(0));
  });
});
