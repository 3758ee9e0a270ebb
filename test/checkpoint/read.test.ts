/**
 * `readCheckpoint`: `{ done, failed, complete }` from any store, written by the journal; the
 * store released whatever happens.
 */
import { appendFileSync, existsSync, readFileSync } from "node:fs";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  CheckpointCorruptError,
  CheckpointInUseError,
  fileCheckpoint,
  readCheckpoint,
} from "../../src/checkpoint/index.js";
import { StageExecutionError } from "../../src/index.js";
import { rejectionOf } from "../support/promises.js";
import { drive, journalOn } from "./drive.js";
import { MemoryStore, temporaryFolder, writeRecords } from "./support.js";

let folder: ReturnType<typeof temporaryFolder>;
beforeEach(() => {
  folder = temporaryFolder();
});
afterEach(() => {
  folder.remove();
});

class HttpError extends Error {
  override name = "HttpError";
  constructor(
    readonly status: number,
    options?: ErrorOptions,
  ) {
    super(`HTTP ${String(status)}`, options);
  }
}

/** Fails 2 with a stage failure, "x" with a thrown string outside the stages. */
function work(item: number | string): number {
  if (item === 2) {
    throw new StageExecutionError("price", new HttpError(503, { cause: new Error("reset") }), 3);
  }
  if (item === "x") throw "not an error";
  return Number(item) * 10;
}

describe("readCheckpoint", () => {
  it("reads a missing file as nothing done, creating nothing", async () => {
    const path = folder.file("c.ckpt");
    expect(await readCheckpoint(fileCheckpoint(path))).toEqual({
      done: 0,
      failed: [],
      complete: false,
    });
    expect(existsSync(path)).toBe(false);
    expect(existsSync(`${path}.lock`)).toBe(false);
  });

  it("counts every recorded item, lists failures with their keys (positions), and completion", async () => {
    const path = folder.file("c.ckpt");
    await drive(fileCheckpoint(path), [1, 2, 3, "x"], work);
    const report = await readCheckpoint(fileCheckpoint(path));
    expect(report.done).toBe(4);
    expect(report.complete).toBe(true);
    expect(report.failed.map(({ key }) => key)).toEqual([1, 3]);
    const [stage, other] = report.failed.map(({ error }) => error);
    expect(stage).toEqual({
      name: "HttpError",
      message: "HTTP 503",
      stack: expect.stringContaining("HttpError: HTTP 503") as string,
      status: 503,
      stageName: "price",
      attempts: 3,
      cause: expect.objectContaining({ name: "Error", message: "reset" }) as unknown,
    });
    expect(other).toEqual({ name: "Error", message: "not an error", value: "not an error" });
    expect(Object.isFrozen(report)).toBe(true);
    expect(existsSync(`${path}.lock`)).toBe(false);
  });

  it("counts an item once, by its last record, and keys by itemKey", async () => {
    const store = new MemoryStore();
    await drive(
      store,
      ["a", "b"],
      () => {
        throw new Error("down");
      },
      { itemKey: (item: string) => `sku-${item}` },
    );
    let report = await readCheckpoint(store);
    expect(report).toMatchObject({ done: 2, complete: true });
    expect(report.failed.map(({ key }) => key)).toEqual(["sku-a", "sku-b"]);
    // The failures run again and one succeeds: counted once, listed once.
    await drive(
      store,
      ["a", "b"],
      (item) => {
        if (item === "b") throw new Error("still down");
        return 1;
      },
      { itemKey: (item: string) => `sku-${item}` },
    );
    report = await readCheckpoint(store);
    expect(report.done).toBe(2);
    expect(report.failed).toEqual([
      { key: "sku-b", error: expect.objectContaining({ message: "still down" }) as unknown },
    ]);
    expect(store.calls.filter((call) => call === "close")).toHaveLength(4);
  });

  it("is not complete while records follow the completion marker (a resumed run under way)", async () => {
    const store = new MemoryStore();
    await drive(store, [1, 2], work, { settled: true });
    const journal = journalOn(store);
    await journal.open([1, 2]);
    journal.record(1, journal.take(2, 1) as number, true, 20);
    await journal.close(false);
    expect(await readCheckpoint(store)).toEqual({ done: 2, failed: [], complete: false });
  });

  it("reads a torn last record as absent and leaves the file as it is", async () => {
    const path = folder.file("c.ckpt");
    await drive(fileCheckpoint(path), [1, 3], work, { stopAt: 1 });
    appendFileSync(path, '12345678 {"i":1');
    const before = readFileSync(path);
    expect(await readCheckpoint(fileCheckpoint(path))).toEqual({
      done: 1,
      failed: [],
      complete: false,
    });
    expect(readFileSync(path)).toEqual(before);
  });

  it("rejects damage and a checkpoint in use, releasing the store either way", async () => {
    const path = folder.file("c.ckpt");
    writeRecords(path, [{ format: "something else" }]);
    const error = await rejectionOf(readCheckpoint(fileCheckpoint(path)));
    expect(error).toBeInstanceOf(CheckpointCorruptError);
    expect(existsSync(`${path}.lock`)).toBe(false);

    const store = new MemoryStore();
    const journal = journalOn(store);
    await journal.open([]);
    expect(await rejectionOf(readCheckpoint(store))).toBeInstanceOf(CheckpointInUseError);
    await journal.close(true);
    expect(await readCheckpoint(store)).toEqual({ done: 0, failed: [], complete: true });
  });

  it("reads an asynchronous store", async () => {
    const store = new MemoryStore("async");
    await drive(store, [1, 2], work);
    expect(await readCheckpoint(store)).toMatchObject({ done: 2, complete: true });
    expect(store.open).toBe(false);
  });
});
