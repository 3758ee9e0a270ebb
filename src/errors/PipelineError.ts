import { brandOf, hasBrand } from "./brand.js";

const brand = brandOf("PipelineError");

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

  /**
   * Makes `value instanceof PipelineError` true for an instance created by any copy of the
   * library (the ESM or the CommonJS build, any entry point), not only by this one.
   */
  static override [Symbol.hasInstance](value: unknown): boolean {
    return hasBrand(this, PipelineError, brand, value);
  }
}

Object.defineProperty(PipelineError.prototype, brand, { value: true });
