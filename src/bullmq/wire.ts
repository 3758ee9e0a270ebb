/**
 * The wire format shared by the producer ({@link PipelineQueue}) and the workers
 * ({@link PipelineWorker}): job payloads, a batch's meta record, result records, done-list
 * entries and stop announcements. Both sides import this one file, so they cannot drift apart.
 */
import { StageExecutionError } from "../index.js";
import { errorFromRecord, errorToRecord, type ErrorRecord } from "../internal/error-json.js";
import { PipelineMismatchError } from "./errors.js";

/**
 * What a job carries: the item, as its data. Its batch and index are in its id (see
 * `jobId`), what the batch shares in the batch's meta record.
 */
export type JobData = unknown;

/** What every job of a batch shares, written once per run in the batch's meta hash. */
export interface BatchMeta {
  /** The run's id: a producer that starts (or resumes) the batch writes a new one. */
  readonly run: string;
  /** The producer's stage names, in order. */
  readonly stages: readonly string[];
  /** The producer's `version`. */
  readonly version: string | undefined;
  /** The context template as JSON, when the batch has one. */
  readonly context: string | undefined;
  /** `map` and a stream without `settled`: the first failure stops the batch. */
  readonly failFast: boolean;
  /** Named by the caller (resumable): a job's result may be in Redis before it runs. */
  readonly named: boolean;
}

/** The meta hash's fields for `meta` (the order {@link metaFromFields} reads them in). */
export function metaFields(meta: BatchMeta): string[] {
  return [
    "g",
    meta.run,
    "s",
    JSON.stringify(meta.stages),
    "v",
    meta.version ?? "",
    "x",
    meta.version === undefined ? "0" : "1",
    "c",
    meta.context ?? "",
    "f",
    meta.failFast ? "1" : "0",
    "n",
    meta.named ? "1" : "0",
  ];
}

/** The meta hash's field names, in the order {@link metaFromFields} takes their values. */
export const META_FIELDS = ["g", "s", "v", "x", "c", "f", "n"] as const;

/** The meta record from the values of {@link META_FIELDS}, as `HMGET` returns them. */
export function metaFromFields(values: readonly (string | null)[]): BatchMeta {
  const [run, stages, version, hasVersion, context, failFast, named] = values;
  return {
    run: run ?? "",
    stages: JSON.parse(stages ?? "[]") as string[],
    version: hasVersion === "1" ? (version ?? "") : undefined,
    context: context === null || context === undefined || context === "" ? undefined : context,
    failFast: failFast === "1",
    named: named === "1",
  };
}

/** A stop announcement: the batch and the run it stops. */
export function stopMessage(batchId: string, run: string): string {
  return `${batchId}:${run}`;
}

/** The batch and run of a stop announcement. */
export function parseStopMessage(message: string): { batchId: string; run: string } {
  const at = message.indexOf(":");
  return { batchId: message.slice(0, at), run: message.slice(at + 1) };
}

/**
 * One item's outcome, stored in the batch's results hash under the item's index: a value
 * (`ok`), a stage failure (`stage`), or another failure (`error`: a middleware, an output that is
 * not JSON-safe, a pipeline that is not the producer's).
 */
export type ResultRecord =
  | { readonly ok: unknown }
  | {
      readonly stage: {
        readonly name: string;
        readonly attempts: number;
        readonly error: ErrorRecord;
      };
    }
  | { readonly error: ErrorRecord };

/** True when `record` is a failure. */
export function isFailure(record: ResultRecord): boolean {
  return !("ok" in record);
}

/** What a worker pushes on the done list for an item it cancelled instead of settling. */
export function cancelledEntry(index: number): string {
  return `c${String(index)}`;
}

/** A done-list entry: the item's index and whether it was cancelled (no result). */
export function parseDoneEntry(entry: string): { index: number; cancelled: boolean } {
  const cancelled = entry.startsWith("c");
  return { index: Number(cancelled ? entry.slice(1) : entry), cancelled };
}

/** A `TypeError` for the item at `index` (or its output) that is not JSON-safe. */
export function notJsonSafe(what: string, index: number, problem: string): TypeError {
  return new TypeError(
    `${what} at index ${String(index)} is not JSON-safe (${problem}): items, context templates and outputs travel as JSON`,
  );
}

/** The record of an item that failed with `error` on a worker. */
export function failureRecord(error: unknown): ResultRecord {
  if (error instanceof StageExecutionError) {
    return {
      stage: {
        name: error.stageName,
        attempts: error.attempts,
        error: errorToRecord(error.originalError),
      },
    };
  }
  return { error: errorToRecord(error) };
}

/**
 * A remote error rebuilt: the library's own classes as themselves (so that `instanceof`
 * works), any other as an `Error` (see `errorFromRecord`).
 */
export function fromErrorRecord(record: ErrorRecord): Error {
  const error = errorFromRecord(record);
  if (record.name !== "PipelineMismatchError") return error;
  const fields = (record.fields ?? {}) as Partial<PipelineMismatchError>;
  const rebuilt = new PipelineMismatchError(
    { stages: fields.producerStages ?? [], version: fields.producerVersion },
    { stages: fields.workerStages ?? [], version: fields.workerVersion },
  );
  rebuilt.message = record.message;
  if (record.stack === undefined) delete rebuilt.stack;
  else rebuilt.stack = record.stack;
  return rebuilt;
}

/** The settled result a record stands for on the producer. */
export function settle(record: ResultRecord): PromiseSettledResult<unknown> {
  if ("ok" in record) return { status: "fulfilled", value: record.ok };
  if ("stage" in record) {
    const { name, attempts, error } = record.stage;
    return {
      status: "rejected",
      reason: new StageExecutionError(name, fromErrorRecord(error), attempts),
    };
  }
  return { status: "rejected", reason: fromErrorRecord(record.error) };
}

/** True when the worker's stage names are the job's, in the same order. */
export function sameStages(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((name, index) => name === b[index]);
}
