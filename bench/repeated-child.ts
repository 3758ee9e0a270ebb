/**
 * Repeated batches, in a process of its own: {@link BATCHES} batches of `<items>` items one
 * after another, with a full GC (`--expose-gc`) before each, so that V8 may collect whatever
 * the previous batch left, hidden classes included. Started by cases/repeated-batches.ts as
 *
 *   node --expose-gc --import tsx bench/repeated-child.ts <form> <items>
 *
 * with `<form>` `map` or `stream`, and prints one JSON line: the wall time of each batch in ms.
 * A batch form whose per-batch objects V8 must relearn after a GC slows down batch after
 * batch; the slowest ÷ fastest batch shows it.
 */
import { Pipeline, Stage } from "./lib.js";

export const BATCHES = 12;
const CONCURRENCY = 16;

const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error("run with node --expose-gc");
const collect: () => void = gc;

async function main(): Promise<void> {
  const [form, itemsArgument] = process.argv.slice(2);
  const items = Number(itemsArgument);
  if ((form !== "map" && form !== "stream") || !(items > 0)) {
    throw new Error("usage: repeated-child.ts <map|stream> <items>");
  }
  const input = Array.from({ length: items }, (_, index) => index);
  const pipeline = new Pipeline([new Stage("increment", async (value: number) => value + 1)]);
  const times: number[] = [];
  for (let batch = 0; batch < BATCHES; batch++) {
    collect();
    const started = performance.now();
    let sum = 0;
    if (form === "map") {
      const outputs = await pipeline.map(input, CONCURRENCY);
      sum = outputs.length;
    } else {
      for await (const output of pipeline.stream(input, CONCURRENCY)) sum += output;
    }
    times.push(performance.now() - started);
    if (!(sum > 0)) throw new Error("the batch produced nothing");
  }
  process.stdout.write(`${JSON.stringify(times)}\n`);
}

await main();
