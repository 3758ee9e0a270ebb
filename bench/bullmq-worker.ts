/**
 * A worker process of the BullMQ benchmark: `bullmq-worker.ts <pipeline|floor> <queueName>`,
 * REDIS_URL in the environment. `pipeline`: a PipelineWorker (the BUILT package) running one
 * trivial stage; `floor`: a hand-written BullMQ Worker doing the same job. Prints `ready`.
 */
import { Worker } from "bullmq";
import { Redis } from "ioredis";
import { loadBullmq, Pipeline, Stage } from "./lib.js";

const [mode, queueName] = process.argv.slice(2) as [string, string];
const url = process.env.REDIS_URL ?? "";
const connection = new Redis(url, { maxRetriesPerRequest: null });
const CONCURRENCY = 16;
let close: () => Promise<void>;
if (mode === "pipeline") {
  const pipeline = new Pipeline([new Stage("increment", (value: number) => value + 1)]);
  const { PipelineWorker } = await loadBullmq();
  const worker = new PipelineWorker(pipeline, {
    queueName,
    connection,
    concurrency: CONCURRENCY,
  });
  await worker.waitUntilReady();
  close = () => worker.close();
} else {
  const worker = new Worker<number, number>(queueName, (job) => Promise.resolve(job.data + 1), {
    connection,
    concurrency: CONCURRENCY,
  });
  await worker.waitUntilReady();
  close = () => worker.close();
}
process.stdout.write("ready\n");
process.once("SIGTERM", () => {
  void close().then(() => connection.quit());
});
