/**
 * One memory measurement, in a process of its own so that libraries' figures do not mix.
 * Started by cases/memory.ts as
 *
 *   node --expose-gc --import tsx bench/memory-child.ts <library> <items> <concurrency> <mode>
 *
 * and prints one JSON line (a {@link MemoryReport}). The input is a generator of small
 * numbers, so nothing but the results array need grow with the item count.
 *
 * - mode `peak`: `process.memoryUsage()` every {@link SAMPLE_EVERY} items taken, no forced GC:
 *   the peak heap and RSS a user would see.
 * - mode `live`: a forced GC at ten checkpoints (every tenth of the input), then `heapUsed`:
 *   the memory the run really holds at that point, whose growth per item is compared with
 *   the results array's own size (measured at the end: heap with the results minus without).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pMap from "p-map";
import { loadCheckpoint, Pipeline, Stage } from "./lib.js";
import { CHECKPOINTED, LIBRARIES, type MemoryReport } from "./memory-report.js";

const SAMPLE_EVERY = 1_000;

const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error("run with node --expose-gc");
const collect: () => void = gc;

const increment = async (value: number): Promise<number> => value + 1;

async function handWritten(items: Iterable<number>, concurrency: number): Promise<number[]> {
  const iterator = items[Symbol.iterator]();
  const results: number[] = [];
  let index = 0;
  const worker = async (): Promise<void> => {
    for (;;) {
      const step = iterator.next();
      if (step.done === true) return;
      const mine = index++;
      results[mine] = await increment(step.value);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return results;
}

async function main(): Promise<void> {
  const [libraryArgument, itemsArgument, concurrencyArgument, modeArgument] = process.argv.slice(2);
  const library = [...LIBRARIES, CHECKPOINTED].find((name) => name === libraryArgument);
  const items = Number(itemsArgument);
  const concurrency = Number(concurrencyArgument);
  const mode = modeArgument === "live" ? "live" : "peak";
  if (library === undefined || !(items > 0) || !(concurrency > 0)) {
    throw new Error(
      `usage: memory-child.ts <${[...LIBRARIES, CHECKPOINTED].join("|")}> <items> <concurrency> <mode>`,
    );
  }

  const pipeline = new Pipeline([new Stage("increment", increment)]);
  // A checkpoint that starts empty each batch (deleted when the batch completes).
  const { fileCheckpoint } = await loadCheckpoint();
  const folder = mkdtempSync(join(tmpdir(), "async-pipeline-memory-"));
  process.once("exit", () => {
    rmSync(folder, { recursive: true, force: true });
  });
  const path = join(folder, "memory.ckpt");
  const run = {
    "hand-written worker pool": (input: Iterable<number>) => handWritten(input, concurrency),
    "async-pipeline": (input: Iterable<number>) => pipeline.map(input, concurrency),
    "p-map": (input: Iterable<number>) => pMap(input, increment, { concurrency }),
    [CHECKPOINTED]: (input: Iterable<number>) =>
      pipeline.map(input, {
        concurrency,
        checkpoint: fileCheckpoint(path, { clearOnSuccess: true }),
      }),
  }[library];

  // Warm the code paths up on a small input so that compiled code is not counted as growth.
  await run(Array.from({ length: 10_000 }, (_, index) => index % 100));

  const checkpointEvery = Math.max(1, Math.floor(items / 10));
  const checkpoints: { items: number; heapUsed: number }[] = [];
  const peak = { heapUsed: 0, rss: 0 };
  const sample = (): void => {
    const usage = process.memoryUsage();
    if (usage.heapUsed > peak.heapUsed) peak.heapUsed = usage.heapUsed;
    if (usage.rss > peak.rss) peak.rss = usage.rss;
  };
  function* source(): Generator<number> {
    for (let taken = 0; taken < items; taken++) {
      if (mode === "peak") {
        if (taken % SAMPLE_EVERY === 0) sample();
      } else if (taken > 0 && taken % checkpointEvery === 0) {
        collect();
        checkpoints.push({ items: taken, heapUsed: process.memoryUsage().heapUsed });
      }
      yield taken % 100;
    }
  }

  // The run happens in a function of its own: once it returns, nothing (not even a register
  // of this frame) holds the results, so the heap without them can be measured.
  const measured = async (): Promise<{ elapsedMs: number; withResults: number }> => {
    const started = performance.now();
    const results = await run(source());
    const elapsedMs = performance.now() - started;
    sample();
    if (results.length !== items) {
      throw new Error(`${library}: ${String(results.length)} results`);
    }
    collect();
    const withResults = process.memoryUsage().heapUsed;
    if (mode === "live") checkpoints.push({ items, heapUsed: withResults });
    return { elapsedMs, withResults };
  };

  // What a results array alone costs, at the same checkpoints.
  const measureReference = (): { items: number; bytes: number }[] => {
    collect();
    const before = process.memoryUsage().heapUsed;
    const array: number[] = [];
    const sizes: { items: number; bytes: number }[] = [];
    for (let index = 0; index < items; index++) {
      if (mode === "live" && index > 0 && index % checkpointEvery === 0) {
        collect();
        sizes.push({ items: index, bytes: process.memoryUsage().heapUsed - before });
      }
      array.push((index % 100) + 1);
    }
    collect();
    sizes.push({ items, bytes: process.memoryUsage().heapUsed - before });
    // Read the array after the last measurement, so that it is alive until then.
    if (array.length !== items) throw new Error("reference array");
    return sizes;
  };
  const reference = measureReference();

  collect();
  collect();
  const start = process.memoryUsage();
  const baseline = { heapUsed: start.heapUsed, rss: start.rss };
  const { elapsedMs, withResults } = await measured();
  collect();
  const withoutResults = process.memoryUsage().heapUsed;

  const report: MemoryReport = {
    library,
    items,
    concurrency,
    mode,
    baseline,
    peak,
    checkpoints,
    reference,
    resultsBytes: withResults - withoutResults,
    elapsedMs,
  };
  process.stdout.write(`${JSON.stringify(report)}\n`);
}

await main();
