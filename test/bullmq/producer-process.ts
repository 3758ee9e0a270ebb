/**
 * A producer process for the resume test: `producer-process.ts <queueName> <batchId> <count> <logKey>`
 * maps `count` scripted items of `ms` each through the queue with a small window, printing
 * `progress <done>` lines, until the test kills it.
 */
import { PipelineQueue } from "../../src/bullmq/index.js";
import { scripted, type Step } from "./pipelines.js";

const [queueName, batchId, count, log] = process.argv.slice(2) as [string, string, string, string];
const url = new URL(process.env.REDIS_URL!);
const queue = new PipelineQueue(scripted(), {
  queueName,
  connection: url.href,
  lockDuration: Number(process.env.LOCK_DURATION ?? 30_000),
});
const items: Step[] = Array.from({ length: Number(count) }, (_, id) => ({ id, ms: 100 }));
await queue.map(items, {
  batchId,
  window: 6,
  context: { log },
  onProgress: ({ done }) => process.stdout.write(`progress ${String(done)}\n`),
});
process.stdout.write("finished\n");
await queue.close();
