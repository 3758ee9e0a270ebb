/**
 * Crash tests of whole checkpointed batches: a batch of 20,000 items doing real asynchronous
 * work (a timer and a file read each) runs in a child process (batch-child.ts), is killed with
 * SIGKILL at a random moment, four times in a row on the same checkpoint, and then runs to its
 * end. After each kill the checkpoint loads cleanly and the next child takes the dead one's lock
 * over. In the end the results equal those of an uninterrupted run (one run without a checkpoint,
 * shared by both forms: both give every item's result in input order) exactly, and what ran twice
 * stays within the bound the README states: the items in flight at the kill, plus those that
 * finished after the last group was written (the unflushed group).
 *
 * Every wait has a deadline, and nothing depends on how fast the machine is: the kill comes at
 * a random moment after the child has written a group, and the bound is checked against what
 * the killed child logged it did, not against a clock. The moments come from a seed, printed
 * when the test fails (`CRASH_SEED=<seed>` replays the same moments).
 */
import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fileCheckpoint, readCheckpoint } from "../../src/checkpoint/index.js";
import { seeded, startChild, temporaryFolder, within } from "./support.js";

const COUNT = 20_000;
const CONCURRENCY = 32;
const KILLS = 4;
/** Per child: starting tsx under load, then running up to all 20,000 items. */
const CHILD_DEADLINE = 150_000;

let folder: ReturnType<typeof temporaryFolder>;
beforeAll(() => {
  folder = temporaryFolder();
});
afterAll(() => {
  folder.remove();
});

/** The results file of the uninterrupted run, without a checkpoint: run once, when first asked. */
let reference: Promise<string> | undefined;
function uninterrupted(): Promise<string> {
  reference ??= (async () => {
    const results = folder.file("reference.json");
    const { started } = await runToEnd(childArgs("map", "-", results, 1));
    expect(started.size).toBe(COUNT);
    return results;
  })();
  return reference;
}

/** What a child said it did: items started (`r`), finished (`d`, in order), groups written. */
interface Said {
  readonly started: Set<number>;
  readonly finished: number[];
  /** How many of `finished` had been written by the last group the child reported. */
  readonly written: number;
}

function said(log: string): Said {
  const started = new Set<number>();
  const finished: number[] = [];
  let written = 0;
  for (const line of readFileSync(log, "utf8").split("\n")) {
    const [kind, value] = line.split(" ");
    if (kind === "r") started.add(Number(value));
    else if (kind === "d") finished.push(Number(value));
    else if (kind === "w") written = Number(value);
  }
  return { started, finished, written };
}

/** The items a checkpoint file records, by input position (`i`) or by key (`k`, `item-<n>`). */
async function recordedItems(path: string): Promise<Set<number>> {
  const checkpoint = fileCheckpoint(path);
  const items = new Set<number>();
  try {
    let header = true;
    for (const record of checkpoint.load()) {
      if (header) {
        header = false;
        continue;
      }
      const { i, k } = record as { i?: number; k?: string };
      if (i !== undefined) items.add(i);
      else if (k !== undefined) items.add(Number(k.slice("item-".length)));
    }
  } finally {
    await checkpoint.close();
  }
  return items;
}

/** Each child's log file, a new one per child. */
let logs = 0;

function childArgs(form: string, checkpoint: string, results: string, flushEvery: number) {
  const log = folder.file(`child-${String(++logs)}.log`);
  return [form, checkpoint, results, log, String(COUNT), String(CONCURRENCY), String(flushEvery)];
}

/** Runs a child to its end; what it said it did. */
async function runToEnd(args: readonly string[]): Promise<Said> {
  const child = startChild("batch-child.ts", args);
  const { code, signal } = await within(child.exited, CHILD_DEADLINE, "a batch to its end");
  expect({ code, signal }, child.output().stderr).toEqual({ code: 0, signal: null });
  expect(child.output().stdout).toMatch(/^finished$/m);
  return said(args[3] as string);
}

// The two forms at once: their children mostly wait (timers, file reads), so they share the cores.
describe.concurrent.each([
  { form: "map", flushEvery: 41, what: "mapSettled over an array, identity by position" },
  { form: "stream", flushEvery: 23, what: "an ordered stream over a generator, by itemKey" },
])("a checkpointed batch killed with SIGKILL ($what)", ({ form, flushEvery }) => {
  it(
    "resumes each time, runs again only what the bound allows, and ends with an uninterrupted run's results",
    () =>
      seeded("test/checkpoint/batch-crash.test.ts", async (next) => {
        const path = folder.file(`${form}.ckpt`);
        const results = folder.file(`${form}-results.json`);

        let recorded = new Set<number>();
        let ranTwice = 0;
        let runs = 0;
        for (let kill = 0; kill < KILLS; kill++) {
          const args = childArgs(form, path, results, flushEvery);
          const child = startChild("batch-child.ts", args);
          try {
            // Kill it at a random moment once it has written a group (so that it made progress).
            await within(child.line("w "), CHILD_DEADLINE, "a child's first group");
            await new Promise((resolve) => setTimeout(resolve, next() * 400));
          } finally {
            child.process.kill("SIGKILL");
          }
          const { signal } = await within(child.exited, 30_000, "a killed child's exit");
          if (signal !== "SIGKILL") {
            // It finished before the kill: a fast machine. The checks below still hold.
            expect(child.output().stdout).toMatch(/^finished$/m);
          }
          const { started, finished, written } = said(args[3] as string);
          const now = await recordedItems(path);
          // Nothing recorded before is lost, and nothing recorded before ran again.
          for (const item of recorded) expect(now.has(item)).toBe(true);
          for (const item of started)
            expect(recorded.has(item), `item ${String(item)}`).toBe(false);
          // Nothing is recorded that did not run.
          for (const item of now) {
            if (!recorded.has(item)) expect(started.has(item), `item ${String(item)}`).toBe(true);
          }
          // Every item that finished before the last group was written is recorded.
          for (const item of finished.slice(0, written)) expect(now.has(item)).toBe(true);
          // What will run again: in flight at the kill, or in the unflushed group.
          const lost = [...started].filter((item) => !now.has(item));
          const inFlight = started.size - finished.length;
          expect(inFlight).toBeLessThanOrEqual(CONCURRENCY);
          expect(lost.length).toBeLessThanOrEqual(inFlight + (finished.length - written));
          ranTwice += lost.length;
          runs += started.size;
          recorded = now;
        }
        expect(recorded.size).toBeGreaterThan(0);

        // The last run, to the end: it runs exactly what is not recorded.
        const { started } = await runToEnd(childArgs(form, path, results, flushEvery));
        for (const item of started) expect(recorded.has(item)).toBe(false);
        expect(started.size).toBe(COUNT - recorded.size);
        runs += started.size;
        expect(runs).toBe(COUNT + ranTwice);

        expect(JSON.parse(readFileSync(results, "utf8"))).toEqual(
          JSON.parse(readFileSync(await uninterrupted(), "utf8")),
        );
        const report = await readCheckpoint(fileCheckpoint(path));
        expect(report.complete).toBe(true);
        expect(report.done).toBe(COUNT);
        expect(report.failed).toHaveLength(Math.ceil((COUNT - 7) / 101));
      }),
    KILLS * 60_000 + 2 * CHILD_DEADLINE,
  );
});
