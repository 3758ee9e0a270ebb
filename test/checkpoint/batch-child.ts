/**
 * A whole checkpointed batch in a process of its own, for the crash tests (batch-crash.test.ts):
 * `batch-child.ts <form> <checkpoint | -> <results> <log> <count> <concurrency> <flushEvery>`.
 *
 * `form` is `map` (`mapSettled` over an array, identity by position) or `stream` (an ordered,
 * settled `stream` over an async generator, identity by `itemKey`); `-` as the checkpoint runs
 * the same batch without one (the uninterrupted reference). Each item does real asynchronous
 * work (a timer and a file read) and some fail, always the same ones. Recorded failures are
 * restored (`retryFailed: false`), so that an item that runs twice is one whose record was
 * lost.
 *
 * What it logs, one line each, so that the parent knows what a kill cut short (in the log
 * file, written with one `write` per line: what was written before a SIGKILL is there, which
 * a pipe's buffer does not promise; the lines that say where it is are printed too):
 * - `started`: the batch is about to start;
 * - `r <n>`: item n starts running; `d <n>`: item n finished (printed just before its stage
 *   returns, so before the batch records it);
 * - `w <done>`: the store's group timer has just written its group: every item of the first
 *   `done` `d` lines is in the file (a SIGKILL cannot lose what was written);
 * - `finished`, once the results are written to the results file (JSON, one entry per item).
 */
import { readFile } from "node:fs/promises";
import { openSync, writeFileSync, writeSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { fileCheckpoint } from "../../src/checkpoint/index.js";
import { Pipeline, Stage, StageExecutionError } from "../../src/index.js";

const [form, checkpointPath, resultsPath, logPath, countText, concurrencyText, flushText] =
  process.argv.slice(2);
if (
  (form !== "map" && form !== "stream") ||
  checkpointPath === undefined ||
  resultsPath === undefined ||
  logPath === undefined
) {
  throw new Error(
    "usage: batch-child.ts <map|stream> <checkpoint|-> <results> <log> <count> <concurrency> <flushEvery>",
  );
}
const count = Number(countText);
const concurrency = Number(concurrencyText);
const flushEvery = Number(flushText);

const log = openSync(logPath, "a");
const out = (line: string): void => {
  writeSync(log, `${line}\n`);
  if (!line.startsWith("r ") && !line.startsWith("d ")) process.stdout.write(`${line}\n`);
};

// Watch the store's group timer (the only timer of `flushEvery` ms): once its callback has
// run, the group is written.
let finishedItems = 0;
const setTimer = globalThis.setTimeout;
globalThis.setTimeout = ((callback: () => void, ms?: number) => {
  if (ms !== flushEvery) return setTimer(callback, ms);
  return setTimer(() => {
    callback();
    out(`w ${String(finishedItems)}`);
  }, ms);
}) as typeof setTimeout;

/** A failure with fields of its own, as an HTTP client's would be. */
class QuoteError extends Error {
  override name = "QuoteError" as const;
  constructor(
    readonly item: number,
    readonly status: number,
  ) {
    super(`no quote for ${String(item)}`);
  }
}

const thisFile = fileURLToPath(import.meta.url);

interface Item {
  readonly id: string;
  readonly n: number;
}

const pipeline = new Pipeline([
  new Stage("wait", async (item: Item) => {
    out(`r ${String(item.n)}`);
    await new Promise((resolve) => setTimeout(resolve, item.n % 3));
    return item;
  }),
  new Stage("price", async (item: Item) => {
    // Real I/O: read this very file, and derive the output from its size.
    const size = (await readFile(thisFile)).length;
    finishedItems++;
    out(`d ${String(item.n)}`);
    if (item.n % 101 === 7) throw new QuoteError(item.n, 500 + (item.n % 4));
    return { id: item.id, square: item.n * item.n, size: size > 0, tag: `t${String(item.n % 13)}` };
  }),
]);

const items: Item[] = Array.from({ length: count }, (_, n) => ({ id: `item-${String(n)}`, n }));

async function* slowly(): AsyncGenerator<Item> {
  for (const item of items) {
    if (item.n % 64 === 0) await new Promise((resolve) => setImmediate(resolve));
    yield item;
  }
}

/** A settled result as JSON: the output, or the failure's class, message, stage and fields. */
function entry(result: PromiseSettledResult<unknown>): unknown {
  if (result.status === "fulfilled") return { value: result.value };
  const failure = result.reason as StageExecutionError;
  const error = failure.originalError as QuoteError;
  return {
    stage: failure.stageName,
    attempts: failure.attempts,
    error: { name: error.name, message: error.message, status: error.status },
  };
}

const checkpoint =
  checkpointPath === "-" ? undefined : fileCheckpoint(checkpointPath, { flushEvery });
out("started");
let results: PromiseSettledResult<unknown>[];
if (form === "map") {
  results = await pipeline.mapSettled(items, concurrency, { checkpoint, retryFailed: false });
} else {
  results = [];
  for await (const result of pipeline.stream(slowly(), concurrency, {
    checkpoint,
    itemKey: (item) => item.id,
    retryFailed: false,
    settled: true,
  })) {
    results.push(result);
  }
}
writeFileSync(resultsPath, JSON.stringify(results.map(entry)));
out("finished");
