/**
 * Checkpoints end to end: `map`, `mapSettled` and `stream` given the `checkpoint` option, against
 * the file store and a custom store (in memory, answering at once or through promises). Each
 * rule of the contract (API.md, "Checkpoints: durable batches on one machine") is pinned here;
 * the crash tests (batch-crash.test.ts) kill whole batches in child processes.
 */
import { appendFileSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  CheckpointCorruptError,
  CheckpointInUseError,
  CheckpointMismatchError,
  fileCheckpoint,
  readCheckpoint,
} from "../../src/checkpoint/index.js";
import {
  adaptiveConcurrency,
  Pipeline,
  Stage,
  StageExecutionError,
  type CheckpointStore,
  type Progress,
} from "../../src/index.js";
import { gaugeOf } from "../../src/internal/limits.js";
import { rejectionOf } from "../support/promises.js";
import {
  MemoryStore,
  recordsIn,
  startChild,
  temporaryFolder,
  within,
  type Timing,
} from "./support.js";

let folder: ReturnType<typeof temporaryFolder>;
beforeEach(() => {
  folder = temporaryFolder();
});
afterEach(() => {
  folder.remove();
});

/** A one-stage pipeline ("double") that logs the items it runs; `fails` items throw. */
function doubler(fails: (n: number) => boolean = () => false) {
  const ran: number[] = [];
  const pipeline = new Pipeline([
    new Stage("double", async (n: number) => {
      ran.push(n);
      await new Promise((resolve) => setImmediate(resolve));
      if (fails(n)) throw new RangeError(`no ${String(n)}`);
      return n * 2;
    }),
  ]);
  return { pipeline, ran };
}

const range = (count: number, from = 0): number[] =>
  Array.from({ length: count }, (_, index) => from + index);

function* generate<T>(items: readonly T[], closed?: { value: boolean }): Generator<T> {
  try {
    yield* items;
  } finally {
    if (closed !== undefined) closed.value = true;
  }
}

async function* generateAsync<T>(items: readonly T[]): AsyncGenerator<T> {
  for (const item of items) {
    await Promise.resolve();
    yield item;
  }
}

/** Settled results as plain values: outputs, or `"✗ message"` (the stage's error's) for failures. */
function outcomes(results: readonly PromiseSettledResult<unknown>[]): unknown[] {
  return results.map((result) => {
    if (result.status === "fulfilled") return result.value;
    const reason = result.reason as Error;
    const error = reason instanceof StageExecutionError ? reason.originalError : reason;
    return `✗ ${(error as Error).message}`;
  });
}

/** Reads a whole stream. */
async function read<T>(stream: AsyncIterable<T>): Promise<T[]> {
  const values: T[] = [];
  for await (const value of stream) values.push(value);
  return values;
}

/**
 * Runs `map` over `items` on `store` and aborts it once `count` items have settled: the batch
 * rejects with the abort's reason, leaving `count` (or a few more) items recorded.
 */
async function interruptAfter(
  pipeline: Pipeline<number, number>,
  items: readonly number[],
  store: CheckpointStore,
  count: number,
  concurrency = 4,
): Promise<void> {
  const controller = new AbortController();
  const reason = new Error("interrupted");
  const error = await rejectionOf(
    pipeline.mapSettled(items, concurrency, {
      checkpoint: store,
      signal: controller.signal,
      onProgress: ({ done }) => {
        if (done >= count) controller.abort(reason);
      },
    }),
  );
  expect(error).toBe(reason);
}

describe.each(["sync", "async"] as const)(
  "checkpointed batches on a custom %s store",
  (timing: Timing) => {
    it("map: a resumed batch restores what is recorded and runs the rest; results as an uninterrupted run", async () => {
      const store = new MemoryStore(timing);
      const first = doubler();
      await interruptAfter(first.pipeline, range(40), store, 10);
      const recorded = (await readCheckpoint(store)).done;
      expect(recorded).toBeGreaterThanOrEqual(10);
      expect(recorded).toBeLessThan(40);

      const second = doubler();
      const results = await second.pipeline.map(range(40), 4, { checkpoint: store });
      expect(results).toEqual(range(40).map((n) => n * 2));
      // Exactly the items that were not recorded ran again: each item ran once or twice in all.
      expect(second.ran).toHaveLength(40 - recorded);
      expect(new Set([...first.ran, ...second.ran])).toEqual(new Set(range(40)));
      expect(await readCheckpoint(store)).toEqual({ done: 40, failed: [], complete: true });
    });

    it("stream: resumed, ordered, yields every output in input order, recorded or run", async () => {
      const store = new MemoryStore(timing);
      const first = doubler();
      await interruptAfter(first.pipeline, range(60), store, 25, 8);
      const second = doubler();
      const outputs = await read(second.pipeline.stream(range(60), 3, { checkpoint: store }));
      expect(outputs).toEqual(range(60).map((n) => n * 2));
      expect(second.ran.length).toBeLessThan(60);
      // A store read lazily: once for what is recorded, once for the outputs, in step.
      expect(store.loads).toBe(3);
    });

    it("stream, unordered and settled: every result once, recorded failures restored as failures", async () => {
      const store = new MemoryStore(timing);
      const fails = (n: number): boolean => n % 7 === 3;
      const first = doubler(fails);
      await interruptAfter(first.pipeline, range(30), store, 15);
      const recordedFailures = (await readCheckpoint(store)).failed.map(({ key }) => key);
      expect(recordedFailures.length).toBeGreaterThan(0);
      const second = doubler(fails);
      const entries = await read(
        second.pipeline.stream(range(30), 4, {
          checkpoint: store,
          ordered: false,
          settled: true,
          retryFailed: false,
        }),
      );
      const byValue = new Map(entries.map((entry, at) => [outcomes([entry])[0], at]));
      expect(entries).toHaveLength(30);
      expect(new Set(byValue.keys())).toEqual(
        new Set(range(30).map((n) => (fails(n) ? `✗ no ${String(n)}` : n * 2))),
      );
      // The recorded failures did not run again.
      for (const n of recordedFailures) expect(second.ran).not.toContain(n);
    });
  },
);

describe("what a completed checkpoint gives", () => {
  it("returns the recorded results without running anything but the recorded failures", async () => {
    const path = folder.file("c.ckpt");
    const fails = (n: number): boolean => n === 3 || n === 8;
    const first = doubler(fails);
    const settled = await first.pipeline.mapSettled(range(10), 3, {
      checkpoint: fileCheckpoint(path),
    });
    expect(outcomes(settled)).toEqual(
      range(10).map((n) => (fails(n) ? `✗ no ${String(n)}` : n * 2)),
    );
    const report = await readCheckpoint(fileCheckpoint(path));
    expect(report.complete).toBe(true);
    expect(report.failed.map(({ key }) => key)).toEqual([3, 8]);

    // Again: only the two recorded failures run (and fail again, so are recorded again).
    const again = doubler(fails);
    const replayed = await again.pipeline.mapSettled(range(10), 3, {
      checkpoint: fileCheckpoint(path),
    });
    expect(outcomes(replayed)).toEqual(outcomes(settled));
    expect(again.ran.sort()).toEqual([3, 8]);

    // retryFailed: false runs nothing at all, and gives the recorded failures back.
    const none = doubler(fails);
    const restored = await none.pipeline.mapSettled(range(10), 3, {
      checkpoint: fileCheckpoint(path),
      retryFailed: false,
    });
    expect(none.ran).toEqual([]);
    expect(outcomes(restored)).toEqual(outcomes(settled));
    const reason = (restored[3] as PromiseRejectedResult).reason as StageExecutionError;
    expect(reason).toBeInstanceOf(StageExecutionError);
    expect(reason.stageName).toBe("double");
    expect(reason.attempts).toBe(1);
    expect(reason.originalError).toBeInstanceOf(RangeError);
    expect((reason.originalError as Error).message).toBe("no 3");

    // A recorded failure that now succeeds is recorded after the old one.
    const fixed = doubler();
    expect(await fixed.pipeline.map(range(10), 3, { checkpoint: fileCheckpoint(path) })).toEqual(
      range(10).map((n) => n * 2),
    );
    expect(fixed.ran.sort()).toEqual([3, 8]);
    expect(await readCheckpoint(fileCheckpoint(path))).toEqual({
      done: 10,
      failed: [],
      complete: true,
    });
  });

  it("retryFailed: false makes map reject with the recorded failure, running nothing after it", async () => {
    const store = new MemoryStore();
    const first = doubler((n) => n === 2);
    await first.pipeline.mapSettled(range(6), 1, { checkpoint: store });
    const second = doubler();
    const error = await rejectionOf(
      second.pipeline.map(range(6), 1, { checkpoint: store, retryFailed: false }),
    );
    expect(error).toBeInstanceOf(StageExecutionError);
    expect((error as StageExecutionError).originalError).toEqual(new RangeError("no 2"));
    expect(second.ran).toEqual([]);
    // A map that failed did not complete: the completion marker is not written again.
    expect(store.calls.at(-1)).toBe("close");
  });

  it("clearOnSuccess deletes the file when a batch completes, not when it fails", async () => {
    const path = folder.file("c.ckpt");
    const failing = doubler((n) => n === 5);
    await rejectionOf(
      failing.pipeline.map(range(8), 2, {
        checkpoint: fileCheckpoint(path, { clearOnSuccess: true }),
      }),
    );
    expect(existsSync(path)).toBe(true);
    // mapSettled completes, failures and all: the file goes.
    const settled = doubler((n) => n === 5);
    const results = await settled.pipeline.mapSettled(range(8), 2, {
      checkpoint: fileCheckpoint(path, { clearOnSuccess: true }),
    });
    expect(outcomes(results)[5]).toBe("✗ no 5");
    expect(existsSync(path)).toBe(false);
    expect(existsSync(`${path}.lock`)).toBe(false);
    // So the next batch starts from nothing.
    const next = doubler();
    await next.pipeline.map(range(8), 2, { checkpoint: fileCheckpoint(path) });
    expect(next.ran).toHaveLength(8);
  });
});

describe("mismatches are found before anything runs, and leave the checkpoint as it was", () => {
  /** A completed checkpoint of `pipeline` over 0…5 in a file; returns its path and bytes. */
  async function recorded(options: { version?: string; itemKey?: (n: number) => string } = {}) {
    const path = folder.file("c.ckpt");
    await doubler().pipeline.map(range(6), 2, { checkpoint: fileCheckpoint(path), ...options });
    return { path, bytes: readFileSync(path) };
  }

  it("another pipeline (stage names)", async () => {
    const { path, bytes } = await recorded();
    let ran = 0;
    const other = new Pipeline([
      new Stage("triple", (n: number) => {
        ran++;
        return n * 3;
      }),
    ]);
    const error = await rejectionOf(other.map(range(6), { checkpoint: fileCheckpoint(path) }));
    expect(error).toBeInstanceOf(CheckpointMismatchError);
    expect(error).toMatchObject({ mismatch: "stages", recorded: ["double"], current: ["triple"] });
    expect(ran).toBe(0);
    expect(readFileSync(path)).toEqual(bytes);
    expect(existsSync(`${path}.lock`)).toBe(false);
  });

  it("another version (absent equals absent only)", async () => {
    const { path, bytes } = await recorded({ version: "1" });
    const { pipeline, ran } = doubler();
    for (const version of ["2", undefined]) {
      const error = await rejectionOf(
        pipeline.mapSettled(range(6), { checkpoint: fileCheckpoint(path), version }),
      );
      expect(error).toMatchObject({ name: "CheckpointMismatchError", mismatch: "version" });
    }
    expect(ran).toEqual([]);
    expect(readFileSync(path)).toEqual(bytes);
    // The same version resumes (here: a completed checkpoint, so nothing runs).
    expect(
      await pipeline.map(range(6), { checkpoint: fileCheckpoint(path), version: "1" }),
    ).toEqual(range(6).map((n) => n * 2));
    expect(ran).toEqual([]);
  });

  it("another input at a recorded position, an input that ends too soon, another identity", async () => {
    const { path, bytes } = await recorded();
    const { pipeline, ran } = doubler();
    const changed = [0, 1, 2, 99, 4, 5];
    const error = await rejectionOf(pipeline.map(changed, { checkpoint: fileCheckpoint(path) }));
    expect(error).toMatchObject({ name: "CheckpointMismatchError", mismatch: "input", index: 3 });
    // Read ahead from a generator, which is closed.
    const closed = { value: false };
    const fromGenerator = await rejectionOf(
      pipeline.stream(generate(changed, closed), { checkpoint: fileCheckpoint(path) }).next(),
    );
    expect(fromGenerator).toMatchObject({ mismatch: "input", index: 3 });
    expect(closed.value).toBe(true);
    const shorter = await rejectionOf(
      pipeline.mapSettled(generateAsync(range(4)), { checkpoint: fileCheckpoint(path) }),
    );
    expect(shorter).toMatchObject({ mismatch: "input", index: 4 });
    const keyed = await rejectionOf(
      pipeline.map(range(6), { checkpoint: fileCheckpoint(path), itemKey: String }),
    );
    expect(keyed).toMatchObject({ mismatch: "identity", recorded: "position", current: "key" });
    expect(ran).toEqual([]);
    expect(readFileSync(path)).toEqual(bytes);
    // A longer input runs its extra items only.
    expect(await pipeline.map(range(8), { checkpoint: fileCheckpoint(path) })).toEqual(
      range(8).map((n) => n * 2),
    );
    expect(ran.sort()).toEqual([6, 7]);
  });
});

describe("torn and damaged files", () => {
  /** A checkpoint of 0…19 in a file, interrupted part-way; its path and what it records. */
  async function partial() {
    const path = folder.file("c.ckpt");
    await interruptAfter(doubler().pipeline, range(20), fileCheckpoint(path), 8);
    return { path, recorded: (await readCheckpoint(fileCheckpoint(path))).done };
  }

  it("a torn last record (a crash mid-write) is ignored by map, and cut off before the resumed batch appends", async () => {
    const { path, recorded } = await partial();
    const whole = readFileSync(path, "utf8");
    const lastLine = whole.slice(whole.lastIndexOf("\n", whole.length - 2) + 1);
    // Half of a copy of the last record, without its newline.
    appendFileSync(path, lastLine.slice(0, Math.floor(lastLine.length / 2)));
    const { pipeline, ran } = doubler();
    expect(await pipeline.map(range(20), 3, { checkpoint: fileCheckpoint(path) })).toEqual(
      range(20).map((n) => n * 2),
    );
    expect(ran).toHaveLength(20 - recorded);
    // The file is whole again: every line is a record, and it reads cleanly.
    expect(readFileSync(path, "utf8").startsWith(whole)).toBe(true);
    expect(readFileSync(path, "utf8").endsWith("\n")).toBe(true);
    expect(await readCheckpoint(fileCheckpoint(path))).toEqual({
      done: 20,
      failed: [],
      complete: true,
    });
  });

  it("a torn last record is ignored by a resumed stream too, which yields in order", async () => {
    const { path, recorded } = await partial();
    appendFileSync(path, '0badc0de {"i":');
    const { pipeline, ran } = doubler();
    expect(await read(pipeline.stream(range(20), 2, { checkpoint: fileCheckpoint(path) }))).toEqual(
      range(20).map((n) => n * 2),
    );
    expect(ran).toHaveLength(20 - recorded);
    expect((await readCheckpoint(fileCheckpoint(path))).complete).toBe(true);
  });

  it("a changed byte inside a record rejects map, mapSettled and stream before anything runs, naming the file and offset", async () => {
    const { path } = await partial();
    const bytes = readFileSync(path);
    // The second record (the first item's): change one digit of its output.
    const second = bytes.indexOf(0x0a) + 1;
    const at = bytes.indexOf(Buffer.from('"o":'), second) + 4;
    const damaged = Buffer.from(bytes);
    damaged[at] = damaged[at] === 0x31 ? 0x32 : 0x31;
    writeFileSync(path, damaged);
    const { pipeline, ran } = doubler();
    const errors = [
      await rejectionOf(pipeline.map(range(20), { checkpoint: fileCheckpoint(path) })),
      await rejectionOf(pipeline.mapSettled(range(20), { checkpoint: fileCheckpoint(path) })),
      await rejectionOf(read(pipeline.stream(range(20), { checkpoint: fileCheckpoint(path) }))),
    ];
    for (const error of errors) {
      expect(error).toBeInstanceOf(CheckpointCorruptError);
      expect(error).toMatchObject({ path, offset: second, record: 1 });
    }
    expect(ran).toEqual([]);
    expect(readFileSync(path)).toEqual(damaged);
    expect(existsSync(`${path}.lock`)).toBe(false);
  });
});

describe("itemKey", () => {
  it("identifies items whatever their order: a reordered, filtered, extended input resumes", async () => {
    const store = new MemoryStore();
    const first = doubler();
    await interruptAfter(first.pipeline, range(20), store, 8);
    const recorded = (await readCheckpoint(store)).done;
    // The records of that run are by position: start a keyed checkpoint instead.
    const keyedStore = new MemoryStore();
    const keyed = doubler();
    const itemKey = (n: number): string => `item-${String(n)}`;
    await keyed.pipeline.map(range(10), { checkpoint: keyedStore, itemKey });
    expect(recorded).toBeGreaterThan(0);
    const reordered = [...range(10, 5).reverse(), 3, 1]; // 14…5, then 3 and 1; 0, 2, 4 dropped
    const resumed = doubler();
    const results = await resumed.pipeline.map(reordered, { checkpoint: keyedStore, itemKey });
    expect(results).toEqual(reordered.map((n) => n * 2));
    expect(resumed.ran.sort((a, b) => a - b)).toEqual(range(5, 10));
  });

  it("a duplicate key rejects map and mapSettled alike, naming both indexes; the checkpoint stays usable", async () => {
    const store = new MemoryStore();
    const items = [10, 11, 12, 11, 13];
    const itemKey = (n: number): number => n;
    for (const form of ["map", "mapSettled"] as const) {
      const { pipeline } = doubler();
      const error = await rejectionOf(pipeline[form](items, 1, { checkpoint: store, itemKey }));
      expect(error).toEqual(
        new TypeError(
          "itemKey returned 11 for the items at indexes 1 and 3: keys must be unique within a batch",
        ),
      );
      expect(store.open).toBe(false);
    }
    // The items before the duplicate were recorded and are not run again.
    const { pipeline, ran } = doubler();
    expect(await pipeline.map([10, 11, 12, 13], 1, { checkpoint: store, itemKey })).toEqual([
      20, 22, 24, 26,
    ]);
    expect(ran).toEqual([13]);
  });

  it("keeps the keys of items that wait for their perKey place, and restored items take no place", async () => {
    const store = new MemoryStore();
    const itemKey = (n: number): string => `k${String(n)}`;
    const perKey = { key: (n: number) => n % 2, concurrency: 1 };
    const first = doubler();
    await first.pipeline.map(range(6), 4, { checkpoint: store, itemKey, perKey });
    expect(
      store.values
        .slice(1, -1)
        .map((record) => (record as { k: string }).k)
        .sort(),
    ).toEqual(range(6).map(itemKey).sort());
    const second = doubler();
    expect(await second.pipeline.map(range(10), 4, { checkpoint: store, itemKey, perKey })).toEqual(
      range(10).map((n) => n * 2),
    );
    expect(second.ran.sort()).toEqual([6, 7, 8, 9]);
  });

  it("resumes a stream under an adaptive concurrency: recorded outputs read lazily, every place given back", async () => {
    // Its workers keep their places from item to item; one that waits for a recorded output to
    // be read gives its place back meanwhile, and takes one again for what comes next.
    const limit = adaptiveConcurrency({ min: 3, max: 3 });
    const store = new MemoryStore();
    await doubler().pipeline.map(range(40), 4, { checkpoint: store });
    const second = doubler();
    const outputs = await read(second.pipeline.stream(range(60), limit, { checkpoint: store }));
    expect(outputs).toEqual(range(60).map((n) => n * 2));
    expect(second.ran).toEqual(range(20, 40));
    expect(limit[gaugeOf](false, undefined).inFlight).toBe(0);
  });

  it("keeps the keys of items that wait for a place under an adaptive concurrency two batches share", async () => {
    // Two batches on one limit of 2: items taken when the other batch holds the places wait
    // for one, and must be recorded under their own keys when they run.
    const shared = adaptiveConcurrency({ min: 2, max: 2 });
    const stores = [new MemoryStore(), new MemoryStore()];
    const itemKey = (n: number): string => `k${String(n)}`;
    const inputs = [range(12), range(12, 100)];
    const runs = inputs.map((items, batch) =>
      // An async input: between a pull and its item, the other batch may take the place.
      doubler().pipeline.map(generateAsync(items), shared, {
        checkpoint: stores[batch] as MemoryStore,
        itemKey,
      }),
    );
    const results = await Promise.all(runs);
    results.forEach((outputs, batch) => {
      const items = inputs[batch] as number[];
      expect(outputs).toEqual(items.map((n) => n * 2));
      const recorded = (stores[batch] as MemoryStore).values
        .slice(1, -1)
        .map((record) => (record as { k: string }).k);
      expect(recorded.sort()).toEqual(items.map(itemKey).sort());
    });
    // Resumed: everything is restored, nothing runs again.
    const again = doubler();
    expect(
      await again.pipeline.map(inputs[0] as number[], shared, {
        checkpoint: stores[0] as MemoryStore,
        itemKey,
      }),
    ).toEqual((inputs[0] as number[]).map((n) => n * 2));
    expect(again.ran).toEqual([]);
  });
});

describe("the store's life: opened before anything runs, closed last on every ending", () => {
  /** Runs `batch` on a fresh store and checks that `close` came last, before it settled. */
  async function closedLast(
    batch: (store: MemoryStore) => Promise<unknown>,
    store = new MemoryStore("async"),
  ): Promise<MemoryStore> {
    let openWhenSettled: boolean | undefined;
    await batch(store).then(
      () => {
        openWhenSettled = store.open;
      },
      () => {
        openWhenSettled = store.open;
      },
    );
    expect(openWhenSettled).toBe(false);
    expect(store.calls.at(-1)).toBe("close");
    expect(store.calls.filter((call) => call === "close")).toHaveLength(1);
    return store;
  }

  it("success, fail-fast, abort, a bad output, a store that fails", async () => {
    const { pipeline } = doubler((n) => n === 3);
    const success = await closedLast((store) =>
      pipeline.mapSettled(range(5), { checkpoint: store }),
    );
    expect(success.calls.slice(-2)).toEqual(["flush", "close"]);
    await closedLast((store) => pipeline.map(range(5), 1, { checkpoint: store }));
    await closedLast((store) =>
      pipeline.map(range(5), { checkpoint: store, signal: AbortSignal.abort() }),
    );
    const controller = new AbortController();
    await closedLast((store) => {
      const batch = pipeline.mapSettled(range(50), 2, {
        checkpoint: store,
        signal: controller.signal,
      });
      setImmediate(() => {
        controller.abort();
      });
      return batch;
    });
    const badOutput = new Pipeline([new Stage("date", (n: number) => new Date(n))]);
    const error = await rejectionOf(badOutput.map([0], { checkpoint: new MemoryStore() }));
    expect(error).toBeInstanceOf(TypeError);
    expect((error as Error).message).toMatch(/^The output of the item at index 0 is not JSON-safe/);
    const failing = new MemoryStore("async");
    failing.failAppend = new Error("disk full");
    await closedLast((store) => pipeline.map(range(5), { checkpoint: store }), failing);
  });

  it("stream: read to its end, failed, left early (break and return()), aborted, left while opening", async () => {
    const { pipeline } = doubler((n) => n === 30);
    await closedLast((store) => read(pipeline.stream(range(10), { checkpoint: store })));
    await closedLast((store) => read(pipeline.stream(range(40), { checkpoint: store })));
    await closedLast(async (store) => {
      for await (const value of pipeline.stream(range(40), 2, { checkpoint: store })) {
        if (value === 4) break;
      }
    });
    await closedLast(async (store) => {
      const stream = pipeline.stream(range(40), 2, { checkpoint: store });
      await stream.next();
      await stream.return();
    });
    const controller = new AbortController();
    await closedLast(async (store) => {
      const stream = pipeline.stream(range(40), 2, {
        checkpoint: store,
        signal: controller.signal,
      });
      await stream.next();
      controller.abort(new Error("cancelled"));
      await stream.next();
    });
    // return() while the journal is still opening: nothing runs, and return() waits for the close.
    const { pipeline: idle, ran } = doubler();
    await closedLast(async (store) => {
      const stream = idle.stream(range(10), { checkpoint: store });
      const first = stream.next();
      await stream.return();
      await first;
    });
    expect(ran).toEqual([]);
  });

  it("abort, fail-fast and return() leave a checkpoint that opens at once and resumes", async () => {
    const path = folder.file("c.ckpt");
    const { pipeline, ran } = doubler((n) => n === 12 && ran.filter((m) => m === 12).length === 1);
    // fail-fast: the retry opens the same checkpoint at once.
    const error = await rejectionOf(
      pipeline.map(range(20), 2, { checkpoint: fileCheckpoint(path) }),
    );
    expect(error).toBeInstanceOf(StageExecutionError);
    // return() of a stream part-way.
    const stream = pipeline.stream(range(20), 2, { checkpoint: fileCheckpoint(path) });
    await stream.next();
    await stream.return();
    // abort.
    await rejectionOf(
      pipeline.map(range(20), 2, { checkpoint: fileCheckpoint(path), signal: AbortSignal.abort() }),
    );
    expect(await pipeline.map(range(20), 2, { checkpoint: fileCheckpoint(path) })).toEqual(
      range(20).map((n) => n * 2),
    );
    // Every item ran, 12 twice (it failed once), and no other item more than it had to.
    expect(new Set(ran)).toEqual(new Set(range(20)));
    expect(recordsIn(path).at(-1)).toEqual({ complete: true });
  });

  it("a retry loop reopens the checkpoint at once after each failure", async () => {
    const path = folder.file("c.ckpt");
    let attempts = 0;
    const flaky = new Pipeline([
      new Stage("double", (n: number) => {
        // Each attempt of the batch fails at its tenth item.
        if (++attempts % 10 === 0) throw new Error("transient");
        return n * 2;
      }),
    ]);
    let results: number[] | undefined;
    for (let batch = 0; results === undefined; batch++) {
      expect(batch).toBeLessThan(20);
      try {
        results = await flaky.map(range(50), 1, { checkpoint: fileCheckpoint(path) });
      } catch (error) {
        expect((error as StageExecutionError).stageName).toBe("double");
      }
    }
    expect(results).toEqual(range(50).map((n) => n * 2));
    // 50 items and one failure per ten attempts: about 55 attempts, never a restart from zero.
    expect(attempts).toBeLessThan(60);
  });
});

describe("one batch per checkpoint at a time", () => {
  it("a second batch of this process on the same checkpoint gets CheckpointInUseError", async () => {
    const path = folder.file("c.ckpt");
    const { pipeline, ran } = doubler();
    let release: () => void = () => undefined;
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    const slow = new Pipeline([new Stage("double", async (n: number) => (await held, n * 2))]);
    const first = slow.map(range(3), { checkpoint: fileCheckpoint(path) });
    await new Promise((resolve) => setImmediate(resolve));
    // Other store objects on the same file are refused (the lock), so is the same store object.
    const store = fileCheckpoint(path);
    for (const checkpoint of [store, fileCheckpoint(path)]) {
      const error = await rejectionOf(pipeline.mapSettled(range(3), { checkpoint }));
      expect(error).toBeInstanceOf(CheckpointInUseError);
    }
    const memory = new MemoryStore();
    const busy = slow.map(range(3), { checkpoint: memory });
    const sameStore = await rejectionOf(pipeline.map(range(3), { checkpoint: memory }));
    expect(sameStore).toBeInstanceOf(CheckpointInUseError);
    expect(ran).toEqual([]);
    release();
    expect(await first).toEqual([0, 2, 4]);
    expect(await busy).toEqual([0, 2, 4]);
    // Released: the checkpoint opens again.
    expect(await pipeline.map(range(3), { checkpoint: store })).toEqual([0, 2, 4]);
  });

  it("a batch on a checkpoint another process holds rejects before anything runs", async () => {
    const path = folder.file("c.ckpt");
    const holder = startChild("holder.ts", [path]);
    try {
      await within(holder.line("holding "), 30_000, "the holder's lock");
      const { pipeline, ran } = doubler();
      const error = await rejectionOf(pipeline.map(range(3), { checkpoint: fileCheckpoint(path) }));
      expect(error).toBeInstanceOf(CheckpointInUseError);
      expect((error as CheckpointInUseError).holder?.pid).toBe(holder.process.pid);
      expect(ran).toEqual([]);
    } finally {
      holder.process.kill("SIGKILL");
      await within(holder.exited, 30_000, "the holder's exit");
    }
  }, 60_000);

  it("the lock of a process killed with SIGKILL is taken over at once, and the batch resumes", async () => {
    const path = folder.file("c.ckpt");
    // A batch that recorded part of its input, then a holder that took the lock and was killed.
    const first = doubler();
    await interruptAfter(first.pipeline, range(30), fileCheckpoint(path), 10);
    const recorded = (await readCheckpoint(fileCheckpoint(path))).done;
    // A process that had opened it (read it, as a batch does first) dies holding its lock.
    const holder = startChild("holder.ts", [path, "--read"]);
    try {
      await within(holder.line("holding "), 30_000, "the holder's lock");
    } finally {
      holder.process.kill("SIGKILL");
    }
    expect((await within(holder.exited, 30_000, "the holder's exit")).signal).toBe("SIGKILL");
    expect(existsSync(`${path}.lock`)).toBe(true);
    const second = doubler();
    const settled = await second.pipeline.mapSettled(range(30), 4, {
      checkpoint: fileCheckpoint(path),
    });
    expect(outcomes(settled)).toEqual(range(30).map((n) => n * 2));
    expect(second.ran).toHaveLength(30 - recorded);
    expect(existsSync(`${path}.lock`)).toBe(false);
  }, 60_000);
});

describe("onProgress on resume", () => {
  it("counts the restored items in done at once, and reports them as restored", async () => {
    const store = new MemoryStore();
    const first = doubler((n) => n === 1);
    await interruptAfter(first.pipeline, range(200), store, 120);
    const recorded = (await readCheckpoint(store)).done;
    const reports: Progress[] = [];
    const second = doubler();
    await second.pipeline.mapSettled(range(200), 4, {
      checkpoint: store,
      retryFailed: false,
      onProgress: (progress) => reports.push(progress),
    });
    // The first report, before a single item that runs has finished.
    expect(reports[0]).toEqual({
      done: recorded,
      failed: 1,
      inFlight: 4,
      total: 200,
      concurrency: 4,
      restored: recorded,
    });
    expect(reports.at(-1)).toEqual({
      done: 200,
      failed: 1,
      inFlight: 0,
      total: 200,
      concurrency: 4,
      restored: recorded,
    });
    // Without a checkpoint there is no `restored`.
    const plain: Progress[] = [];
    await second.pipeline.map(range(3), { onProgress: (progress) => plain.push(progress) });
    expect(plain.at(-1)).toEqual({ done: 3, failed: 0, inFlight: 0, total: 3, concurrency: 5 });
  });
});

describe("a resumed stream holds few recorded outputs at once", () => {
  it("reads the recorded outputs in step with the consumer, not all at once", async () => {
    const count = 5_000;
    // A store whose second read (the outputs) is watched record by record.
    const store = new MemoryStore();
    await doubler().pipeline.map(range(count), 8, { checkpoint: store });
    let reading = 0;
    let fetched = 0;
    const watched: CheckpointStore = {
      load: () => {
        reading++;
        const pass = reading;
        const values = store.load() as unknown[];
        return (function* watch() {
          for (const value of values) {
            if (pass === 2) fetched++;
            yield value;
          }
        })();
      },
      append: (record) => store.append(record),
      flush: () => store.flush(),
      close: () => store.close(),
      clear: () => store.clear(),
    };
    let consumed = 0;
    let furthest = 0;
    const { pipeline, ran } = doubler();
    for await (const output of pipeline.stream(range(count), 4, {
      checkpoint: watched,
      buffer: 4,
    })) {
      expect(output).toBe(consumed * 2);
      consumed++;
      furthest = Math.max(furthest, fetched - consumed);
    }
    expect(consumed).toBe(count);
    expect(ran).toEqual([]);
    // Ahead of the consumer by the read-ahead window (concurrency + buffer) and the records
    // written out of order (the 8 in flight when they were recorded), never the whole file.
    expect(furthest).toBeLessThanOrEqual(4 + 4 + 8 + 2);
  });
});

describe("the checkpoint options", () => {
  const { pipeline } = doubler();

  it("rejects bad values with a message that names the option", async () => {
    const cases: [object, Error][] = [
      [
        { checkpoint: "prices.ckpt" },
        new TypeError(
          'checkpoint must be a CheckpointStore (fileCheckpoint(path) from async-pipeline/checkpoint, or an object with load, append, flush, close and clear methods), got "prices.ckpt"',
        ),
      ],
      [
        { checkpoint: { load() {}, append() {}, flush() {}, close() {} } },
        new TypeError(
          "checkpoint must be a CheckpointStore (fileCheckpoint(path) from async-pipeline/checkpoint, or an object with load, append, flush, close and clear methods), got an object without a clear method",
        ),
      ],
      [{ itemKey: "sku" }, new TypeError('itemKey must be a function, got "sku"')],
      [{ retryFailed: "no" }, new TypeError('retryFailed must be a boolean, got "no"')],
      [{ version: 2 }, new TypeError("version must be a string, got 2")],
    ];
    for (const [options, expected] of cases) {
      await expect(pipeline.map([1], options as never)).rejects.toThrow(expected);
      await expect(pipeline.mapSettled([1], options as never)).rejects.toThrow(expected);
      await expect(pipeline.stream([1], options as never).next()).rejects.toThrow(expected);
    }
  });

  it("suggests the option meant by a name from elsewhere", async () => {
    await expect(pipeline.map([1], { store: new MemoryStore() } as never)).rejects.toThrow(
      new TypeError('unknown option "store" (did you mean "checkpoint"?)'),
    );
    await expect(pipeline.map([1], { keyOf: String } as never)).rejects.toThrow(
      new TypeError('unknown option "keyOf" (did you mean "itemKey"?)'),
    );
    await expect(pipeline.mapSettled([1], { retryFailures: false } as never)).rejects.toThrow(
      new TypeError('unknown option "retryFailures" (did you mean "retryFailed"?)'),
    );
    await expect(pipeline.run(1, { checkpoint: new MemoryStore() } as never)).rejects.toThrow(
      new TypeError('unknown option "checkpoint" ("checkpoint" is an option of map, not run)'),
    );
  });

  it("are harmless without a checkpoint, and write nothing", async () => {
    expect(
      await pipeline.map([1, 1], { itemKey: () => "same", retryFailed: false, version: "1" }),
    ).toEqual([2, 2]);
  });
});
