import type { AnyStage } from "./chain.js";
import { execute } from "./internal/execute.js";
import { linkSignals } from "./internal/link.js";
import { optionalSignal } from "./internal/validate.js";
import type { Context } from "./types.js";

/**
 * Runs the rest of the middleware chain and then the stage, on `value`. Passing a `signal`
 * cancels the inner chain: it then sees a signal that aborts when either the outer one or
 * this one does.
 *
 * @example
 * ```ts
 * const output = await next(value); // unchanged signal
 * const early = await next(value, AbortSignal.timeout(1_000)); // also cancelled after 1 s
 * ```
 */
export type Next = (value: unknown, signal?: AbortSignal) => Promise<unknown>;

/**
 * Wraps one stage's execution. Called once per stage of a run, outermost first, with
 * `(next, stageName, value, context, signal)`. It may change the value it passes to `next`,
 * the output it returns, or the error it throws; call `next` more than once (retry) or not at
 * all (cache, short-circuit). Sync or async.
 *
 * `signal` is always an `AbortSignal`: the caller's (or the batch item's), or one that never
 * aborts when there is none. A middleware's own error reaches the caller as thrown: only the
 * stage wraps errors in `StageExecutionError`.
 *
 * @typeParam C - the context type the middleware reads
 * @example
 * ```ts
 * import type { Middleware } from "async-pipeline";
 *
 * const cache = new Map<string, unknown>();
 * const caching: Middleware = async (next, stageName, value) => {
 *   const key = `${stageName}:${JSON.stringify(value)}`;
 *   if (cache.has(key)) return cache.get(key);
 *   const output = await next(value);
 *   cache.set(key, output);
 *   return output;
 * };
 * ```
 */
export type Middleware<C extends object = Context> = (
  next: Next,
  stageName: string,
  value: unknown,
  context: C,
  signal: AbortSignal,
) => unknown;

/** Runs one stage through the whole middleware chain. */
export type ComposedChain<C extends object> = (
  stage: AnyStage,
  value: unknown,
  context: C,
  signal: AbortSignal,
) => Promise<unknown>;

/**
 * Composes the middlewares once, first = outermost, around the stage call. The innermost call
 * races the signal so that a middleware's `next(value, signal)` cancels the stage promptly.
 */
export function composeMiddlewares<C extends object>(
  middlewares: readonly Middleware<C>[],
): ComposedChain<C> {
  let chain: ComposedChain<C> = (stage, value, context, signal) => {
    try {
      return Promise.resolve(stage[execute](value, context, signal, true));
    } catch (error) {
      return Promise.reject(error);
    }
  };
  for (let index = middlewares.length - 1; index >= 0; index--) {
    const middleware = middlewares[index] as Middleware<C>;
    const inner = chain;
    chain = (stage, value, context, signal) => {
      const next: Next = (nextValue, nextSignal) => {
        let extra: AbortSignal | undefined;
        try {
          extra = optionalSignal(nextSignal);
        } catch (error) {
          return Promise.reject(error);
        }
        if (extra === undefined) return inner(stage, nextValue, context, signal);
        const linked = linkSignals(signal, extra);
        const result = inner(stage, nextValue, context, linked.signal);
        result.then(linked.dispose, linked.dispose);
        return result;
      };
      try {
        return Promise.resolve(middleware(next, stage.name, value, context, signal));
      } catch (error) {
        return Promise.reject(error);
      }
    };
  }
  return chain;
}
