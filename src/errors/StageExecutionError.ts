import { brandClass } from "./brand.js";
import { PipelineError } from "./PipelineError.js";

/**
 * A stage's last attempt failed.
 *
 * Every failure of a stage (a thrown value, a rejected promise, a {@link TimeoutError}) reaches
 * the caller wrapped in this error, after any retries. Cancellation is not failure: when the
 * caller's `AbortSignal` aborts, the run rejects with `signal.reason` itself instead.
 *
 * @example
 * ```ts
 * import { Pipeline, Stage, StageExecutionError } from "async-pipeline";
 *
 * const pipeline = new Pipeline([
 *   new Stage("broken", (value: number): number => {
 *     throw new RangeError(`bad value ${value}`);
 *   }),
 * ]);
 *
 * try {
 *   await pipeline.run(1);
 * } catch (error) {
 *   if (error instanceof StageExecutionError) {
 *     error.stageName; // "broken"
 *     error.originalError; // the RangeError
 *     error.attempts; // 1
 *   }
 * }
 * ```
 */
export class StageExecutionError extends PipelineError {
  /** Always `"StageExecutionError"`. */
  override name = "StageExecutionError" as const;

  /** The name of the stage that failed. */
  readonly stageName: string;

  /** What the last attempt threw or rejected with, whatever its type (also in `cause`). */
  readonly originalError: unknown;

  /** How many attempts were made, the first included. */
  readonly attempts: number;

  constructor(stageName: string, originalError: unknown, attempts: number) {
    super(`Stage "${stageName}" failed: ${describe(originalError)}`, { cause: originalError });
    this.stageName = stageName;
    this.originalError = originalError;
    this.attempts = attempts;
  }
}

// `instanceof StageExecutionError` holds for an instance made by any copy of the library.
brandClass(StageExecutionError, "StageExecutionError");

/** The original error's message, or its string form; never throws, whatever was thrown. */
function describe(error: unknown): string {
  try {
    if (error instanceof Error) {
      const message: unknown = error.message;
      return typeof message === "string" && message !== "" ? message : error.name;
    }
    return String(error);
  } catch {
    try {
      return Object.prototype.toString.call(error);
    } catch {
      return "(an error that cannot be described)";
    }
  }
}
