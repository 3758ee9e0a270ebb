import { untilAborted } from "./internal/abort.js";
import { runMapped, type Execution } from "./internal/execution.js";
import type { AttemptObserver } from "./internal/limits.js";
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

/** A signal that never aborts: what middlewares get when the run has none. */
const NEVER_ABORTED = new AbortController().signal;

/**
 * One link of a middleware chain: the rest of the chain, then the stage, whose failed attempts
 * are told to `observer` (an item under adaptive limits).
 */
type Link = (
  value: unknown,
  context: unknown,
  signal: AbortSignal,
  observer: AttemptObserver | undefined,
) => Promise<unknown>;

/**
 * `inner` (a stage's execution) inside the middlewares, first = outermost: one execution,
 * composed once per stage when the pipeline is built. The innermost link races the stage
 * against its signal, so that a middleware's `next(value, signal)` cancels the stage promptly;
 * a middleware's own error passes through as thrown.
 */
export function withMiddlewares<C extends object>(
  inner: Execution,
  stageName: string,
  middlewares: readonly Middleware<C>[],
): Execution {
  let chain: Link = (value, context, signal, observer) => {
    try {
      // `next(value, signal)` with a signal that has aborted already runs nothing.
      if (signal.aborted) throw signal.reason;
      const result = runMapped(inner, value, context, signal, observer);
      return signal === NEVER_ABORTED
        ? Promise.resolve(result)
        : untilAborted(Promise.resolve(result), signal);
    } catch (error) {
      return Promise.reject(error);
    }
  };
  for (let index = middlewares.length - 1; index >= 0; index--) {
    const middleware = middlewares[index] as Middleware<C>;
    const rest = chain;
    chain = (value, context, signal, observer) => {
      const next: Next = (nextValue, nextSignal) => {
        let extra: AbortSignal | undefined;
        try {
          extra = optionalSignal(nextSignal);
        } catch (error) {
          return Promise.reject(error);
        }
        if (extra === undefined) return rest(nextValue, context, signal, observer);
        const linked = linkSignals(signal, extra);
        const result = rest(nextValue, context, linked.signal, observer);
        result.then(linked.dispose, linked.dispose);
        return result;
      };
      try {
        return Promise.resolve(middleware(next, stageName, value, context as C, signal));
      } catch (error) {
        return Promise.reject(error);
      }
    };
  }
  const outer = chain;
  return {
    // Middlewares always get a signal: one that never aborts when the run has none.
    run: (value, context, signal, observer) =>
      outer(value, context, signal ?? NEVER_ABORTED, observer),
    failure: undefined,
    readsContext: true,
  };
}
