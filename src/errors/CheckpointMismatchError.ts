import { brandClass } from "./brand.js";
import { PipelineError } from "./PipelineError.js";

/**
 * What a {@link CheckpointMismatchError} found different between the checkpoint and the batch
 * that opened it:
 *
 * - `"stages"`: the pipeline's stage names (or their order);
 * - `"version"`: the batch's `version` option (absent equals absent only);
 * - `"identity"`: one was written with `itemKey`, the other runs without (or the other way round);
 * - `"input"`: without `itemKey`, an item at a recorded position is not the recorded one (its
 *   hash differs), or the input ends before a recorded position;
 * - `"format"`: the checkpoint was written in a format this version of the library does not read.
 *
 * @example
 * ```ts
 * import { CheckpointMismatchError, type CheckpointMismatch } from "async-pipeline/checkpoint";
 *
 * function whatChanged(error: unknown): CheckpointMismatch | undefined {
 *   return error instanceof CheckpointMismatchError ? error.mismatch : undefined;
 * }
 * ```
 */
export type CheckpointMismatch = "stages" | "version" | "identity" | "input" | "format";

/**
 * A checkpoint was written by another pipeline, another `version`, another identity mode or
 * (without `itemKey`) for another input: resuming from it would give results that are not this
 * batch's. Found before any item runs; the checkpoint is left as it was.
 *
 * `recorded` is what the checkpoint holds and `current` what this batch has: stage-name arrays
 * for `"stages"`, version strings (or `undefined`) for `"version"`, `"key"` or `"position"` for
 * `"identity"`, the items' hashes for `"input"` (`current` is `undefined` when the input ended
 * first), format numbers for `"format"`.
 *
 * @example
 * ```ts
 * import { Pipeline, Stage } from "async-pipeline";
 * import { CheckpointMismatchError, fileCheckpoint } from "async-pipeline/checkpoint";
 *
 * declare const pipeline: Pipeline<string, number>;
 * declare const lines: string[];
 *
 * try {
 *   await pipeline.map(lines, { checkpoint: fileCheckpoint("prices.ckpt") });
 * } catch (error) {
 *   if (error instanceof CheckpointMismatchError && error.mismatch === "input") {
 *     console.error(`line ${error.index} changed since the checkpoint was written`);
 *   }
 *   throw error;
 * }
 * ```
 */
export class CheckpointMismatchError extends PipelineError {
  /** Always `"CheckpointMismatchError"`. */
  override name = "CheckpointMismatchError" as const;

  /** What differs. */
  readonly mismatch: CheckpointMismatch;

  /** What the checkpoint holds (see the class's description for each kind of mismatch). */
  readonly recorded: unknown;

  /** What this batch has; `undefined` for an input that ended before a recorded position. */
  readonly current: unknown;

  /** For `"input"`: the input position that does not match; otherwise `undefined`. */
  readonly index: number | undefined;

  /**
   * @param mismatch - what differs
   * @param recorded - what the checkpoint holds
   * @param current - what this batch has
   * @param index - for `"input"`, the position that does not match
   */
  constructor(mismatch: CheckpointMismatch, recorded: unknown, current: unknown, index?: number) {
    super(describe(mismatch, recorded, current, index));
    this.mismatch = mismatch;
    this.recorded = recorded;
    this.current = current;
    this.index = index;
  }
}

// `instanceof CheckpointMismatchError` holds for an instance made by any copy of the library.
brandClass(CheckpointMismatchError, "CheckpointMismatchError");

const START_OVER = "clear the checkpoint to start over";

function describe(
  mismatch: CheckpointMismatch,
  recorded: unknown,
  current: unknown,
  index: number | undefined,
): string {
  switch (mismatch) {
    case "stages":
      return `The checkpoint was written by a pipeline with stages ${JSON.stringify(recorded)}, but this one has ${JSON.stringify(current)}: resume with the same pipeline, or ${START_OVER}`;
    case "version":
      return `The checkpoint was written by ${version(recorded)}, but this batch runs ${version(current)}: resume with the same version, or ${START_OVER}`;
    case "identity":
      return recorded === "key"
        ? `The checkpoint identifies items by itemKey, but this batch gives no itemKey: give the same itemKey, or ${START_OVER}`
        : `The checkpoint identifies items by their input position, but this batch gives an itemKey: resume without itemKey, or ${START_OVER}`;
    case "input":
      return current === undefined
        ? `The input ends before position ${String(index)}, which the checkpoint recorded: without itemKey, a resumed batch must read the same input in the same order (give an itemKey to allow a changed input, or ${START_OVER})`
        : `The item at position ${String(index)} is not the one the checkpoint recorded there (its hash differs): without itemKey, a resumed batch must read the same input in the same order (give an itemKey to allow a changed input, or ${START_OVER})`;
    case "format":
      return `The checkpoint was written in format ${JSON.stringify(recorded)}, but this version of async-pipeline reads format ${JSON.stringify(current)}`;
  }
}

function version(value: unknown): string {
  return value === undefined ? "no version" : `version ${JSON.stringify(value)}`;
}
