import type { Context } from "./types.js";

/**
 * Called before each stage, sync or async (awaited). Declare a third parameter to receive the
 * context. Its failures are ignored.
 *
 * @example
 * ```ts
 * import type { BeforeStageHook } from "async-pipeline";
 *
 * const before: BeforeStageHook = (stageName, input) => console.log(`→ ${stageName}`, input);
 * ```
 */
export type BeforeStageHook<C extends object = Context> = (
  stageName: string,
  input: unknown,
  context: C,
) => unknown;

/**
 * Called after each stage, sync or async (awaited), also when it failed or was cancelled. On
 * success `error` is `undefined`; on failure `output` is `undefined` and `error` is what the
 * stage threw (a `StageExecutionError`, a middleware's error, or the abort reason). Declare a
 * fifth parameter to receive the context. Its failures are ignored.
 *
 * @example
 * ```ts
 * import type { AfterStageHook } from "async-pipeline";
 *
 * const after: AfterStageHook = (stageName, _input, output, error) =>
 *   error === undefined ? console.log(`✓ ${stageName}`, output) : console.error(`✗ ${stageName}`, error);
 * ```
 */
export type AfterStageHook<C extends object = Context> = (
  stageName: string,
  input: unknown,
  output: unknown,
  error: unknown,
  context: C,
) => unknown;
