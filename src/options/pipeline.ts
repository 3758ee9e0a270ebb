import type { AfterStageHook, BeforeStageHook } from "../hooks.js";
import type { KeyHints, OptionKeys } from "../internal/known-keys.js";
import { pipelineOptionHints, runOptionHints } from "../internal/option-hints.js";
import type { Middleware } from "../middleware.js";
import { optionalContext, optionalSignal, optionsObject } from "../internal/validate.js";
import { runOptionKeys, type Context, type RunOptions } from "../types.js";
import { mapOptionKeys } from "./batch.js";
import { stageOptionKeys } from "./stage.js";

/**
 * Options of a {@link Pipeline}.
 *
 * @example
 * ```ts
 * import { Pipeline, Stage } from "async-pipeline";
 *
 * const pipeline = new Pipeline([new Stage("double", (n: number) => n * 2)], {
 *   beforeStage: (stageName, input) => console.log(`start ${stageName}`, input),
 *   afterStage: (stageName, _input, output, error) => console.log(`end ${stageName}`, output, error),
 * });
 * ```
 */
export interface PipelineOptions<C extends object = Context> {
  /**
   * Runs before each stage: `(stageName, input)`, or `(stageName, input, context)` when it
   * declares three or more parameters. Sync or async (awaited); its failures are ignored.
   * @default undefined
   * @example
   * ```ts
   * new Pipeline(stages, { beforeStage: async (name, input) => audit.write({ name, input }) });
   * ```
   */
  beforeStage?: BeforeStageHook<C> | undefined;
  /**
   * Runs after each stage, whether it succeeded, failed or was cancelled:
   * `(stageName, input, output, error)`, or with `context` fifth when it declares five or more
   * parameters. Sync or async (awaited); its failures are ignored and never replace the
   * stage's error.
   * @default undefined
   * @example
   * ```ts
   * new Pipeline(stages, {
   *   afterStage: (name, _input, _output, error) => {
   *     if (error !== undefined) metrics.increment(`${name}.failed`);
   *   },
   * });
   * ```
   */
  afterStage?: AfterStageHook<C> | undefined;
  /**
   * Middlewares wrapped around every stage, first = outermost. Order per stage:
   * `beforeStage` → middlewares → stage → `afterStage`.
   * @default []
   * @example
   * ```ts
   * import { loggingMiddleware, timingMiddleware } from "async-pipeline/middlewares";
   *
   * new Pipeline(stages, { middlewares: [loggingMiddleware(), timingMiddleware()] });
   * ```
   */
  middlewares?: readonly Middleware<C>[] | undefined;
  /**
   * Wraps each whole run: one `run` call, or one item of `map`, `mapSettled` or `stream`.
   * Called with `run` (which runs every stage, hooks and middleware included, and returns a
   * promise of the output), the input, the run's context and its signal; it must return the
   * output (or a promise of it), normally `run()`'s. What it throws is the run's error. For a
   * per-run trace span (`openTelemetryRunSpan`), an `AsyncLocalStorage` scope, or per-item
   * logging.
   * @default undefined
   * @example
   * ```ts
   * import { AsyncLocalStorage } from "node:async_hooks";
   *
   * const requestIds = new AsyncLocalStorage<string>();
   * new Pipeline(stages, {
   *   aroundRun: (run, input) => requestIds.run(String((input as { id: string }).id), run),
   * });
   * ```
   */
  aroundRun?: RunWrapper<C> | undefined;
}

/** The keys of {@link PipelineOptions}; any other key is rejected. A new option goes here too. */
export const pipelineOptionKeys = {
  beforeStage: true,
  afterStage: true,
  middlewares: true,
  aroundRun: true,
} as const satisfies OptionKeys<PipelineOptions>;

/**
 * The type of {@link PipelineOptions.aroundRun}: wraps one whole run of the pipeline.
 *
 * @example
 * ```ts
 * import type { RunWrapper } from "async-pipeline";
 *
 * const timed: RunWrapper = async (run, input) => {
 *   const started = performance.now();
 *   try {
 *     return await run();
 *   } finally {
 *     console.log(`${JSON.stringify(input)} took ${(performance.now() - started).toFixed(1)} ms`);
 *   }
 * };
 * ```
 */
export type RunWrapper<C extends object = Context> = (
  run: () => Promise<unknown>,
  input: unknown,
  context: C,
  signal: AbortSignal | undefined,
) => unknown;

/** Hints for an unknown key of a `Pipeline`'s options: one of a `Stage` or a `run` is named. */
export const pipelineHints: KeyHints = {
  ...pipelineOptionHints,
  siblings: { Stage: stageOptionKeys, run: runOptionKeys },
};

/** Hints for an unknown key of `run`'s options (`pipeline.run`, `stage.run`). */
export const runHints: KeyHints = { ...runOptionHints, siblings: { map: mapOptionKeys } };

/**
 * The options of one `run` (`pipeline.run`, `stage.run`), validated: the signal, and the
 * context given or `fallback()`'s. Throws `TypeError`/`RangeError` for bad options.
 */
export function runSettings<C extends object>(
  options: RunOptions<C> | undefined,
  fallback: () => C,
): { readonly signal: AbortSignal | undefined; readonly context: C } {
  const opts = optionsObject<RunOptions<C>>("options", options, runOptionKeys, runHints);
  return {
    signal: optionalSignal(opts?.signal),
    context: optionalContext(opts?.context) ?? fallback(),
  };
}
