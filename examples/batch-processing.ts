/**
 * Batch processing: `map` runs the pipeline over many inputs with bounded concurrency and
 * returns the outputs in input order; `mapSettled` collects failures instead of failing fast;
 * any iterable (a generator too) is consumed lazily; `onProgress` reports progress.
 *
 * Run: npx tsx examples/batch-processing.ts
 */
import { Pipeline, Stage, StageExecutionError } from "async-pipeline";
import { setImmediate as nextTurn, setTimeout as sleep } from "node:timers/promises";

/**
 * Simulated work, counted in turns of the event loop rather than in milliseconds: items that
 * start together finish in the order of their amounts of work however busy the machine is,
 * where sleeps a few milliseconds apart may fire in either order.
 */
async function work(turns: number): Promise<void> {
  for (let turn = 0; turn < turns; turn++) await nextTurn();
}

let running = 0;
let maxRunning = 0;
const finishOrder: number[] = [];

// Later items do less work, so they finish first: the results still come back in input order.
const pipeline = new Pipeline([
  new Stage("square", async (value: number) => {
    running++;
    maxRunning = Math.max(maxRunning, running);
    await work((10 - value) * 10);
    running--;
    finishOrder.push(value);
    return value * value;
  }),
]);

const squares = await pipeline.map([1, 2, 3, 4, 5, 6, 7, 8], 3);
console.log(`map results (input order): ${squares.join(", ")}`);
console.log(`finish order:              ${finishOrder.join(", ")}`);
console.log(`at most ${maxRunning} items ran at once (concurrency 3)`);

// mapSettled: one PromiseSettledResult per item, in input order, like Promise.allSettled.
const parse = new Pipeline([
  new Stage("parse", (line: string) => JSON.parse(line) as { id: number }),
  new Stage("id", (record: { id: number }) => record.id),
]);
const settled = await parse.mapSettled(['{"id":1}', "not json", '{"id":3}'], 2);
for (const [index, entry] of settled.entries()) {
  if (entry.status === "fulfilled") {
    console.log(`item ${index}: fulfilled with ${entry.value}`);
  } else {
    const reason = entry.reason as StageExecutionError;
    const original = reason.originalError as Error;
    console.log(`item ${index}: rejected in stage "${reason.stageName}" (${original.name})`);
  }
}

// map fails fast: the first failure rejects the whole batch with that item's error.
try {
  await parse.map(['{"id":1}', "not json", '{"id":3}'], 1);
} catch (error) {
  if (error instanceof StageExecutionError) {
    console.log(
      `map rejected: stage "${error.stageName}" failed with ${String(error.originalError)}`,
    );
  }
}

// Any Iterable or AsyncIterable works, consumed lazily: a generator is read only as fast as
// `concurrency` allows, so millions of items run in bounded memory.
let produced = 0;
let finished = 0;
let maxAhead = 0;
function* numbers(count: number): Generator<number> {
  for (let index = 1; index <= count; index++) {
    produced++;
    maxAhead = Math.max(maxAhead, produced - finished);
    yield index;
  }
}
const double = new Pipeline([
  new Stage("double", async (value: number) => {
    await sleep(1);
    finished++;
    return value * 2;
  }),
]);
const doubled = await double.map(numbers(1_000), { concurrency: 16 });
const sum = doubled.reduce((total, value) => total + value, 0);
console.log(`generator: ${produced} items, sum of doubles = ${sum}`);
console.log(`generator: at most ${maxAhead} items taken ahead of those finished (concurrency 16)`);

// Progress: called with a frozen { done, failed, inFlight, total } as items settle.
let last = "";
await parse.mapSettled(['{"id":1}', "oops", '{"id":3}', '{"id":4}'], 2, {
  onProgress: ({ done, failed, inFlight, total }) => {
    last = `${done}/${total ?? "?"} done, ${failed} failed, ${inFlight} in flight`;
  },
});
console.log(`final progress: ${last}`);
