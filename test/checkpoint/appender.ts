/**
 * A process that appends to a checkpoint until it is killed: `appender.ts <path> <flushEvery>`.
 * It loads the file (every record must be `{ n }` with n = 0, 1, 2, … in order), prints
 * `loaded <count>`, then appends `{ n, pad }` records of random sizes, forever, letting the
 * store's timer write groups; every few hundred records it awaits `flush()` and prints
 * `durable <count>`: the records that a crash from then on must not lose.
 */
import { fileCheckpoint } from "../../src/checkpoint/index.js";

const [path, flushEvery] = process.argv.slice(2);
if (path === undefined || flushEvery === undefined) {
  throw new Error("usage: appender.ts <path> <flushEvery>");
}
const checkpoint = fileCheckpoint(path, { flushEvery: Number(flushEvery) });
let count = 0;
for (const record of checkpoint.load()) {
  if ((record as { n?: unknown }).n !== count) {
    throw new Error(`record ${String(count)} is ${JSON.stringify(record)}`);
  }
  count++;
}
console.log(`loaded ${String(count)}`);

const padding = "abcdefghij".repeat(600) + "é€𝄞".repeat(200);
for (;;) {
  const burst = 1 + Math.floor(Math.random() * 400);
  for (let index = 0; index < burst; index++) {
    const size =
      Math.random() < 0.05
        ? Math.floor(Math.random() * padding.length)
        : Math.floor(Math.random() * 40);
    checkpoint.append({ n: count++, pad: padding.slice(0, size) });
  }
  if (Math.random() < 0.2) {
    await checkpoint.flush();
    console.log(`durable ${String(count)}`);
  } else {
    // Let the store's timer run.
    await new Promise((resolve) => setImmediate(resolve));
  }
}
