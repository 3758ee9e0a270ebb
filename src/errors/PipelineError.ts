import { brandClass } from "./brand.js";

/**
 * The base class of every error this library creates.
 *
 * `instanceof PipelineError` is true for a {@link StageExecutionError} or a {@link TimeoutError}
 * whichever entry point or module format (ESM or CommonJS) created it.
 *
 * @example
 * ```ts
 * import { PipelineError } from "async-pipeline";
 *
 * try {
 *   await pipeline.run(input);
 * } catch (error) {
 *   if (error instanceof PipelineError) console.error("pipeline failed:", error.message);
 *   else throw error;
 * }
 * ```
 */
export class PipelineError extends Error {
  /** The class name: `"PipelineError"`, narrowed by each subclass to its own. */
  // Widened to `string` so that each subclass can narrow it to its own literal.
  // eslint-disable-next-line @typescript-eslint/no-inferrable-types
  override name: string = "PipelineError";
}

// `instanceof PipelineError` holds for an instance made by any copy of the library.
brandClass(PipelineError, "PipelineError");
