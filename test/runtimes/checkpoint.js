/**
 * The runtime smoke suite of `async-pipeline/checkpoint`: the same checks of the built ESM
 * entry point (and of a checkpointed batch through the core's) in Node, Bun and Deno (not in browsers: a file checkpoint needs a file system).
 * Plain JavaScript that uses only what the three share: Node's `node:fs`, and the globals.
 * Each check works in its own file of the folder the host gives.
 */
import { readFileSync, statSync, writeFileSync } from "node:fs";
import { check, runChecks, same } from "./smoke.js";

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The error `run` throws or rejects with; throws when it does not. */
async function failure(run, what) {
  try {
    await run();
  } catch (error) {
    return error;
  }
  throw new Error(`${what}: expected a failure`);
}

const HEADER = {
  format: "async-pipeline/checkpoint",
  v: 1,
  stages: ["double"],
  identity: "position",
};
const FAILURE = { stageName: "double", attempts: 2, error: { name: "RangeError", message: "odd" } };

const checks = {
  async "open, append, flush, close, reopen and read"({ checkpoint, file }) {
    const { fileCheckpoint, readCheckpoint } = checkpoint;
    const path = file("round-trip.ckpt");
    const store = fileCheckpoint(path, { flushEvery: 20 });
    same([...store.load()], [], "a new checkpoint");
    store.append(HEADER);
    store.append({ i: 0, h: 1, o: "héllo €𝄞" });
    await store.flush();
    store.append({ i: 1, h: 2, e: FAILURE });
    store.append({ complete: true });
    await store.close();
    const again = fileCheckpoint(path);
    same(
      [...again.load()],
      [HEADER, { i: 0, h: 1, o: "héllo €𝄞" }, { i: 1, h: 2, e: FAILURE }, { complete: true }],
      "records after reopening",
    );
    await again.close();
    const report = await readCheckpoint(fileCheckpoint(path));
    same(
      report,
      {
        done: 2,
        failed: [
          {
            key: 1,
            error: { name: "RangeError", message: "odd", stageName: "double", attempts: 2 },
          },
        ],
        complete: true,
      },
      "readCheckpoint",
    );
  },

  async "records are written every flushEvery ms, without a flush"({ checkpoint, file }) {
    const path = file("timer.ckpt");
    const store = checkpoint.fileCheckpoint(path, { flushEvery: 20 });
    store.load();
    store.append(HEADER);
    for (let waited = 0; waited < 5_000; waited += 20) {
      await sleep(20);
      if (statSync(path, { throwIfNoEntry: false })?.size > 0) break;
    }
    check(statSync(path).size > 0, "the group was written by the timer");
    await store.close();
  },

  async "a torn last record is skipped, then cut off"({ checkpoint, file }) {
    const { fileCheckpoint } = checkpoint;
    const path = file("torn.ckpt");
    const store = fileCheckpoint(path);
    store.load();
    store.append(HEADER);
    await store.close();
    writeFileSync(path, `${readFileSync(path, "utf8")}1234abcd {"i":0,"h"`);
    const resumed = fileCheckpoint(path);
    same([...resumed.load()], [HEADER], "records before the torn one");
    resumed.append({ i: 0, h: 1, o: 2 });
    await resumed.close();
    const reread = fileCheckpoint(path);
    same([...reread.load()], [HEADER, { i: 0, h: 1, o: 2 }], "records after the cut");
    await reread.close();
  },

  async "a changed byte is reported with the path and the offset"({ checkpoint, file }) {
    const { fileCheckpoint, CheckpointCorruptError } = checkpoint;
    const path = file("damaged.ckpt");
    const store = fileCheckpoint(path);
    store.load();
    store.append(HEADER);
    store.append({ i: 0, h: 1, o: 10 });
    await store.close();
    const text = readFileSync(path, "utf8");
    const offset = text.indexOf("\n") + 1;
    writeFileSync(path, text.replace('"o":10', '"o":90'));
    const error = await failure(() => [...fileCheckpoint(path).load()], "load");
    check(error instanceof CheckpointCorruptError, `a CheckpointCorruptError, got ${error}`);
    same([error.path, error.offset, error.record], [path, offset, 1], "path, offset, record");
  },

  async "a checkpointed map, interrupted, resumes and runs the rest only"({
    checkpoint,
    core,
    file,
  }) {
    const { fileCheckpoint, readCheckpoint } = checkpoint;
    const { Pipeline, Stage } = core;
    const path = file("batch.ckpt");
    const ran = [];
    const pipeline = new Pipeline([
      new Stage("double", async (n) => {
        ran.push(n);
        await sleep(1);
        return n * 2;
      }),
    ]);
    const items = Array.from({ length: 30 }, (_, n) => n);
    const controller = new AbortController();
    const reason = new Error("interrupted");
    const error = await failure(
      () =>
        pipeline.map(items, {
          concurrency: 4,
          checkpoint: fileCheckpoint(path, { flushEvery: 5 }),
          signal: controller.signal,
          onProgress: ({ done }) => {
            if (done >= 10) controller.abort(reason);
          },
        }),
      "an interrupted map",
    );
    same(error, reason, "the abort's reason");
    const recorded = (await readCheckpoint(fileCheckpoint(path))).done;
    check(recorded >= 10 && recorded < 30, `10 to 29 items recorded, got ${recorded}`);
    ran.length = 0;
    const results = await pipeline.map(items, {
      concurrency: 4,
      checkpoint: fileCheckpoint(path),
    });
    same(
      results,
      items.map((n) => n * 2),
      "the results of an uninterrupted run",
    );
    same(ran.length, 30 - recorded, "items run on resume");
    same(
      await readCheckpoint(fileCheckpoint(path)),
      { done: 30, failed: [], complete: true },
      "the report",
    );
  },

  async "a checkpoint in use is refused; a dead holder's lock is taken over"({ checkpoint, file }) {
    const { fileCheckpoint, CheckpointInUseError } = checkpoint;
    const path = file("locked.ckpt");
    const first = fileCheckpoint(path);
    first.load();
    const error = await failure(() => fileCheckpoint(path).load(), "second open");
    check(error instanceof CheckpointInUseError, `a CheckpointInUseError, got ${error}`);
    const holder = JSON.parse(readFileSync(`${path}.lock`, "utf8"));
    await first.close();
    // Above any Linux pid_max: a process that cannot exist.
    writeFileSync(`${path}.lock`, JSON.stringify({ ...holder, pid: 2_147_483_646, token: "dead" }));
    const taker = fileCheckpoint(path);
    taker.load();
    check(
      JSON.parse(readFileSync(`${path}.lock`, "utf8")).token !== "dead",
      "the lock was taken over",
    );
    await taker.close();
  },
};

/** The names of every check, in the order `runCheckpointSmoke` runs them. */
export const checkpointCheckNames = Object.keys(checks);

/**
 * Runs every check against the built checkpoint module and core entry point, with files in
 * `folder` (a path ending without a separator). Resolves to one `{ name, ok, error? }` per
 * check; never rejects.
 */
export function runCheckpointSmoke(checkpoint, core, folder) {
  return runChecks(checks, { checkpoint, core, file: (name) => `${folder}/${name}` });
}
