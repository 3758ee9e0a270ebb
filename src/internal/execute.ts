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

/** `stage[readsContext]`: whether the handler takes a context (declares 2+ parameters). */
export const readsContext: unique symbol = Symbol.for("async-pipeline.readsContext") as never;
