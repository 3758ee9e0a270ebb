import type { OptionKeys } from "./internal/known-keys.js";

/**
 * The default context type: any object, class instances included.
 *
 * A context is one object shared by every stage, hook and middleware of a run. Give your own
 * type to `Stage<I, O, C>` (or annotate the handler's second parameter) to have it checked.
 *
 * @default {} (a new empty object per run when none is passed)
 * @example
 * ```ts
 * import { Pipeline, Stage } from "async-pipeline";
 *
 * const pipeline = new Pipeline([
 *   new Stage("tag", (value: number, context: { seen: number[] }) => {
 *     context.seen.push(value);
 *     return value;
 *   }),
 * ]);
 * await pipeline.run(1, { context: { seen: [] } });
 * ```
 */
// `any` values: a class instance has no index signature, so `Record<string, unknown>` would
// reject it, and the default must accept any object.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Context = Record<string, any>;

/**
 * What a handler learns about the attempt it runs in (its third parameter).
 *
 * @example
 * ```ts
 * import { Stage } from "async-pipeline";
 *
 * const fetchUser = new Stage(
 *   "fetchUser",
 *   async (id: string, _context, call) => {
 *     console.log(`attempt ${call.attempt} of ${call.stageName}`);
 *     const response = await fetch(`https://example.com/users/${id}`, { signal: call.signal });
 *     return (await response.json()) as unknown;
 *   },
 *   { timeout: 5_000, retries: 2 },
 * );
 * ```
 */
export interface StageCall {
  /**
   * Aborts when this attempt times out (reason: a `TimeoutError`) or when the caller's signal
   * aborts (reason: the caller's reason). Pass it on to `fetch` and other abortable work.
   */
  readonly signal: AbortSignal;
  /**
   * The attempt number, counting from 1.
   * @default 1
   */
  readonly attempt: number;
  /** The name of the stage running the handler. */
  readonly stageName: string;
}

/**
 * A stage's work: takes the previous stage's output, returns this stage's output or a promise
 * of it. Called with `value` alone when it declares fewer than two parameters
 * (`handler.length < 2`), otherwise with `(value, context, call)`.
 *
 * @example
 * ```ts
 * import type { Handler } from "async-pipeline";
 *
 * const double: Handler<number, number> = (value) => value * 2;
 * const load: Handler<string, string, { cache: Map<string, string> }> = async (key, context) =>
 *   context.cache.get(key) ?? "";
 * ```
 */
export type Handler<I, O, C extends object = Context> = (
  value: I,
  context: C,
  call: StageCall,
) => O | PromiseLike<O>;

/**
 * Options of one `run` call (`stage.run` and `pipeline.run`).
 *
 * @example
 * ```ts
 * const controller = new AbortController();
 * const result = await pipeline.run(input, { context: { requestId: "r1" }, signal: controller.signal });
 * ```
 */
export interface RunOptions<C extends object = Context> {
  /**
   * The context shared by every stage, hook and middleware of this run.
   * @default a new empty object
   */
  context?: C | undefined;
  /**
   * Cancels the run: no further attempt or stage starts, any retry wait is cut short, the
   * handler's `call.signal` aborts, and the run rejects with `signal.reason` itself.
   * @default undefined (not cancellable)
   */
  signal?: AbortSignal | undefined;
}

/**
 * The keys of {@link RunOptions}; any other key is rejected. A new option goes here too.
 * @internal
 */
export const runOptionKeys = {
  context: true,
  signal: true,
} as const satisfies OptionKeys<RunOptions>;

/**
 * How the delay between attempts grows: `"fixed"` waits `retryDelay` every time,
 * `"exponential"` waits `retryDelay × 2^(failure − 1)`: d, 2d, 4d, …
 *
 * @default "fixed"
 * @example
 * ```ts
 * import { Stage } from "async-pipeline";
 *
 * new Stage("call", callApi, { retries: 3, retryDelay: 200, backoff: "exponential" }); // 200, 400, 800 ms
 * ```
 */
export type Backoff = "fixed" | "exponential";

/**
 * The frozen payload given to `onRetry` before each wait between attempts.
 *
 * @example
 * ```ts
 * import { Stage, type RetryEvent } from "async-pipeline";
 *
 * const log = ({ stageName, attempt, delay, error }: RetryEvent) =>
 *   console.warn(`${stageName}: attempt ${attempt} failed (${String(error)}), retrying in ${delay} ms`);
 * new Stage("call", callApi, { retries: 3, onRetry: log });
 * ```
 */
export interface RetryEvent {
  /** The stage (or middleware-wrapped stage) being retried. */
  readonly stageName: string;
  /** What the failed attempt threw. */
  readonly error: unknown;
  /** The number of the attempt that failed, counting from 1. */
  readonly attempt: number;
  /** The wait before the next attempt, in ms, after the cap and jitter. */
  readonly delay: number;
}

/**
 * A batch's progress, given frozen to `onProgress` after items settle (at most once per turn
 * of the event loop when many settle together).
 *
 * @example
 * ```ts
 * await pipeline.map(items, 8, {
 *   onProgress: ({ done, failed, inFlight, total, concurrency }) =>
 *     process.stdout.write(`\r${done}/${total ?? "?"} done, ${failed} failed, ${inFlight} of ${concurrency} running`),
 * });
 * ```
 */
export interface Progress {
  /** Items settled so far, successes and failures together. */
  readonly done: number;
  /** How many of the settled items failed. */
  readonly failed: number;
  /** Items taken from the input and not yet settled. */
  readonly inFlight: number;
  /** The input's size when known without consuming it (an array, a `Set`, a `Map`), else `undefined`. */
  readonly total: number | undefined;
  /**
   * The batch's concurrency limit now: its `concurrency`, or, for an `adaptiveConcurrency(...)`,
   * the limit it has found. Absent for a distributed batch (`async-pipeline/bullmq`), whose
   * workers each have their own.
   */
  readonly concurrency?: number | undefined;
}

/**
 * Decides whether a failed attempt is retried: `false` (or a throw) fails at once with that
 * attempt's error. `attempt` is the attempt that failed, from 1. Awaited when it returns a
 * promise.
 *
 * @default retry every error
 * @example
 * ```ts
 * import type { ShouldRetry } from "async-pipeline";
 *
 * const onlyServerErrors: ShouldRetry = (error) => (error as { status?: number }).status! >= 500;
 * ```
 */
export type ShouldRetry = (error: unknown, attempt: number) => boolean | PromiseLike<boolean>;

/**
 * Told about each retry before its wait, with a frozen {@link RetryEvent}. Not awaited; its
 * failures are ignored.
 *
 * @default undefined
 * @example
 * ```ts
 * import type { OnRetry } from "async-pipeline";
 *
 * const warn: OnRetry = ({ stageName, attempt, delay }) =>
 *   console.warn(`${stageName} #${attempt} failed; retry in ${delay} ms`);
 * ```
 */
export type OnRetry = (event: RetryEvent) => unknown;
