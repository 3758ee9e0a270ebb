import { throwIfAborted, untilAborted } from "./internal/abort.js";
import { failureOf, type Execution } from "./internal/execution.js";
import type { AttemptObserver } from "./internal/limits.js";
import { handled, isThenable } from "./internal/thenable.js";
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

/** The hooks of a pipeline, validated, with how many parameters each declares. */
export interface StageHooks<C extends object> {
  readonly before: BeforeStageHook<C> | undefined;
  readonly after: AfterStageHook<C> | undefined;
}

/**
 * `inner` (a stage's execution, perhaps inside middleware) with `beforeStage` before it and
 * `afterStage` after it, whatever its outcome: one execution, built once per stage. A hook's
 * failure is ignored; a hook that returns a promise is awaited, raced against the signal so
 * that a hung hook never delays cancellation. The stage does not start once the signal has
 * aborted (perhaps while `beforeStage` ran), and `afterStage` then sees the abort reason as
 * the error; the stage's own promise is raced against the signal too, so `afterStage` learns
 * of a cancellation at once.
 */
export function withHooks<C extends object>(
  inner: Execution,
  stageName: string,
  { before, after }: StageHooks<C>,
): Execution {
  const beforeTakesContext = (before?.length ?? 0) >= 3;
  const afterTakesContext = (after?.length ?? 0) >= 5;
  const run = async (
    value: unknown,
    context: unknown,
    signal: AbortSignal | undefined,
    observer?: AttemptObserver,
  ): Promise<unknown> => {
    let output: unknown;
    let error: unknown;
    let failed = false;
    try {
      if (before !== undefined) {
        // Awaited only when the hook returned a promise: a sync hook costs no microtask.
        let pending: PromiseLike<unknown> | undefined;
        try {
          pending = handled(
            beforeTakesContext
              ? before(stageName, value, context as C)
              : (before as (name: string, input: unknown) => unknown)(stageName, value),
          );
        } catch {
          // A hook's failure is documented as ignored.
        }
        if (pending !== undefined) await untilAborted(pending, signal);
      }
      throwIfAborted(signal);
      try {
        output = inner.run(value, context, signal, observer);
        if (isThenable(output)) output = await untilAborted(output, signal);
      } catch (caught) {
        throw failureOf(inner, caught, signal, observer);
      }
    } catch (caught) {
      failed = true;
      error = caught;
      output = undefined;
    }
    if (after !== undefined) {
      let pending: PromiseLike<unknown> | undefined;
      try {
        pending = handled(
          afterTakesContext
            ? after(stageName, value, output, error, context as C)
            : (after as (n: string, i: unknown, o: unknown, e: unknown) => unknown)(
                stageName,
                value,
                output,
                error,
              ),
        );
      } catch {
        // A hook's failure is documented as ignored.
      }
      if (pending !== undefined) await untilAborted(pending, signal);
    }
    if (failed) throw error;
    return output;
  };
  return {
    run,
    failure: undefined,
    readsContext: inner.readsContext || beforeTakesContext || afterTakesContext,
  };
}
