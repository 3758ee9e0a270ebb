import type { Middleware } from "../middleware.js";

/**
 * The context shape `timingMiddleware` writes to: `timings[stageName]` collects each run of
 * that stage's duration in ms, successful or not.
 *
 * @example
 * ```ts
 * import type { TimingContext } from "async-pipeline/middlewares";
 *
 * const context: TimingContext = {};
 * await pipeline.run(input, { context });
 * context.timings?.fetch; // [12.5]
 * ```
 */
export interface TimingContext {
  /**
   * Each stage's durations in ms, by stage name, in the order the runs ended. Created on first
   * use when missing.
   * @default undefined
   */
  timings?: Record<string, number[]>;
}

/**
 * Measures each stage (including the middlewares inside this one) with `performance.now()`
 * and pushes the duration in ms onto `context.timings[stageName]`, creating the record and the
 * array when missing. Failed stages are timed too. A context it cannot write (frozen, sealed,
 * or whose `timings` is not an object) is left alone, and the stage's outcome is unchanged.
 *
 * Put it first in the list to time the whole chain, last to time the stage alone.
 *
 * @default no options
 * @example
 * ```ts
 * import { Pipeline, Stage } from "async-pipeline";
 * import { timingMiddleware, type TimingContext } from "async-pipeline/middlewares";
 *
 * const pipeline = new Pipeline([new Stage("double", async (n: number) => n * 2)], {
 *   middlewares: [timingMiddleware()],
 * });
 * const context: TimingContext = {};
 * await pipeline.run(2, { context });
 * console.log(context.timings); // { double: [0.05] }
 * ```
 */
export function timingMiddleware(): Middleware<object> {
  return async (next, stageName, value, context) => {
    const started = performance.now();
    try {
      return await next(value);
    } finally {
      record(context, stageName, performance.now() - started);
    }
  };
}

function record(context: object, stageName: string, duration: number): void {
  try {
    const target = context as TimingContext;
    let timings = target.timings;
    if (timings === undefined) {
      if (!Object.isExtensible(context)) return;
      timings = {};
      target.timings = timings;
    }
    if (typeof timings !== "object") return;
    let list = Object.hasOwn(timings, stageName) ? timings[stageName] : undefined;
    if (list === undefined) {
      if (!Object.isExtensible(timings)) return;
      list = [];
      // defineProperty, not assignment: a stage named "__proto__" must get an own entry.
      Object.defineProperty(timings, stageName, {
        value: list,
        writable: true,
        enumerable: true,
        configurable: true,
      });
    }
    if (Array.isArray(list) && Object.isExtensible(list)) list.push(duration);
  } catch {
    // A context that refuses the write (a proxy, a setter that throws) is left alone.
  }
}
