/**
 * The wire format shared by the producer ({@link PipelineQueue}) and the workers
 * ({@link PipelineWorker}): key names, job payloads, result records, the JSON-safety check and
 * the round trip of errors. Both sides import this one file, so they cannot drift apart.
 */
import { StageExecutionError } from "../index.js";
import { errorFromRecord, errorToRecord, type ErrorRecord } from "../internal/error-json.js";
import { jsonProblem } from "../internal/json.js";

export { jsonProblem };

/** What a job carries: the batch, the item's index and value, the context template, the stages. */
export interface JobPayload {
  /** The batch id. */
  readonly b: string;
  /** The item's index in the input. */
  readonly i: number;
  /** The item. */
  readonly v: unknown;
  /** The context template, when the batch has one. */
  readonly c?: object | undefined;
  /** The producer's stage names, in order. */
  readonly s: readonly string[];
  /**
   * `1` for a batch named by the caller (resumable): another producer of it may have enqueued
   * the item before, so the worker checks Redis for its result before every run.
   */
  readonly r?: 1 | undefined;
}

/** An error as it travels: the parts that survive JSON (see `ErrorRecord`). */
export type WireError = ErrorRecord;

/**
 * One item's outcome, stored in the batch's results hash under the item's index: a value
 * (`ok`), a stage failure (`stage`), or another failure (`error`: a middleware, an output that is
 * not JSON-safe, a pipeline with other stage names).
 */
export type ResultRecord =
  | { readonly ok: unknown }
  | {
      readonly stage: {
        readonly name: string;
        readonly attempts: number;
        readonly error: WireError;
      };
    }
  | { readonly error: WireError };

/** The Redis keys of one queue and of one batch in it, under BullMQ's prefix. */
export class Keys {
  readonly #base: string;

  constructor(prefix: string, queueName: string) {
    this.#base = `${prefix}:${queueName}`;
  }

  /** The pub/sub channel on which producers announce stopped batches (message: the batch id). */
  get stopChannel(): string {
    return `${this.#base}:pipeline:stop`;
  }

  /** The hash of a batch's results: item index → {@link ResultRecord} as JSON. */
  results(batchId: string): string {
    return `${this.#base}:pipeline:${batchId}:results`;
  }

  /** The list on which workers push the index of each item they settled (or cancelled). */
  done(batchId: string): string {
    return `${this.#base}:pipeline:${batchId}:done`;
  }

  /** Set while a batch is stopping (failed fast or aborted): no job of it may start. */
  stop(batchId: string): string {
    return `${this.#base}:pipeline:${batchId}:stop`;
  }

  /** Bit `index` set: a streamed result that was yielded and then deleted (resume skips it). */
  yielded(batchId: string): string {
    return `${this.#base}:pipeline:${batchId}:yielded`;
  }

  /** BullMQ's hash of one job. */
  job(batchId: string, index: number): string {
    return `${this.#base}:${jobId(batchId, index)}`;
  }

  /** BullMQ's set of failed jobs of the queue. */
  get failed(): string {
    return `${this.#base}:failed`;
  }

  /** Every key of one batch that this library writes (BullMQ's job keys are removed by BullMQ). */
  batch(batchId: string): string[] {
    return [this.results(batchId), this.done(batchId), this.stop(batchId), this.yielded(batchId)];
  }
}

/** The BullMQ job id of an item: unique per batch and index, so a resumed batch reuses it. */
export function jobId(batchId: string, index: number): string {
  return `${batchId}-${String(index)}`;
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

/** The parts of a thrown value that travel. */
export const toWireError: (error: unknown) => WireError = errorToRecord;

/** The record of an item that failed with `error` on a worker. */
export function failureRecord(error: unknown): ResultRecord {
  if (error instanceof StageExecutionError) {
    return {
      stage: {
        name: error.stageName,
        attempts: error.attempts,
        error: toWireError(error.originalError),
      },
    };
  }
  return { error: toWireError(error) };
}

/** A remote error rebuilt as an `Error` (a built-in subclass when its name is one). */
export const fromWireError: (wire: WireError) => Error = errorFromRecord;

/** The settled result a record stands for on the producer. */
export function settle(record: ResultRecord): PromiseSettledResult<unknown> {
  if ("ok" in record) return { status: "fulfilled", value: record.ok };
  if ("stage" in record) {
    const { name, attempts, error } = record.stage;
    return {
      status: "rejected",
      reason: new StageExecutionError(name, fromWireError(error), attempts),
    };
  }
  return { status: "rejected", reason: fromWireError(record.error) };
}

/** Why a worker refuses a job enqueued for a pipeline with other stage names. */
export function stageMismatch(
  workerStages: readonly string[],
  jobStages: readonly string[],
): Error {
  const error = new Error(
    `The job was enqueued for a pipeline with stages ${JSON.stringify(jobStages)}, but this worker runs ${JSON.stringify(workerStages)}: run the same pipeline on the producer and the workers`,
  );
  error.name = "PipelineMismatchError";
  return error;
}

/** True when the worker's stage names are the job's, in the same order. */
export function sameStages(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((name, index) => name === b[index]);
}
