/**
 * The journal, the batch side of a checkpoint, driven as the batch will drive it (see
 * drive.ts) against an in-memory store (sync and async) and the file store: records, resume,
 * identity by position and by key, mismatches found before anything runs, failures recorded
 * and restored, completion, clearOnSuccess, lazy outputs, store failures.
 */
import { existsSync, readFileSync } from "node:fs";
import fc from "fast-check";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  CheckpointCorruptError,
  CheckpointInUseError,
  CheckpointMismatchError,
  fileCheckpoint,
} from "../../src/checkpoint/index.js";
import { StageExecutionError } from "../../src/index.js";
import { APPEND_OUTPUT, itemHash } from "../../src/internal/checkpoint-records.js";
import { Restored } from "../../src/internal/checkpoint.js";
import { rejectionOf } from "../support/promises.js";
import { drive, journalOn, outcomes } from "./drive.js";
import { MemoryStore, temporaryFolder, writeRecords, type Timing } from "./support.js";
import { assertProperty, TIMEOUT } from "../support/property.js";

/** FNV-1a (32 bits) over the UTF-16 code units of `text`: the stored item hash, written out. */
function fnv(text: string): number {
  let hash = 0x811c9dc5;
  for (let at = 0; at < text.length; at++) hash = Math.imul(hash ^ text.charCodeAt(at), 0x01000193);
  return hash >>> 0;
}

const double = (n: number): number => n * 2;
const HEADER = {
  format: "async-pipeline/checkpoint",
  v: 1,
  stages: ["double"],
  identity: "position",
};
const KEY_HEADER = { ...HEADER, identity: "key" };

/** A position record of `item` at `index` with `output`. */
function done(index: number, item: unknown, output?: unknown): object {
  return output === undefined
    ? { i: index, h: itemHash(item, index) }
    : { i: index, h: itemHash(item, index), o: output };
}

/** A position record of `item` at `index` that failed in stage "double". */
function failed(index: number, item: unknown, message = "boom"): object {
  return {
    i: index,
    h: itemHash(item, index),
    e: {
      stageName: "double",
      attempts: 2,
      error: { name: "RangeError", message, stack: `RangeError: ${message}\n    at x` },
    },
  };
}

/** A store holding `records`. */
function storeWith(records: readonly unknown[], timing: Timing = "sync"): MemoryStore {
  const store = new MemoryStore(timing);
  store.records = records.map((record) => JSON.stringify(record));
  return store;
}

function* generate<T>(items: readonly T[], closed?: { value: boolean }): Generator<T> {
  try {
    yield* items;
  } finally {
    if (closed !== undefined) closed.value = true;
  }
}

async function* generateAsync<T>(
  items: readonly T[],
  closed?: { value: boolean },
): AsyncGenerator<T> {
  try {
    for (const item of items) {
      await Promise.resolve();
      yield item;
    }
  } finally {
    if (closed !== undefined) closed.value = true;
  }
}

describe.each(["sync", "async"] as const)("the journal with a %s in-memory store", (timing) => {
  it("records a header, one record per item and the completion marker; flushes, then closes", async () => {
    const store = new MemoryStore(timing);
    const { results, ran } = await drive(store, [1, 2, 3], double);
    expect(outcomes(results)).toEqual([2, 4, 6]);
    expect(ran).toEqual([0, 1, 2]);
    expect(store.values).toEqual([
      HEADER,
      done(0, 1, 2),
      done(1, 2, 4),
      done(2, 3, 6),
      { complete: true },
    ]);
    expect(store.calls).toEqual(["load", ...Array<string>(5).fill("append"), "flush", "close"]);
    expect(store.flushed).toBe(5);
  });

  it("resumes: recorded items are restored in place, the others run", async () => {
    const store = storeWith([HEADER, done(0, 1, 2), done(3, 4, 8), done(1, 2, 4)], timing);
    const { results, ran, restored } = await drive(store, [1, 2, 3, 4, 5], double);
    expect(outcomes(results)).toEqual([2, 4, 6, 8, 10]);
    expect(ran).toEqual([2, 4]);
    expect(restored).toEqual([0, 1, 3]);
    expect(store.values.slice(4)).toEqual([done(2, 3, 6), done(4, 5, 10), { complete: true }]);
  });

  it("restores outputs from a second read when lazyOutputs is set (a stream)", async () => {
    // Recorded in completion order, not input order.
    const records = [
      HEADER,
      done(2, 3, 6),
      done(0, 1, 2),
      failed(1, 2),
      done(1, 2, 4),
      done(5, 6, 12),
    ];
    const store = storeWith(records, timing);
    const { results, ran, restored } = await drive(store, [1, 2, 3, 4, 5, 6], double, {
      lazyOutputs: true,
    });
    expect(outcomes(results)).toEqual([2, 4, 6, 8, 10, 12]);
    expect(restored).toEqual([0, 1, 2, 5]);
    expect(ran).toEqual([3, 4]);
    expect(store.loads).toBe(2);
  });

  it("runs recorded failures again by default", async () => {
    const store = storeWith([HEADER, done(0, 1, 2), failed(1, 2)], timing);
    const { results, ran } = await drive(store, [1, 2], double);
    expect(outcomes(results)).toEqual([2, 4]);
    expect(ran).toEqual([1]);
  });

  it.each([false, true])(
    "restores recorded failures with retryFailed false (lazyOutputs %s)",
    async (lazyOutputs) => {
      const store = storeWith([HEADER, done(0, 1, 2), failed(1, 2, "bad value")], timing);
      const { results, ran } = await drive(store, [1, 2], double, {
        retryFailed: false,
        lazyOutputs,
      });
      expect(ran).toEqual([]);
      const reason = (results[1] as PromiseRejectedResult).reason as StageExecutionError;
      expect(reason).toBeInstanceOf(StageExecutionError);
      expect(reason.stageName).toBe("double");
      expect(reason.attempts).toBe(2);
      expect(reason.originalError).toBeInstanceOf(RangeError);
      expect((reason.originalError as Error).message).toBe("bad value");
      expect((reason.originalError as Error).stack).toBe("RangeError: bad value\n    at x");
    },
  );

  it("records a stage failure with its stage, attempts and error, and another failure as it is", async () => {
    const store = new MemoryStore(timing);
    const httpError = Object.assign(new Error("HTTP 503"), { name: "HttpError", status: 503 });
    await drive(store, [1, 2], (n) => {
      throw n === 1 ? new StageExecutionError("fetch", httpError, 3) : new TypeError("hook failed");
    });
    const [, first, second] = store.values as Record<string, unknown>[];
    expect(first).toEqual({
      i: 0,
      h: itemHash(1, 0),
      e: {
        stageName: "fetch",
        attempts: 3,
        error: {
          name: "HttpError",
          message: "HTTP 503",
          stack: httpError.stack,
          fields: { status: 503 },
        },
      },
    });
    expect(second!.e).toEqual({
      error: expect.objectContaining({ name: "TypeError", message: "hook failed" }) as unknown,
    });
  });
});

describe("identity by position", () => {
  it("rejects other stage names before anything runs, leaving the checkpoint as it was", async () => {
    const records = [HEADER, done(0, 1, 2)];
    const store = storeWith(records);
    const ran: number[] = [];
    const error = await rejectionOf(
      drive(store, [1, 2], (n) => ran.push(n), { stages: ["double", "describe"] }),
    );
    expect(error).toBeInstanceOf(CheckpointMismatchError);
    expect(error).toMatchObject({
      mismatch: "stages",
      recorded: ["double"],
      current: ["double", "describe"],
    });
    expect((error as Error).message).toContain('["double"]');
    expect(ran).toEqual([]);
    expect(store.values).toEqual(records);
    expect(store.calls).toEqual(["load", "close"]);
  });

  it.each([
    [undefined, "2"],
    ["1", undefined],
    ["1", "2"],
  ])("rejects version %j resumed as %j", async (recorded, current) => {
    const header = recorded === undefined ? HEADER : { ...HEADER, version: recorded };
    const store = storeWith([header]);
    const error = await rejectionOf(drive(store, [1], double, { version: current }));
    expect(error).toMatchObject({ mismatch: "version", recorded, current });
    expect((error as Error).message).toMatch(/no version|version "/);
  });

  it("accepts an equal version", async () => {
    const store = storeWith([{ ...HEADER, version: "7" }, done(0, 1, 2)]);
    expect((await drive(store, [1], double, { version: "7" })).restored).toEqual([0]);
  });

  it("rejects a checkpoint written with itemKey", async () => {
    const error = await rejectionOf(drive(storeWith([KEY_HEADER]), [1], double));
    expect(error).toMatchObject({ mismatch: "identity", recorded: "key", current: "position" });
    expect((error as Error).message).toContain("gives no itemKey");
  });

  it("rejects a checkpoint of a newer format", async () => {
    const error = await rejectionOf(drive(storeWith([{ ...HEADER, v: 2 }]), [1], double));
    expect(error).toMatchObject({ mismatch: "format", recorded: 2, current: 1 });
  });

  it.each([
    ["an array", (items: number[]) => items],
    ["a generator", (items: number[]) => generate(items)],
    ["an async generator", (items: number[]) => generateAsync(items)],
  ])(
    "rejects %s whose recorded item changed, naming its position, before anything runs",
    async (_label, make) => {
      const records = [HEADER, done(0, 1, 2), done(2, 3, 6)];
      const store = storeWith(records);
      const ran: number[] = [];
      const error = await rejectionOf(drive(store, make([1, 2, 30, 4]), (n) => ran.push(n)));
      expect(error).toBeInstanceOf(CheckpointMismatchError);
      expect(error).toMatchObject({
        mismatch: "input",
        index: 2,
        recorded: itemHash(3, 2),
        current: itemHash(30, 2),
      });
      expect((error as Error).message).toContain("position 2");
      expect(ran).toEqual([]);
      expect(store.values).toEqual(records);
    },
  );

  it.each([
    ["an array", (items: number[]) => items],
    ["a generator", (items: number[]) => generate(items)],
    ["an async generator", (items: number[]) => generateAsync(items)],
  ])("rejects %s that ends before a recorded position", async (_label, make) => {
    const store = storeWith([HEADER, done(0, 1, 2), done(3, 4, 8)]);
    const error = await rejectionOf(drive(store, make([1, 2]), double));
    expect(error).toMatchObject({ mismatch: "input", index: 3, current: undefined });
    expect((error as Error).message).toContain("ends before position 3");
  });

  it.each([
    ["a generator", generate],
    ["an async generator", generateAsync],
  ])("closes %s it read ahead when the input does not match", async (_label, make) => {
    const closed = { value: false };
    const store = storeWith([HEADER, done(0, 1, 2), done(1, 2, 4)]);
    await rejectionOf(drive(store, make([9, 9, 9], closed), double));
    expect(closed.value).toBe(true);
  });

  it.each([
    ["a generator", generate],
    ["an async generator", generateAsync],
  ])("replays %s it read ahead: the items to run in place, then the rest", async (_label, make) => {
    const store = storeWith([HEADER, done(0, 1, 2), failed(1, 2), done(3, 4, 8)]);
    const seen: number[] = [];
    const { results, ran, restored } = await drive(store, make([1, 2, 3, 4, 5, 6]), (n: number) => {
      seen.push(n);
      return n * 2;
    });
    expect(outcomes(results)).toEqual([2, 4, 6, 8, 10, 12]);
    expect(restored).toEqual([0, 3]);
    expect(ran).toEqual([1, 2, 4, 5]);
    expect(seen).toEqual([2, 3, 5, 6]);
  });

  it("closes the input it read ahead when the batch leaves early", async () => {
    const closed = { value: false };
    const store = storeWith([HEADER, done(1, 2, 4)]);
    const { completed } = await drive(store, generate([1, 2, 3, 4], closed), double, { stopAt: 1 });
    expect(completed).toBe(false);
    expect(closed.value).toBe(true);
  });

  it("runs the extra items of an input longer than the recorded one", async () => {
    const store = storeWith([HEADER, done(0, 1, 2), { complete: true }]);
    const { ran } = await drive(store, [1, 2, 3], double);
    expect(ran).toEqual([1, 2]);
  });

  it("counts two items with the same JSON as the same item", async () => {
    const store = storeWith([HEADER, done(0, { a: 1 }, "x")]);
    const { restored } = await drive(store, [{ a: 1 }], () => "y");
    expect(restored).toEqual([0]);
  });

  it("refuses an item JSON cannot write, asking for an itemKey", async () => {
    const error = await rejectionOf(drive(new MemoryStore(), [1n], () => 1));
    expect(error).toBeInstanceOf(TypeError);
    expect((error as Error).message).toMatch(/index 0 cannot be hashed.*give an itemKey/);
  });

  it("stops reading ahead when the batch's signal aborts, with its reason", async () => {
    const controller = new AbortController();
    const store = storeWith([HEADER, done(2, 3, 6)]);
    async function* slow(): AsyncGenerator<number> {
      yield 1;
      controller.abort(new Error("stop"));
      yield 2;
      yield 3;
    }
    const error = await rejectionOf(drive(store, slow(), double, { signal: controller.signal }));
    expect((error as Error).message).toBe("stop");
    expect(store.open).toBe(false);
  });

  it("rejects at once for a signal aborted before it opens", async () => {
    const controller = new AbortController();
    controller.abort(new Error("early"));
    const store = new MemoryStore();
    expect(
      await rejectionOf(drive(store, [1], double, { signal: controller.signal })),
    ).toMatchObject({ message: "early" });
    expect(store.calls).toEqual(["close"]);
  });
});

describe("identity by itemKey", () => {
  const itemKey = (line: { sku: string }): string => line.sku;
  const keyed = (sku: string, output: unknown): object => ({ k: sku, o: output });

  it("restores by key: the input may be reordered, filtered and extended", async () => {
    const store = storeWith([KEY_HEADER, keyed("a", 1), keyed("b", 2), keyed("c", 3)]);
    const input = [{ sku: "c" }, { sku: "new" }, { sku: "a" }];
    const { results, ran, restored } = await drive(store, input, (line) => line.sku.length * 10, {
      itemKey,
    });
    expect(outcomes(results)).toEqual([3, 30, 1]);
    expect(restored).toEqual([0, 2]);
    expect(ran).toEqual([1]);
    expect(store.values.at(-2)).toEqual(keyed("new", 30));
  });

  it("restores by key lazily too, whatever the order", async () => {
    const store = storeWith([KEY_HEADER, keyed("a", 1), keyed("b", 2), keyed("c", 3)], "async");
    const input = [{ sku: "c" }, { sku: "a" }, { sku: "b" }];
    const { results } = await drive(store, input, () => 0, { itemKey, lazyOutputs: true });
    expect(outcomes(results)).toEqual([3, 1, 2]);
  });

  it("takes numbers as keys, distinct from the strings that spell them", async () => {
    const store = storeWith([KEY_HEADER, { k: 1, o: "one" }]);
    const { results, ran } = await drive(store, [1, "1"], (item) => `ran ${String(item)}`, {
      itemKey: (item: number | string) => item,
    });
    expect(outcomes(results)).toEqual(["one", "ran 1"]);
    expect(ran).toEqual([1]);
  });

  it("fails on a duplicate key with a TypeError naming both indexes", async () => {
    const error = await rejectionOf(
      drive(new MemoryStore(), [{ sku: "a" }, { sku: "b" }, { sku: "a" }], () => 1, { itemKey }),
    );
    expect(error).toBeInstanceOf(TypeError);
    expect((error as Error).message).toBe(
      'itemKey returned "a" for the items at indexes 0 and 2: keys must be unique within a batch',
    );
  });

  it.each([
    [undefined, "undefined"],
    [NaN, "NaN"],
    [{}, "an object"],
  ])("fails on a key that is %s", async (key, shown) => {
    const error = await rejectionOf(drive(new MemoryStore(), [1], () => 1, { itemKey: () => key }));
    expect(error).toBeInstanceOf(TypeError);
    expect((error as Error).message).toBe(
      `itemKey must return a string or a finite number, got ${shown} for the item at index 0`,
    );
  });

  it("passes on what itemKey throws", async () => {
    const thrown = new Error("no sku");
    const error = await rejectionOf(
      drive(new MemoryStore(), [1], () => 1, {
        itemKey: () => {
          throw thrown;
        },
      }),
    );
    expect(error).toBe(thrown);
  });

  it("rejects a checkpoint written by position", async () => {
    const error = await rejectionOf(
      drive(storeWith([HEADER]), [{ sku: "a" }], () => 1, { itemKey }),
    );
    expect(error).toMatchObject({ mismatch: "identity", recorded: "position", current: "key" });
    expect((error as Error).message).toContain("gives an itemKey");
  });
});

describe("outputs and failures", () => {
  it("records undefined by leaving the output out, and restores it", async () => {
    const store = new MemoryStore();
    await drive(store, [1], () => undefined);
    expect(store.values[1]).toEqual(done(0, 1));
    const { results, restored } = await drive(store, [1], () => "ran again");
    expect(restored).toEqual([0]);
    expect(results[0]).toEqual({ status: "fulfilled", value: undefined });
  });

  it("fails an item whose output is not JSON-safe, recording that failure", async () => {
    const store = new MemoryStore();
    const { results } = await drive(store, [1, 2], (n) => (n === 1 ? { at: new Date(0) } : n));
    const reason = (results[0] as PromiseRejectedResult).reason as Error;
    expect(reason).toBeInstanceOf(TypeError);
    expect(reason.message).toBe(
      "The output of the item at index 0 is not JSON-safe (output.at has a toJSON method (a Date)): a checkpoint records outputs as JSON",
    );
    expect((store.values[1] as { e: { error: { name: string } } }).e.error.name).toBe("TypeError");
    expect(results[1]).toEqual({ status: "fulfilled", value: 2 });
  });

  it.each([NaN, Infinity])("fails an output of %s", async (value) => {
    const { results } = await drive(new MemoryStore(), [1], () => value);
    expect(results[0]!.status).toBe("rejected");
  });

  it("stops at the first failure like map, and does not complete", async () => {
    const store = new MemoryStore();
    const error = await rejectionOf(
      drive(
        store,
        [1, 2, 3],
        (n) => {
          if (n === 2) throw new Error("two");
          return n;
        },
        { settled: false },
      ),
    );
    expect((error as Error).message).toBe("two");
    expect(store.values.at(-1)).not.toEqual({ complete: true });
  });
});

describe("completion", () => {
  it("a completed checkpoint returns its results without running anything or writing", async () => {
    const records = [HEADER, done(0, 1, 2), done(1, 2, 4), { complete: true }];
    const store = storeWith(records);
    const { results, ran } = await drive(store, [1, 2], double);
    expect(outcomes(results)).toEqual([2, 4]);
    expect(ran).toEqual([]);
    expect(store.values).toEqual(records);
  });

  it("a completed checkpoint with failures runs those again, then is complete again", async () => {
    const store = storeWith([HEADER, done(0, 1, 2), failed(1, 2), { complete: true }]);
    const { ran } = await drive(store, [1, 2], double);
    expect(ran).toEqual([1]);
    expect(store.values.slice(4)).toEqual([done(1, 2, 4), { complete: true }]);
  });

  it("with retryFailed false, a completed checkpoint runs nothing", async () => {
    const store = storeWith([HEADER, failed(0, 1), { complete: true }]);
    const { ran } = await drive(store, [1], double, { retryFailed: false });
    expect(ran).toEqual([]);
  });

  it("clears the store of a completed batch when the store asks (clearOnSuccess)", async () => {
    const store = new MemoryStore();
    store.clearOnSuccess = true;
    await drive(store, [1], double);
    // Cleared before the flush, with no completion marker: nothing of it is made durable.
    expect(store.calls).toEqual(["load", "append", "append", "clear", "flush", "close"]);
    expect(store.records).toEqual([]);
  });

  it("rejects with a failing clear, after closing the store, which keeps its records", async () => {
    const store = new MemoryStore();
    store.clearOnSuccess = true;
    const failure = new Error("cannot delete");
    store.clear = () => {
      store.calls.push("clear");
      throw failure;
    };
    expect(await rejectionOf(drive(store, [1], double))).toBe(failure);
    expect(store.calls.slice(-2)).toEqual(["clear", "close"]);
    expect(store.values).toEqual([HEADER, done(0, 1, 2)]);
  });

  it("keeps the store of a batch that did not complete, whatever clearOnSuccess says", async () => {
    const store = new MemoryStore();
    store.clearOnSuccess = true;
    await drive(store, [1, 2], double, { stopAt: 1 });
    expect(store.calls).not.toContain("clear");
    expect(store.values).toEqual([HEADER, done(0, 1, 2)]);
  });
});

describe("the journal's protocol", () => {
  it("counts restorable and restored items", async () => {
    const store = storeWith([HEADER, done(0, 1, 2), failed(1, 2), done(2, 3, 6)]);
    const journal = journalOn(store);
    const input = (await journal.open([1, 2, 3])) as number[];
    expect(journal.restorable).toBe(2);
    expect(journal.restored).toBe(0);
    expect(journal.take(input[0], 0)).toEqual(new Restored(true, 2));
    expect(journal.restored).toBe(1);
    const ticket = journal.take(input[1], 1) as number;
    expect(ticket).toBe(itemHash(2, 1));
    await journal.close(false);
    await journal.close(false); // a second close does nothing
    // An item that settles after the end is not recorded: nothing is appended after close.
    expect(journal.record(1, ticket, true, 4)).toBeUndefined();
    expect(store.calls.filter((call) => call === "append")).toEqual([]);
  });

  it("refuses a second open and a store another journal uses", async () => {
    const store = new MemoryStore();
    const first = journalOn(store);
    await first.open([]);
    await expect(first.open([])).rejects.toThrow("CheckpointJournal.open called twice");
    const second = journalOn(store);
    const error = await rejectionOf(second.open([]));
    expect(error).toBeInstanceOf(CheckpointInUseError);
    expect((error as Error).message).toContain("same store");
    await first.close(true);
    const third = journalOn(store);
    await third.open([1]);
    await third.close(false);
  });

  it("close without open does nothing", async () => {
    const store = new MemoryStore();
    await journalOn(store).close(true);
    expect(store.calls).toEqual([]);
  });

  it.each([
    ["a first record that is not a header", [{ i: 0 }], 0, "not a checkpoint header"],
    ["a header with malformed stages", [{ ...HEADER, stages: [1] }], 0, "malformed"],
    ["a record that is not an object", [HEADER, 5], 1, "not a checkpoint record"],
    ["a record without a position", [HEADER, { h: 1 }], 1, "valid position"],
    ["a record without a hash", [HEADER, { i: 0, h: -1 }], 1, "valid hash"],
    [
      "a record with a malformed failure",
      [HEADER, { i: 0, h: 1, e: { error: 1 } }],
      1,
      "malformed failure",
    ],
    [
      "a failure with a stage but no attempts",
      [HEADER, { i: 0, h: 1, e: { stageName: "x", error: { name: "E", message: "" } } }],
      1,
      "malformed failure",
    ],
    ["a key record without a key", [KEY_HEADER, { k: null }], 1, "valid key"],
  ])("rejects %s as damage, naming the record", async (_label, records, record, reason) => {
    const store = storeWith(records);
    const error = await rejectionOf(
      drive(
        store,
        [1],
        double,
        (records[0] as { identity?: string }).identity === "key" ? { itemKey: String } : {},
      ),
    );
    expect(error).toBeInstanceOf(CheckpointCorruptError);
    expect(error).toMatchObject({ record, path: undefined, offset: undefined });
    expect((error as Error).message).toContain(reason);
    expect(store.open).toBe(false);
  });

  it("fails the batch when the store's append throws, and still closes the store", async () => {
    const store = new MemoryStore();
    const diskFull = new Error("ENOSPC");
    const error = await rejectionOf(
      drive(store, [1, 2], (n) => {
        if (n === 1) store.failAppend = diskFull;
        return n;
      }),
    );
    expect(error).toBe(diskFull);
    expect(store.calls.slice(-2)).toEqual(["flush", "close"]);
  });

  it("fails the batch when an asynchronous append rejects: at the next record, or at close", async () => {
    const diskFull = new Error("ENOSPC");
    const store = new MemoryStore("async");
    const error = await rejectionOf(
      drive(store, [1, 2, 3], async (n) => {
        if (n === 1) store.failAppend = diskFull;
        await new Promise((resolve) => setTimeout(resolve, 1));
        return n;
      }),
    );
    expect(error).toBe(diskFull);
    expect(store.open).toBe(false);

    const last = new MemoryStore("async");
    const lastError = await rejectionOf(
      drive(last, [1], (n) => {
        last.failAppend = diskFull;
        return n;
      }),
    );
    expect(lastError).toBe(diskFull);
    expect(last.calls.at(-1)).toBe("close");
  });

  it.each(["flush", "close"] as const)(
    "rejects with the store's %s failure when nothing else failed, the store closed",
    async (method) => {
      const store = new MemoryStore();
      const refused = new Error(`${method} refused`);
      const original = store.close.bind(store);
      store[method] = () => {
        if (method === "close") void original();
        throw refused;
      };
      expect(await rejectionOf(drive(store, [1], double))).toBe(refused);
      expect(store.open).toBe(false);
    },
  );

  it("rejects a lazy fetch when the store changed between its two reads", async () => {
    const store = storeWith([HEADER, done(0, 1, 2), done(1, 2, 4)]);
    const load = store.load.bind(store);
    let loads = 0;
    store.load = () => {
      loads++;
      if (loads === 2) store.records = store.records.slice(0, 2); // the second read is short
      return load();
    };
    const error = await rejectionOf(drive(store, [1, 2], double, { lazyOutputs: true }));
    expect(error).toBeInstanceOf(CheckpointCorruptError);
    expect((error as Error).message).toContain("changed between two reads");
  });

  it("rejects a lazy fetch that finds another record in the place of the one it wants", async () => {
    const store = storeWith([HEADER, done(0, 1, 2), done(1, 2, 4)]);
    const load = store.load.bind(store);
    let loads = 0;
    store.load = () => {
      if (++loads === 2) store.records = [store.records[0]!, store.records[2]!, store.records[1]!];
      return load();
    };
    const error = await rejectionOf(drive(store, [1, 2], double, { lazyOutputs: true }));
    expect((error as Error).message).toContain("another record at the same place");
  });
});

describe("the journal with the file store", () => {
  let folder: ReturnType<typeof temporaryFolder>;
  beforeEach(() => {
    folder = temporaryFolder();
  });
  afterEach(() => {
    folder.remove();
  });

  it("writes, resumes after an interruption, and completes", async () => {
    const path = folder.file("c.ckpt");
    const first = await drive(fileCheckpoint(path), [1, 2, 3, 4], double, { stopAt: 2 });
    expect(first.ran).toEqual([0, 1]);
    expect(existsSync(`${path}.lock`)).toBe(false);
    const second = await drive(fileCheckpoint(path), [1, 2, 3, 4], double);
    expect(outcomes(second.results)).toEqual([2, 4, 6, 8]);
    expect(second.restored).toEqual([0, 1]);
    expect(second.ran).toEqual([2, 3]);
    const third = await drive(fileCheckpoint(path), [1, 2, 3, 4], double, { lazyOutputs: true });
    expect(third.ran).toEqual([]);
    expect(outcomes(third.results)).toEqual([2, 4, 6, 8]);
  });

  it("resumes past a torn last record, which it cuts off", async () => {
    const path = folder.file("c.ckpt");
    writeRecords(path, [HEADER, done(0, 1, 2)], '0000abcd {"i":1,"h":');
    const { ran, restored } = await drive(fileCheckpoint(path), [1, 2], double);
    expect(restored).toEqual([0]);
    expect(ran).toEqual([1]);
    expect(readFileSync(path, "utf8")).not.toContain("0000abcd");
    expect((await drive(fileCheckpoint(path), [1, 2], double)).ran).toEqual([]);
  });

  it("clears the file of a completed batch with clearOnSuccess", async () => {
    const path = folder.file("c.ckpt");
    await drive(fileCheckpoint(path, { clearOnSuccess: true }), [1, 2], double);
    expect(existsSync(path)).toBe(false);
    expect(existsSync(`${path}.lock`)).toBe(false);
  });

  it("refuses a checkpoint another store object of this process holds", async () => {
    const path = folder.file("c.ckpt");
    const holder = fileCheckpoint(path);
    holder.load();
    expect(await rejectionOf(drive(fileCheckpoint(path), [1], double))).toBeInstanceOf(
      CheckpointInUseError,
    );
    await holder.close();
  });
});

describe("the journal's less common paths", () => {
  it("writes the version in a new checkpoint's header", async () => {
    const store = new MemoryStore();
    await drive(store, [], double, { version: "2026-12" });
    expect(store.values[0]).toEqual({ ...HEADER, version: "2026-12" });
  });

  it("restores many positions, recorded in any order", async () => {
    const items = Array.from({ length: 100 }, (_, index) => index);
    const records = items.map((item) => done(item, item, item * 2)).reverse();
    const store = storeWith([HEADER, ...records]);
    const { results, ran } = await drive(store, items, () => "ran");
    expect(ran).toEqual([]);
    expect(outcomes(results)).toEqual(items.map((item) => item * 2));
  });

  it("by key: an undefined output, and the last of two records of a key", async () => {
    const store = storeWith([
      KEY_HEADER,
      { k: "a", e: { error: { name: "Error", message: "first try" } } },
      { k: "a", o: "second try" },
    ]);
    const { results, ran } = await drive(store, ["a", "b"], () => undefined, { itemKey: String });
    expect(outcomes(results)).toEqual(["second try", undefined]);
    expect(ran).toEqual([1]);
    expect(store.values.at(-2)).toEqual({ k: "b" });
  });

  it("hands a store with APPEND_OUTPUT each success's fields, and the other records as objects", async () => {
    /** A memory store that frames a success from its fields, as the file store does. */
    class FieldStore extends MemoryStore {
      readonly fields: unknown[][] = [];
      [APPEND_OUTPUT](index: number, hash: number, output: unknown): void {
        this.fields.push([index, hash, output]);
        void this.append(
          output === undefined ? { i: index, h: hash } : { i: index, h: hash, o: output },
        );
      }
    }
    const three = new Error("three");
    const run = (item: number): number | undefined => {
      if (item === 3) throw three;
      return item === 2 ? undefined : item * 10;
    };
    const withFields = new FieldStore();
    const plain = new MemoryStore();
    await drive(withFields, [1, 2, 3], run);
    await drive(plain, [1, 2, 3], run);
    expect(withFields.values).toEqual(plain.values);
    expect(withFields.fields).toEqual([
      [0, itemHash(1, 0), 10],
      [1, itemHash(2, 1), undefined],
    ]);
    // The header, the failure and the completion went through append (and the two successes,
    // from FieldStore's own method).
    expect(withFields.calls.filter((call) => call === "append")).toHaveLength(5);
  });

  it("records null as an output", async () => {
    const store = new MemoryStore();
    await drive(store, [1], () => null);
    expect(store.values[1]).toEqual(done(0, 1, null));
  });

  it("hashes an item as FNV-1a over its JSON text, numbers and strings included (the stored format)", () => {
    const items: unknown[] = [
      0,
      -0,
      7,
      -7,
      2 ** 31,
      2 ** 32 - 1,
      2 ** 40,
      2 ** 53 - 1,
      -(2 ** 53 - 1),
      2 ** 53,
      0.1,
      1e21,
      NaN,
      Infinity,
      -Infinity,
      "",
      "plain",
      'a "quote"',
      "back\\slash",
      "line\nbreak",
      "\u0001",
      "héllo",
      "€𝄞",
      "\ud800",
      "\udfff x",
      null,
      true,
      [1, "a"],
      { sku: "x", n: 2 },
    ];
    for (const item of items)
      expect(itemHash(item, 0), String(item)).toBe(fnv(JSON.stringify(item)));
    // A fixed value, so that a change of the stored hash cannot pass unnoticed.
    expect(itemHash(1, 0)).toBe(0x340ca71c);
    expect(itemHash("a", 0)).toBe(fnv('"a"'));
  });

  it(
    "property: hashes any number item as FNV-1a over its JSON text",
    async () => {
      await assertProperty(
        fc.property(
          fc.oneof(fc.integer(), fc.maxSafeInteger(), fc.double(), fc.nat({ max: 2 ** 32 })),
          (item) => {
            expect(itemHash(item, 0)).toBe(fnv(JSON.stringify(item)));
          },
        ),
      );
    },
    TIMEOUT,
  );

  it("hashes undefined, and refuses an item whose toJSON throws something else than an Error", async () => {
    expect(itemHash(undefined, 0)).toBe(itemHash(undefined, 5));
    expect(itemHash(undefined, 0)).not.toBe(itemHash(null, 0));
    const odd = {
      toJSON: () => {
        throw "no JSON for me";
      },
    };
    expect(() => itemHash(odd, 3)).toThrow(
      "The item at index 3 cannot be hashed for the checkpoint (no JSON for me): give an itemKey to identify items instead",
    );
  });

  it("closes an iterable without return() it read ahead, and an async one, when the batch leaves early", async () => {
    const store = storeWith([HEADER, done(1, 2, 4)]);
    const { completed } = await drive(store, new Set([1, 2, 3]), double, { stopAt: 1 });
    expect(completed).toBe(false);
    const closed = { value: false };
    await drive(storeWith([HEADER, done(1, 2, 4)]), generateAsync([1, 2, 3], closed), double, {
      stopAt: 1,
    });
    expect(closed.value).toBe(true);
  });

  it("fetches lazily from a store whose load gives an async iterable at once", async () => {
    const store = storeWith([HEADER, done(0, 1, 2), done(1, 2, 4)]);
    store.load = () => {
      store.loads++;
      const values = store.values;
      return (async function* replay() {
        yield* values;
      })() as never;
    };
    const { results } = await drive(store, [1, 2], double, { lazyOutputs: true });
    expect(outcomes(results)).toEqual([2, 4]);
  });

  it("serves lazy fetches taken together, the later one read ahead by the earlier", async () => {
    // Item 1 was recorded before item 0: fetching item 0 reads item 1's record on the way.
    const store = storeWith([HEADER, done(1, 2, 4), { complete: true }, done(0, 1, 2)], "async");
    const journal = journalOn(store, { lazyOutputs: true });
    const input = (await journal.open([1, 2])) as number[];
    const first = journal.take(input[0], 0) as Promise<Restored>;
    const second = journal.take(input[1], 1) as Promise<Restored>;
    expect(await first).toEqual(new Restored(true, 2));
    expect(await second).toEqual(new Restored(true, 4));
    await journal.close(true);
  });

  it("a lazy fetch outlived by close rejects", async () => {
    const store = storeWith([HEADER, done(0, 1, 2)], "async");
    const journal = journalOn(store, { lazyOutputs: true });
    await journal.open([1]);
    const fetch = journal.take(1, 0) as Promise<Restored>;
    await journal.close(false);
    expect(await rejectionOf(fetch)).toMatchObject({ message: "the checkpoint was closed" });
  });
});
