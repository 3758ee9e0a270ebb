import { describe, expectTypeOf, it } from "vitest";
import type { CheckpointStore } from "../../src/index.js";
import { PipelineError } from "../../src/index.js";
import {
  CheckpointCorruptError,
  CheckpointInUseError,
  CheckpointMismatchError,
  fileCheckpoint,
  readCheckpoint,
  type CheckpointHolder,
  type CheckpointMismatch,
  type CheckpointReport,
  type FileCheckpoint,
  type RecordedError,
} from "../../src/checkpoint/index.js";

describe("CheckpointStore", () => {
  it("takes synchronous and asynchronous implementations", () => {
    const sync: CheckpointStore = {
      load: () => [],
      append: () => undefined,
      flush: () => undefined,
      close: () => undefined,
      clear: () => undefined,
    };
    const async: CheckpointStore = {
      load: async () => (async function* () {})(),
      append: async () => undefined,
      flush: async () => undefined,
      close: async () => undefined,
      clear: async () => undefined,
      clearOnSuccess: true,
    };
    expectTypeOf(sync).toEqualTypeOf<CheckpointStore>();
    expectTypeOf(async).toEqualTypeOf<CheckpointStore>();
    expectTypeOf<ReturnType<(typeof async)["load"]>>().toExtend<
      | Iterable<unknown>
      | AsyncIterable<unknown>
      | Promise<Iterable<unknown> | AsyncIterable<unknown>>
    >();
    expectTypeOf({
      load: () => [],
      append: () => undefined,
      flush: () => undefined,
      close: () => undefined,
    }).not.toExtend<CheckpointStore>();
  });
});

describe("fileCheckpoint", () => {
  it("returns a CheckpointStore with its settings readable", () => {
    const checkpoint = fileCheckpoint("prices.ckpt", { flushEvery: 500, clearOnSuccess: true });
    expectTypeOf(checkpoint).toEqualTypeOf<FileCheckpoint>();
    expectTypeOf(checkpoint).toExtend<CheckpointStore>();
    expectTypeOf(checkpoint.path).toEqualTypeOf<string>();
    expectTypeOf(checkpoint.flushEvery).toEqualTypeOf<number>();
    expectTypeOf(checkpoint.load()).toEqualTypeOf<Iterable<unknown>>();
    expectTypeOf(checkpoint.flush()).toEqualTypeOf<Promise<void>>();
    // @ts-expect-error -- flushEvery is a number of ms
    fileCheckpoint("x", { flushEvery: "1s" });
    // @ts-expect-error -- unknown option
    fileCheckpoint("x", { flushEvry: 1 });
    // @ts-expect-error -- the path is a string
    fileCheckpoint(new URL("file:///x"));
  });
});

describe("readCheckpoint", () => {
  it("resolves with the report", () => {
    expectTypeOf(readCheckpoint).parameter(0).toEqualTypeOf<CheckpointStore>();
    expectTypeOf(readCheckpoint).returns.toEqualTypeOf<Promise<CheckpointReport>>();
    expectTypeOf<CheckpointReport["done"]>().toEqualTypeOf<number>();
    expectTypeOf<CheckpointReport["complete"]>().toEqualTypeOf<boolean>();
    expectTypeOf<CheckpointReport["failed"][number]["key"]>().toEqualTypeOf<string | number>();
    expectTypeOf<CheckpointReport["failed"][number]["error"]>().toEqualTypeOf<RecordedError>();
    expectTypeOf<RecordedError["stageName"]>().toEqualTypeOf<string | undefined>();
    expectTypeOf<RecordedError["status"]>().toEqualTypeOf<unknown>();
  });
});

describe("the checkpoint errors", () => {
  it("extend PipelineError and type their fields", () => {
    expectTypeOf<CheckpointMismatchError>().toExtend<PipelineError>();
    expectTypeOf<CheckpointCorruptError>().toExtend<PipelineError>();
    expectTypeOf<CheckpointInUseError>().toExtend<PipelineError>();
    expectTypeOf<CheckpointMismatchError["name"]>().toEqualTypeOf<"CheckpointMismatchError">();
    expectTypeOf<CheckpointMismatchError["mismatch"]>().toEqualTypeOf<CheckpointMismatch>();
    expectTypeOf<CheckpointMismatchError["index"]>().toEqualTypeOf<number | undefined>();
    expectTypeOf<CheckpointCorruptError["offset"]>().toEqualTypeOf<number | undefined>();
    expectTypeOf<CheckpointCorruptError["path"]>().toEqualTypeOf<string | undefined>();
    expectTypeOf<CheckpointInUseError["holder"]>().toEqualTypeOf<CheckpointHolder | undefined>();
    expectTypeOf<CheckpointHolder["pid"]>().toEqualTypeOf<number>();
  });
});
