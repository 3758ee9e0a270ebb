import { brandClass } from "./brand.js";
import { PipelineError } from "./PipelineError.js";

/**
 * An attempt outlived its stage's `timeout`.
 *
 * A timed-out attempt counts as a failure: it is retried when the stage has retries left, and
 * otherwise reaches the caller as the `originalError` of a {@link StageExecutionError}. The
 * handler's `call.signal` aborts with this error as its reason.
 *
 * @example
 * ```ts
 * import { Stage, StageExecutionError, TimeoutError } from "async-pipeline";
 *
 * const slow = new Stage("slow", () => new Promise<never>(() => {}), { timeout: 100 });
 * try {
 *   await slow.run(1);
 * } catch (error) {
 *   if (error instanceof StageExecutionError && error.originalError instanceof TimeoutError) {
 *     error.originalError.timeout; // 100
 *   }
 * }
 * ```
 */
export class TimeoutError extends PipelineError {
  /** Always `"TimeoutError"`. */
  override name = "TimeoutError" as const;

  /** The name of the stage (or middleware) whose attempt timed out. */
  readonly stageName: string;

  /** The limit that was exceeded, in milliseconds. */
  readonly timeout: number;

  constructor(stageName: string, timeout: number) {
    super(`Stage "${stageName}" timed out after ${String(timeout)} ms`);
    this.stageName = stageName;
    this.timeout = timeout;
  }
}

// `instanceof TimeoutError` holds for an instance made by any copy of the library.
brandClass(TimeoutError, "TimeoutError");
