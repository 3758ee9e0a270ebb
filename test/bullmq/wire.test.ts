/** The wire format's pure parts: result records, done entries, meta records, stop messages. */
import { describe, expect, it } from "vitest";
import { StageExecutionError } from "../../src/index.js";
import { PipelineMismatchError } from "../../src/bullmq/index.js";
import {
  failureRecord,
  META_FIELDS,
  metaFields,
  metaFromFields,
  parseDoneEntry,
  parseStopMessage,
  settle,
  stopMessage,
} from "../../src/bullmq/wire.js";
import { jobId, parseJobId, randomBatchId } from "../../src/bullmq/keys.js";

describe("records on the wire", () => {
  it("turns records back into settled results", () => {
    const stage = settle(failureRecord(new StageExecutionError("fetch", "down", 3)));
    expect(stage.status).toBe("rejected");
    const reason = (stage as PromiseRejectedResult).reason as StageExecutionError;
    expect(reason.attempts).toBe(3);
    expect((reason.originalError as Error).message).toBe("down");
    expect(settle(failureRecord(new RangeError("r")))).toEqual({
      status: "rejected",
      reason: new RangeError("r"),
    });
    expect(settle({ ok: 5 })).toEqual({ status: "fulfilled", value: 5 });
    expect(parseDoneEntry("c12")).toEqual({ index: 12, cancelled: true });
    expect(parseDoneEntry("7")).toEqual({ index: 7, cancelled: false });
  });

  it("rebuilds a PipelineMismatchError as itself, with both sides' stages and versions", () => {
    const sent = new PipelineMismatchError(
      { stages: ["a"], version: "2" },
      { stages: ["a"], version: undefined },
    );
    const record = JSON.parse(JSON.stringify(failureRecord(sent))) as Parameters<typeof settle>[0];
    const reason = (settle(record) as PromiseRejectedResult).reason as PipelineMismatchError;
    expect(reason).toBeInstanceOf(PipelineMismatchError);
    expect(reason.message).toBe(sent.message);
    expect(reason.stack).toBe(sent.stack);
    expect(reason.producerVersion).toBe("2");
    expect(reason.workerVersion).toBeUndefined();
    expect(reason.producerStages).toEqual(["a"]);
    expect(reason.workerStages).toEqual(["a"]);
    const bare = settle({ error: { name: "PipelineMismatchError", message: "m" } });
    const rebuilt = (bare as PromiseRejectedResult).reason as PipelineMismatchError;
    expect(rebuilt.message).toBe("m");
    expect(rebuilt.stack).toBeUndefined();
    expect(rebuilt.producerStages).toEqual([]);
  });

  it("round-trips a batch's meta record and stop messages", () => {
    const meta = {
      run: "r1",
      stages: ["parse", "price"],
      version: "",
      context: '{"tenant":"acme"}',
      failFast: true,
      named: false,
    };
    const fields = metaFields(meta);
    const byName = new Map<string, string>();
    for (let at = 0; at < fields.length; at += 2) byName.set(fields[at]!, fields[at + 1]!);
    expect(metaFromFields(META_FIELDS.map((name) => byName.get(name) ?? null))).toEqual(meta);
    const bare = { ...meta, version: undefined, context: undefined, failFast: false };
    const bareFields = metaFields(bare);
    const bareByName = new Map<string, string>();
    for (let at = 0; at < bareFields.length; at += 2) {
      bareByName.set(bareFields[at]!, bareFields[at + 1]!);
    }
    expect(metaFromFields(META_FIELDS.map((name) => bareByName.get(name) ?? null))).toEqual(bare);
    expect(parseStopMessage(stopMessage("nightly", "r1"))).toEqual({
      batchId: "nightly",
      run: "r1",
    });
  });
});

describe("job ids", () => {
  it("name the batch and the item, whatever dashes the batch id holds", () => {
    expect(parseJobId(jobId("nightly-2026-12-01", 42))).toEqual({
      batchId: "nightly-2026-12-01",
      index: 42,
    });
    expect(parseJobId(jobId("a-", 0))).toEqual({ batchId: "a-", index: 0 });
    expect(parseJobId("x--1")).toEqual({ batchId: "x-", index: 1 });
    for (const foreign of [undefined, "manual", "-3", "x-", "x-1.5", "x-+1", "x-1e3"]) {
      expect(parseJobId(foreign)).toBeUndefined();
    }
    const ids = new Set(Array.from({ length: 100 }, () => randomBatchId()));
    expect(ids.size).toBe(100);
    for (const id of ids) expect(id).toMatch(/^[0-9a-f]{16}$/);
  });
});
