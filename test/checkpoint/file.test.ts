/**
 * `fileCheckpoint`: the store alone (the journal's records are opaque to it). Options, the
 * round trip, group flushing on fake timers, torn tails cut before appending, damage, clear,
 * close and reopen, failures of the file system.
 */
import { existsSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import {
  CheckpointCorruptError,
  CheckpointInUseError,
  fileCheckpoint,
  type FileCheckpoint,
} from "../../src/checkpoint/index.js";
import { frameLine } from "../../src/checkpoint/format.js";
import { rejectionOf } from "../support/promises.js";
import { temporaryFolder, writeRecords } from "./support.js";

let folder: ReturnType<typeof temporaryFolder>;
const opened: FileCheckpoint[] = [];

/** A store on `name` in the test's folder, closed after the test. */
function store(name = "c.ckpt", options?: Parameters<typeof fileCheckpoint>[1]): FileCheckpoint {
  const checkpoint = fileCheckpoint(folder.file(name), options);
  opened.push(checkpoint);
  return checkpoint;
}

beforeEach(() => {
  folder = temporaryFolder();
});
afterEach(async () => {
  vi.useRealTimers();
  for (const checkpoint of opened.splice(0)) await checkpoint.close().catch(() => undefined);
  folder.remove();
});

/** What reading the whole checkpoint throws. */
function loadFailure(checkpoint: FileCheckpoint): unknown {
  try {
    expect([...checkpoint.load()]).toBe("never reached");
  } catch (error) {
    return error;
  }
  return undefined;
}

function sizeOf(path: string): number {
  return existsSync(path) ? statSync(path).size : 0;
}

describe("fileCheckpoint options", () => {
  it("has defaults, readable on the store, and touches no file", () => {
    const checkpoint = fileCheckpoint(folder.file("c.ckpt"));
    expect(checkpoint.path).toBe(folder.file("c.ckpt"));
    expect(checkpoint.flushEvery).toBe(200);
    expect(checkpoint.clearOnSuccess).toBe(false);
    expect(existsSync(folder.file("c.ckpt"))).toBe(false);
    expect(existsSync(folder.file("c.ckpt.lock"))).toBe(false);
  });

  it("takes flushEvery > 0 or Infinity, and clearOnSuccess", () => {
    expect(fileCheckpoint("x", { flushEvery: 0.5 }).flushEvery).toBe(0.5);
    expect(fileCheckpoint("x", { flushEvery: Infinity }).flushEvery).toBe(Infinity);
    expect(fileCheckpoint("x", { clearOnSuccess: true }).clearOnSuccess).toBe(true);
    expect(fileCheckpoint("x", { flushEvery: undefined }).flushEvery).toBe(200);
  });

  it.each([
    [{ flushEvery: 0 }, RangeError, "flushEvery must be greater than 0, got 0"],
    [{ flushEvery: -1 }, RangeError, "flushEvery must be greater than 0, got -1"],
    [{ flushEvery: NaN }, RangeError, "flushEvery must be greater than 0, got NaN"],
    [{ flushEvery: "200" }, TypeError, 'flushEvery must be a number, got "200"'],
    [{ clearOnSuccess: 1 }, TypeError, "clearOnSuccess must be a boolean, got 1"],
    [{ flushEvry: 100 }, TypeError, 'unknown option "flushEvry" (did you mean "flushEvery"?)'],
    ["fast", TypeError, 'options must be an object, got "fast"'],
  ])("refuses %j", (options, type, message) => {
    expect(() => fileCheckpoint("x", options as never)).toThrow(type);
    expect(() => fileCheckpoint("x", options as never)).toThrow(message);
  });

  it.each([
    [undefined, TypeError, "path must be a string, got undefined"],
    [new URL("file:///tmp/x"), TypeError, "path must be a string, got an object"],
    ["", RangeError, "path must not be empty"],
  ])("refuses the path %j", (path, type, message) => {
    expect(() => fileCheckpoint(path as never)).toThrow(type);
    expect(() => fileCheckpoint(path as never)).toThrow(message);
  });
});

describe("fileCheckpoint records", () => {
  it("loads nothing from a missing file and creates none until something is written", async () => {
    const checkpoint = store();
    expect([...checkpoint.load()]).toEqual([]);
    expect(existsSync(folder.file("c.ckpt.lock"))).toBe(true);
    await checkpoint.flush();
    await checkpoint.close();
    expect(existsSync(folder.file("c.ckpt"))).toBe(false);
    expect(existsSync(folder.file("c.ckpt.lock"))).toBe(false);
  });

  it("gives back equal records in append order after close and reopen", async () => {
    const records = [{ header: true }, { i: 0, o: "héllo €𝄞" }, [1, null, "x"], 42, "text", null];
    const first = store();
    first.load();
    for (const record of records) first.append(record);
    await first.close();
    expect([...store().load()]).toEqual(records);
  });

  it("can be opened again after close, by the same object", async () => {
    const checkpoint = store();
    checkpoint.load();
    checkpoint.append({ n: 1 });
    await checkpoint.close();
    expect([...checkpoint.load()]).toEqual([{ n: 1 }]);
    checkpoint.append({ n: 2 });
    await checkpoint.close();
    expect([...checkpoint.load()]).toEqual([{ n: 1 }, { n: 2 }]);
  });

  it("loads again while open (a second read), seeing what was written", async () => {
    const checkpoint = store();
    checkpoint.load();
    checkpoint.append({ n: 1 });
    await checkpoint.flush();
    expect([...checkpoint.load()]).toEqual([{ n: 1 }]);
  });

  it("a read begun before the first write and ended after it does not move where records end", async () => {
    writeRecords(folder.file("c.ckpt"), [{ n: 1 }, { n: 2 }]);
    const checkpoint = store();
    const first = checkpoint.load()[Symbol.iterator]();
    expect(first.next().value).toEqual({ n: 1 });
    // A second read, begun now, finishes after the first write.
    const second = checkpoint.load()[Symbol.iterator]();
    while (first.next().done !== true) {
      // Read to the end.
    }
    checkpoint.append({ n: 3 });
    await checkpoint.flush();
    const rest: unknown[] = [];
    for (let step = second.next(); step.done !== true; step = second.next()) rest.push(step.value);
    expect(rest).toEqual([{ n: 1 }, { n: 2 }, { n: 3 }]);
    checkpoint.append({ n: 4 });
    await checkpoint.close();
    expect([...store("c.ckpt").load()]).toEqual([{ n: 1 }, { n: 2 }, { n: 3 }, { n: 4 }]);
  });

  it("appends without a load first, after the records already there", async () => {
    writeRecords(folder.file("c.ckpt"), [{ n: 1 }], frameLine('{"n":"torn"}').slice(0, 5));
    const checkpoint = store();
    checkpoint.append({ n: 2 });
    await checkpoint.close();
    expect([...store("c.ckpt").load()]).toEqual([{ n: 1 }, { n: 2 }]);
  });

  it("refuses a record JSON cannot write", () => {
    const checkpoint = store();
    expect(() => {
      checkpoint.append(undefined);
    }).toThrow("a checkpoint record must be JSON-safe, got undefined");
    expect(() => {
      checkpoint.append(10n);
    }).toThrow(TypeError);
  });
});

describe("fileCheckpoint group flushing", () => {
  it("writes a group when its oldest record is flushEvery ms old, with a timer only while records wait", async () => {
    vi.useFakeTimers();
    const checkpoint = store("c.ckpt", { flushEvery: 100 });
    checkpoint.load();
    expect(vi.getTimerCount()).toBe(0);
    checkpoint.append({ n: 1 });
    expect(vi.getTimerCount()).toBe(1);
    vi.advanceTimersByTime(60);
    checkpoint.append({ n: 2 }); // joins the group: no second timer
    expect(vi.getTimerCount()).toBe(1);
    vi.advanceTimersByTime(39);
    expect(sizeOf(folder.file("c.ckpt"))).toBe(0);
    vi.advanceTimersByTime(1);
    expect(readFileSync(folder.file("c.ckpt"), "utf8")).toBe(
      frameLine('{"n":1}') + frameLine('{"n":2}'),
    );
    expect(vi.getTimerCount()).toBe(0);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(vi.getTimerCount()).toBe(0);
    checkpoint.append({ n: 3 });
    expect(vi.getTimerCount()).toBe(1);
    await checkpoint.close();
    expect(vi.getTimerCount()).toBe(0);
    expect([...store("c.ckpt").load()]).toEqual([{ n: 1 }, { n: 2 }, { n: 3 }]);
  });

  it("flush writes at once and cancels the group's timer", async () => {
    vi.useFakeTimers();
    const checkpoint = store("c.ckpt", { flushEvery: 100 });
    checkpoint.append({ n: 1 });
    await checkpoint.flush();
    expect(vi.getTimerCount()).toBe(0);
    expect(readFileSync(folder.file("c.ckpt"), "utf8")).toBe(frameLine('{"n":1}'));
  });

  it("with flushEvery Infinity, sets no timer and writes on flush, or every 1 MiB", async () => {
    vi.useFakeTimers();
    const checkpoint = store("c.ckpt", { flushEvery: Infinity });
    checkpoint.append({ n: 1 });
    expect(vi.getTimerCount()).toBe(0);
    expect(sizeOf(folder.file("c.ckpt"))).toBe(0);
    const big = "x".repeat(64 * 1024);
    for (let n = 0; n < 16; n++) checkpoint.append(big);
    expect(sizeOf(folder.file("c.ckpt"))).toBeGreaterThan(1024 * 1024);
    await checkpoint.close();
    expect([...store("c.ckpt").load()]).toHaveLength(17);
  });

  it("serves a flushEvery longer than setTimeout's limit", async () => {
    vi.useFakeTimers();
    const checkpoint = store("c.ckpt", { flushEvery: 2 ** 32 });
    checkpoint.append({ n: 1 });
    vi.advanceTimersByTime(2 ** 31);
    expect(sizeOf(folder.file("c.ckpt"))).toBe(0);
    vi.advanceTimersByTime(2 ** 31);
    expect(sizeOf(folder.file("c.ckpt"))).toBeGreaterThan(0);
  });

  it("waits for an fsync under way, and starts another for writes it did not cover", async () => {
    const checkpoint = store();
    checkpoint.append({ n: 1 });
    const first = checkpoint.flush();
    checkpoint.append({ n: 2 });
    const second = checkpoint.flush();
    const third = checkpoint.flush(); // nothing new: shares the second's fsync
    await Promise.all([first, second, third]);
    await checkpoint.close();
    expect([...store("c.ckpt").load()]).toEqual([{ n: 1 }, { n: 2 }]);
  });
});

describe("fileCheckpoint damage", () => {
  it("skips a torn last record on load and cuts it off before the next write", async () => {
    const torn = frameLine('{"n":"torn"}').slice(0, 14);
    writeRecords(folder.file("c.ckpt"), [{ n: 1 }, { n: 2 }], torn);
    const checkpoint = store();
    expect([...checkpoint.load()]).toEqual([{ n: 1 }, { n: 2 }]);
    expect(readFileSync(folder.file("c.ckpt"), "utf8").endsWith(torn)).toBe(true);
    checkpoint.append({ n: 3 });
    await checkpoint.close();
    expect(readFileSync(folder.file("c.ckpt"), "utf8")).toBe(
      frameLine('{"n":1}') + frameLine('{"n":2}') + frameLine('{"n":3}'),
    );
  });

  it("cuts a torn header (the crash came during the first write)", async () => {
    writeFileSync(folder.file("c.ckpt"), frameLine('{"header":1}').slice(0, 20));
    const checkpoint = store();
    expect([...checkpoint.load()]).toEqual([]);
    checkpoint.append({ header: 2 });
    await checkpoint.close();
    expect([...store("c.ckpt").load()]).toEqual([{ header: 2 }]);
  });

  it("rejects a changed byte with the path as given and the record's offset, writing nothing", async () => {
    writeRecords(folder.file("c.ckpt"), [{ n: 1 }, { price: 10 }, { n: 3 }]);
    const before = readFileSync(folder.file("c.ckpt"));
    const damaged = Buffer.from(before);
    const offset = frameLine('{"n":1}').length;
    damaged[offset + 19] = "9".charCodeAt(0); // {"price":10} → {"price":90}
    writeFileSync(folder.file("c.ckpt"), damaged);
    const checkpoint = store();
    const error = loadFailure(checkpoint);
    expect(error).toBeInstanceOf(CheckpointCorruptError);
    expect(error).toMatchObject({ path: folder.file("c.ckpt"), offset, record: 1 });
    // Appending anyway: the write finds the damage and refuses to write after it.
    checkpoint.append({ n: 4 });
    expect(await rejectionOf(checkpoint.close())).toBeInstanceOf(CheckpointCorruptError);
    expect(readFileSync(folder.file("c.ckpt"))).toEqual(damaged);
    expect(existsSync(folder.file("c.ckpt.lock"))).toBe(false);
  });

  it("rejects a damaged header at offset 0", () => {
    writeRecords(folder.file("c.ckpt"), [{ format: "x" }, { n: 1 }]);
    const bytes = readFileSync(folder.file("c.ckpt"));
    bytes[3] = bytes[3] === 0x30 ? 0x31 : 0x30; // a digit of its checksum
    writeFileSync(folder.file("c.ckpt"), bytes);
    const error = loadFailure(store());
    expect(error).toBeInstanceOf(CheckpointCorruptError);
    expect(error).toMatchObject({ offset: 0, record: 0 });
  });
});

describe("fileCheckpoint clear and close", () => {
  it("clear deletes the file, taking the lock for the time it takes", async () => {
    writeRecords(folder.file("c.ckpt"), [{ n: 1 }]);
    await store().clear();
    expect(existsSync(folder.file("c.ckpt"))).toBe(false);
    expect(existsSync(folder.file("c.ckpt.lock"))).toBe(false);
    await store().clear(); // nothing to delete
  });

  it("clear of an open store drops what waits and starts a new file with the next record", async () => {
    const checkpoint = store("c.ckpt", { flushEvery: Infinity });
    checkpoint.load();
    checkpoint.append({ n: 1 });
    await checkpoint.flush();
    checkpoint.append({ n: 2 });
    await checkpoint.clear();
    expect(existsSync(folder.file("c.ckpt"))).toBe(false);
    expect(existsSync(folder.file("c.ckpt.lock"))).toBe(true);
    checkpoint.append({ n: 3 });
    await checkpoint.close();
    expect([...store("c.ckpt").load()]).toEqual([{ n: 3 }]);
  });

  it("clear refuses a checkpoint in use", async () => {
    store().load();
    const error = await rejectionOf(store().clear());
    expect(error).toBeInstanceOf(CheckpointInUseError);
  });

  it("close ends a read under way and releases the lock; a second close does nothing", async () => {
    writeRecords(folder.file("c.ckpt"), [{ n: 1 }, { n: 2 }]);
    const checkpoint = store();
    const reader = checkpoint.load()[Symbol.iterator]();
    expect(reader.next().value).toEqual({ n: 1 });
    await checkpoint.close();
    expect(reader.next().done).toBe(true);
    expect(existsSync(folder.file("c.ckpt.lock"))).toBe(false);
    await checkpoint.close();
  });

  it("a failed write fails the next append, flush and close, and close still releases", async () => {
    vi.useFakeTimers();
    // A folder where the file should be: opening it for appending fails.
    const checkpoint = fileCheckpoint(folder.dir, { flushEvery: 10 });
    checkpoint.append({ n: 1 });
    vi.advanceTimersByTime(10);
    expect(() => {
      checkpoint.append({ n: 2 });
    }).toThrow(/EISDIR|illegal operation/);
    await expect(checkpoint.flush()).rejects.toThrow(/EISDIR|illegal operation/);
    await expect(checkpoint.close()).rejects.toThrow(/EISDIR|illegal operation/);
    expect(existsSync(`${folder.dir}.lock`)).toBe(false);
  });
});
