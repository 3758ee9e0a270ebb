/**
 * The demo: a real, if small, batch job. It starts a local quote service that answers slowly
 * and fails some requests, then prices a few hundred order lines through a pipeline
 * (parse → fetch → transform → collect) with retries, timeouts and `mapSettled`, shows a live
 * progress line, and prints a summary. Ctrl-C cancels the batch through an AbortSignal, prints
 * what finished, and exits with code 130.
 *
 * With `--workers N` the same job runs through Redis (async-pipeline/bullmq): N worker
 * processes run the pipeline, this process enqueues the records and shows the same progress
 * and summary (demo/distributed.ts).
 *
 * With `--checkpoint FILE` the batch is resumable (async-pipeline/checkpoint): each finished
 * line is recorded in FILE, and after a Ctrl-C (or a crash) the same command again restores the
 * recorded lines, runs only the others, and ends with the summary of an uninterrupted run.
 *
 * Run: npm run demo (or npx tsx demo/main.ts --records 300 --concurrency 16 --seed 42);
 * npm run demo -- --help for the options.
 */
import { parseArgs } from "node:util";
import { fileCheckpoint, readCheckpoint, type FileCheckpoint } from "async-pipeline/checkpoint";
import { runDistributed } from "./distributed.js";
import { makePipeline, type PricedOrder } from "./pipeline.js";
import { makeRecords } from "./records.js";
import {
  ProgressLine,
  Tally,
  describeError,
  durationLines,
  failureReason,
  seconds,
  serverLine,
  tallyLines,
} from "./report.js";
import { startServer } from "./server.js";

/** The abort reason of a Ctrl-C. */
class Interrupted extends Error {
  override name = "Interrupted" as const;
}

function integerOption(name: string, value: string, min: number): number {
  const number = Number(value);
  if (!Number.isInteger(number) || number < min) {
    console.error(`--${name} must be an integer of at least ${String(min)}, got ${value}`);
    process.exit(2);
  }
  return number;
}

const HELP = `Usage: npm run demo -- [options]

Prices order lines through a local, flaky quote service with async-pipeline, with live
progress and a summary. Ctrl-C stops the batch cleanly (exit code 130).

Options:
  --records N       how many order lines to price (default 300)
  --concurrency N   how many run at once, over all workers (default 16)
  --seed N          the seed of the records and of the server's failures (default 42)
  --workers N       run through Redis with async-pipeline/bullmq on N worker processes
                    (default 0: in this process). Uses REDIS_URL when set, else starts a
                    local redis-server if one is installed.
  --checkpoint FILE record each finished line in FILE (async-pipeline/checkpoint): after a
                    Ctrl-C or a crash, the same command again runs the remaining lines only.
                    In this process only (not with --workers). Delete FILE to start over.
  --help            print this help and exit`;

let parsed;
try {
  parsed = parseArgs({
    options: {
      records: { type: "string", default: "300" },
      concurrency: { type: "string", default: "16" },
      seed: { type: "string", default: "42" },
      workers: { type: "string", default: "0" },
      checkpoint: { type: "string" },
      help: { type: "boolean", default: false },
    },
    strict: true,
    allowPositionals: false,
  });
} catch (error) {
  // One line, as command-line tools do: what was wrong, and where to look.
  const message = error instanceof Error ? error.message.split("\n")[0] : String(error);
  console.error(`demo: ${message ?? "bad arguments"} (see npm run demo -- --help)`);
  process.exit(2);
}
const args = parsed.values;
if (args.help) {
  console.log(HELP);
  process.exit(0);
}
const count = integerOption("records", args.records, 1);
const concurrency = integerOption("concurrency", args.concurrency, 1);
const seed = integerOption("seed", args.seed, 0);
const workers = integerOption("workers", args.workers, 0);
if (args.checkpoint !== undefined && workers > 0) {
  console.error("demo: --checkpoint runs the batch in this process, not with --workers");
  process.exit(2);
}
// Recorded failures are restored as they were (retryFailed: false below): a resumed run runs the
// lines that never finished, and only those.
const checkpoint: FileCheckpoint | undefined =
  args.checkpoint === undefined ? undefined : fileCheckpoint(args.checkpoint);

const server = await startServer(seed);
const records = makeRecords(count, seed);
const out = process.stdout;
// `npm run demo | head` closes the pipe early: stop quietly, as command-line tools do.
out.on("error", (error: NodeJS.ErrnoException) => {
  if (error.code !== "EPIPE") throw error;
  process.exit(0);
});
const log = (line = ""): void => {
  out.write(`${line}\n`);
};

const retries = new Tally();
const collected: PricedOrder[] = [];
const pipeline = makePipeline({
  baseUrl: server.url,
  onRetry: ({ error }) => {
    retries.add(describeError(error));
  },
  collect: (order) => collected.push(order),
});
const stageNames = pipeline.stages.map((stage) => stage.name);
const fetchStage = pipeline.stages.find((stage) => stage.name === "fetch");

log(
  `async-pipeline demo: ${String(count)} records, concurrency ${String(concurrency)}, seed ${String(seed)}` +
    (workers > 0 ? `, ${String(workers)} worker processes through Redis` : ""),
);
log(`pipeline: ${stageNames.join(" → ")}`);
log(`quote server at ${server.url}: 100–300 ms per answer, some 404, 500, 503 and hangs`);
if (fetchStage !== undefined) {
  log(
    `fetch: timeout ${String(fetchStage.timeout)} ms per attempt, ${String(fetchStage.retries)} ` +
      `retries, ${fetchStage.backoff} backoff from ${String(fetchStage.retryDelay)} ms` +
      (fetchStage.jitter ? " with jitter" : ""),
  );
}
if (checkpoint !== undefined) {
  let recorded;
  try {
    recorded = await readCheckpoint(checkpoint);
  } catch (error) {
    await server.close();
    console.error(`demo: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  }
  log(
    recorded.done === 0
      ? `checkpoint ${checkpoint.path}: nothing recorded yet; each finished line is recorded`
      : `checkpoint ${checkpoint.path}: ${String(recorded.done)} lines recorded by an earlier run ` +
          `are restored, not run` +
          (recorded.complete ? " (it completed: delete the file to start over)" : ""),
  );
}
log("press Ctrl-C to stop early");

// Ctrl-C aborts the batch: nothing new starts, in-flight requests are dropped through their
// `call.signal`, and mapSettled rejects with this reason. A second Ctrl-C (half a second later
// or more: a terminal may deliver the first one twice, through npm and tsx) exits at once.
const controller = new AbortController();
let interruptedAt: number | undefined;
const onSigint = (): void => {
  if (interruptedAt === undefined) {
    interruptedAt = performance.now();
    controller.abort(new Interrupted("interrupted by Ctrl-C (SIGINT)"));
  } else if (performance.now() - interruptedAt > 500) {
    process.stderr.write("\nforced exit\n");
    process.exit(130);
  }
};
process.on("SIGINT", onSigint);

const started = performance.now();
const progressLine = new ProgressLine(out, records.length, () => retries.total);
// A template context: every record's run gets a shallow copy of it, so they all share this one
// `timings` object, and timingMiddleware gathers every record's durations in one place.
const timings: Record<string, number[]> = {};

let settled: PromiseSettledResult<PricedOrder>[] | undefined;
try {
  if (workers > 0) {
    const result = await runDistributed({
      records,
      workers,
      concurrency,
      serverUrl: server.url,
      signal: controller.signal,
      retries,
      onProgress: (progress) => {
        progressLine.update(progress);
      },
      log: (line) => {
        progressLine.note(line);
      },
    });
    settled = result.settled;
    Object.assign(timings, result.timings);
    collected.push(...result.collected);
  } else {
    settled = await pipeline.mapSettled(records, concurrency, {
      signal: controller.signal,
      context: { timings },
      onProgress: (progress) => {
        progressLine.update(progress);
      },
      checkpoint,
      retryFailed: false,
    });
  }
} catch (error) {
  if (error !== controller.signal.reason) {
    progressLine.end();
    await server.close();
    console.error(`demo: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  }
} finally {
  process.off("SIGINT", onSigint);
  progressLine.end();
  // Closing drops the requests still pending (a cancelled batch leaves some), so the server's
  // counts are final once it has closed.
  await server.close();
}
const elapsed = seconds(performance.now() - started);

log();
if (settled === undefined) {
  const { done, failed } = progressLine.last;
  log(`interrupted after ${elapsed}: stopped cleanly`);
  log(
    `finished: ${String(done)} of ${String(records.length)} records ` +
      `(${String(done - failed)} succeeded, ${String(failed)} failed); ` +
      `the other ${String(records.length - done)} were cancelled or never started`,
  );
  log(`retries: ${String(retries.total)}`);
  for (const line of durationLines(timings, stageNames)) log(line);
  log(serverLine(server.stats));
  // Through Redis the outputs of an interrupted batch stay with the workers: count them.
  const outputs = workers > 0 ? done - failed : collected.length;
  log(`output: ${String(outputs)} priced orders collected before the interruption`);
  if (checkpoint !== undefined) {
    log(
      `checkpoint ${checkpoint.path} keeps the ${String(done)} finished lines: ` +
        `run the same command again to finish the other ${String(records.length - done)}`,
    );
  }
  process.exitCode = 130;
} else {
  const failures = new Tally();
  for (const entry of settled) {
    if (entry.status === "rejected") failures.add(failureReason(entry.reason));
  }
  // From the results, not from what the collect stage saw in this run: a resumed run's restored
  // lines count too.
  const orders = settled.flatMap((entry) => (entry.status === "fulfilled" ? [entry.value] : []));
  const totalEur = orders.reduce((sum, order) => sum + order.totalEur, 0);
  log(`summary: ${String(records.length)} records in ${elapsed}`);
  const restored = progressLine.last.restored ?? 0;
  if (restored > 0) log(`restored: ${String(restored)} from the checkpoint, not run again`);
  log(`succeeded: ${String(settled.length - failures.total)}`);
  log(`failed: ${String(failures.total)}, by reason:`);
  for (const line of tallyLines(failures)) log(line);
  log(`retries: ${String(retries.total)}, after:`);
  for (const line of tallyLines(retries)) log(line);
  for (const line of durationLines(timings, stageNames)) log(line);
  log(serverLine(server.stats));
  log(`output: ${String(orders.length)} priced orders, ${totalEur.toFixed(2)} EUR in all`);
}
