/**
 * Internal entry points that `Pipeline` calls on a `Stage`. Registered symbols (`Symbol.for`),
 * so that a stage made by the package's CommonJS build works in a pipeline made by its ESM
 * build and the other way round. Not exported from the package.
 */

/**
 * `stage[execute](value, context, signal, race)`: runs the stage, returning a plain value when
 * the handler was synchronous (saving the pipeline a microtask); `race` makes a pending
 * attempt reject as soon as `signal` aborts.
 */
export const execute: unique symbol = Symbol.for("async-pipeline.execute") as never;

/**
 * `stage[begin](value, context, signal, race)`: the stage's first attempt, raw: its output,
 * its own promise (not wrapped in one that maps its failure), or a synchronous throw of what
 * it threw. It does not check `signal` first: the caller does. A failure goes to
 * `stage[recover]`; a caller that does not await the promise itself hands it to
 * `stage[settle]`. The pipeline saves a promise and a microtask per stage this way.
 */
export const begin: unique symbol = Symbol.for("async-pipeline.begin") as never;

/**
 * `stage[recover](error, value, context, signal, race)`: after `stage[begin]` failed with
 * `error`, runs the retries the stage's policy allows (a promise of the output, or of the
 * stage's failure), or throws at once what the stage fails with: `signal.reason` when the
 * signal aborted, else a `StageExecutionError`.
 */
export const recover: unique symbol = Symbol.for("async-pipeline.recover") as never;

/**
 * `stage[settle](pending, value, context, signal, race)`: the stage's promise for the pending
 * first attempt `pending` of `stage[begin]`: its output, or its failure through `stage[recover]`.
 */
export const settle: unique symbol = Symbol.for("async-pipeline.settle") as never;

/**
 * `stage[fail](error)`: the `StageExecutionError` a stage without retries fails with when its
 * first attempt failed with `error` (what `stage[recover]` throws then, returned instead).
 * Lets a batch map a rejection on the failure path only, instead of chaining a handler onto
 * every item's promise.
 */
export const fail: unique symbol = Symbol.for("async-pipeline.fail") as never;

/** `stage[readsContext]`: whether the handler takes a context (declares 2+ parameters). */
export const readsContext: unique symbol = Symbol.for("async-pipeline.readsContext") as never;
