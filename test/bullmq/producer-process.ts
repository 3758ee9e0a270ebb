/**
 * A producer process for the BullMQ tests: `producer-process.ts <queueName> <batchId> <count>
 * <logKey>` maps `count` scripted items of ITEM_MS ms each (100 by default) through the queue
 * with a window of WINDOW (6), printing `progress <done>` lines, then `finished`, or
 * `failed <error name>: <message>` when the batch rejects. REDIS_URL, LOCK_DURATION and
 * OUTAGE_TIMEOUT in the environment. The tests kill it, pause it, or take its Redis away.
 */
import { PipelineQueue } from "../../src/bullmq/index.js";
import { scripted, type Step } from "./pipelines.js";

const [queueName, batchId, count, log] = process.argv.slice(2) as [string, string, string, string];
const env = process.env;
const number = (key: string, fallback: number) =>
  env[key] === undefined ? fallback : Number(env[key]);
const queue = new PipelineQueue(scripted(), {
  queueName,
  connection: env.REDIS_URL!,
  lockDuration: number("LOCK_DURATION", 30_000),
  outageTimeout: number("OUTAGE_TIMEOUT", 60_000),
});
const ms = number("ITEM_MS", 100);
const items: Step[] = Array.from({ length: Number(count) }, (_, id) => ({ id, ms }));
try {
  await queue.map(items, {
    batchId,
    window: number("WINDOW", 6),
    context: { log },
    onProgress: ({ done }) => process.stdout.write(`progress ${String(done)}\n`),
  });
  process.stdout.write("finished\n");
} catch (error) {
  const { name, message } = error as Error;
  process.stdout.write(`failed ${name}: ${message}\n`);
}
await queue.close();
