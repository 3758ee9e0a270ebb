/**
 * Checkpoints: a batch that dies part-way resumes where it stopped. `checkpoint:
 * fileCheckpoint(path)` on `map` records each finished item in an append-only file; the same
 * batch run again restores the recorded items (they do not run) and runs the others only.
 * `readCheckpoint` says what a checkpoint holds; a changed pipeline is refused, never mixed in.
 *
 * The interruption here is an abort after 40 of 100 items (a crash, a deploy or a Ctrl-C does
 * the same: at most the items in flight and those of the last unflushed group run again).
 *
 * Run: npx tsx examples/checkpoint.ts
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setImmediate as nextTurn } from "node:timers/promises";
import { Pipeline, Stage } from "async-pipeline";
import { CheckpointMismatchError, fileCheckpoint, readCheckpoint } from "async-pipeline/checkpoint";

interface Line {
  readonly sku: string;
  readonly quantity: number;
}

const folder = mkdtempSync(join(tmpdir(), "checkpoint-example-"));
const path = join(folder, "prices.ckpt");
const lines: Line[] = Array.from({ length: 100 }, (_, n) => ({
  sku: `sku-${String(n)}`,
  quantity: 1 + (n % 5),
}));

let calls = 0;
// A stand-in for an API call: a turn of the event loop, and a price derived from the line.
const pricing = new Pipeline([
  new Stage("price", async (line: Line) => {
    calls++;
    await nextTurn();
    return { sku: line.sku, total: line.quantity * 250 };
  }),
]);

try {
  // The first run stops after 40 items.
  const controller = new AbortController();
  try {
    await pricing.map(lines, {
      concurrency: 8,
      checkpoint: fileCheckpoint(path),
      itemKey: (line) => line.sku,
      signal: controller.signal,
      onProgress: ({ done }) => {
        if (done >= 40) controller.abort(new Error("interrupted"));
      },
    });
  } catch (error) {
    console.log(`first run: ${(error as Error).message} after ${String(calls)} calls`);
  }
  const report = await readCheckpoint(fileCheckpoint(path));
  console.log(`recorded: ${String(report.done)} items, complete: ${String(report.complete)}`);

  // The same call again: the recorded items are restored, the others run.
  const before = calls;
  const prices = await pricing.map(lines, {
    concurrency: 8,
    checkpoint: fileCheckpoint(path),
    itemKey: (line) => line.sku,
    onProgress: ({ done, restored }) => {
      if (done === lines.length) console.log(`resumed: ${String(restored)} restored`);
    },
  });
  const ran = calls - before;
  console.log(`second run: ${String(ran)} calls, ${String(prices.length)} prices`);
  console.log(`only the unrecorded lines ran: ${String(report.done + ran === lines.length)}`);
  const total = prices.reduce((sum, price) => sum + price.total, 0);
  console.log(`total: ${String(total)}`);

  // A completed checkpoint returns its results without running anything.
  const again = await pricing.map(lines, {
    checkpoint: fileCheckpoint(path),
    itemKey: (line) => line.sku,
  });
  console.log(
    `third run: ${String(calls - before - ran)} calls, same results: ${String(JSON.stringify(again) === JSON.stringify(prices))}`,
  );

  // Another pipeline (other stage names) is refused before anything runs.
  const other = new Pipeline([new Stage("discount", (line: Line) => line.quantity)]);
  try {
    await other.map(lines, { checkpoint: fileCheckpoint(path), itemKey: (line) => line.sku });
  } catch (error) {
    if (!(error instanceof CheckpointMismatchError)) throw error;
    console.log(`another pipeline: CheckpointMismatchError (${error.mismatch})`);
  }
} finally {
  rmSync(folder, { recursive: true, force: true });
}
