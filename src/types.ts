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
 * What a handler learns about the attempt it runs in (its third parameter), and how it tells a
 * rate limiter what the attempt really cost (`charge`).
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
  /**
   * Replaces what this attempt took from `limiter`, one of the stage's `rateLimit` limiters, by
   * `actual`: the real cost, known once the service has answered (the tokens an LLM really
   * used). A smaller amount is a refund, and the limiter's next grants use it; a larger one
   * keeps later attempts waiting until this one has left the window. Once it has left the
   * window (`interval` ms after the attempt started), there is nothing left to change.
   * @param limiter - a `RateLimiter` this attempt took its turn from
   * @param actual - a finite number ≥ 0, in the limiter's cost units
   * @default the attempt keeps the cost its limiter's `cost` option gave (1 without one)
   * @throws TypeError when this attempt did not take its turn from `limiter` (the stage has
   *   no such `rateLimit`), or `actual` is not a number
   * @throws RangeError when `actual` is negative, `NaN` or infinite
   * @example
   * ```ts
   * import { RateLimiter, Stage } from "async-pipeline";
   *
   * declare function complete(prompt: string, signal: AbortSignal): Promise<{ text: string; tokens: number }>;
   *
   * // 90,000 tokens a minute, a prompt estimated at 4 characters a token.
   * const tokens = new RateLimiter({ limit: 90_000, interval: 60_000, cost: (prompt: string) => prompt.length / 4 });
   * const ask = new Stage(
   *   "ask",
   *   async (prompt: string, _context, call) => {
   *     const answer = await complete(prompt, call.signal);
   *     call.charge(tokens, answer.tokens); // what the call really cost
   *     return answer.text;
   *   },
   *   { rateLimit: tokens },
   * );
   * ```
   */
  charge(limiter: object, actual: number): void;
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
   * With a `checkpoint`: how many of the items `done` were restored from it instead of run
   * (their recorded failures are counted in `failed` too). A resumed batch restores the
   * recorded items as soon as it reaches them, without running them or waiting for a place,
   * so they show up at once. Absent when the batch has no checkpoint.
   * @default undefined (no checkpoint)
   * @example
   * ```ts
   * await pipeline.map(lines, {
   *   checkpoint: fileCheckpoint("prices.ckpt"),
   *   onProgress: ({ done, restored = 0 }) => console.log(`${done} done, ${restored} of them from the checkpoint`),
   * });
   * ```
   */
  readonly restored?: number;
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

/**
 * Where a batch keeps its checkpoint: what a `map`, `mapSettled` or `stream` given the
 * `checkpoint` option needs to record each finished item and to resume after a crash. The
 * embedded default is `fileCheckpoint(path)` from `async-pipeline/checkpoint` (Node, Bun and
 * Deno); implement this interface to keep checkpoints anywhere else.
 *
 * Records are JSON-safe values made by the batch (a header first, then one per finished item,
 * then a completion marker): store them as they are. `load` gives back equal values (a JSON
 * round trip), in append order. The batch calls `load` first, `append` once per record (never
 * concurrently with `load`'s first pass), `flush` after its last `append`, and `close` last, on
 * every ending (success, failure, abort, a stream left early); it never appends after `close`.
 * It may call `load` a second time while it appends, to fetch recorded outputs lazily (a
 * resumed `stream`): that pass needs only the records there were when the first one ended.
 *
 * A store may be opened again after `close` (a retry loop reuses it). It should refuse (throw or
 * reject with a `CheckpointInUseError`) a second user while one holds it.
 *
 * @example
 * ```ts
 * import type { CheckpointStore } from "async-pipeline";
 *
 * // Keeps records in memory: survives a failed batch, not a crash of the process.
 * function memoryCheckpoint(): CheckpointStore {
 *   let records: string[] = [];
 *   return {
 *     load: () => records.map((record) => JSON.parse(record) as unknown),
 *     append: (record) => {
 *       records.push(JSON.stringify(record));
 *     },
 *     flush: () => undefined,
 *     close: () => undefined,
 *     clear: () => {
 *       records = [];
 *     },
 *   };
 * }
 * ```
 */
export interface CheckpointStore {
  /**
   * Everything appended so far (and not cleared), in append order; empty for a new
   * checkpoint. Rejects with `CheckpointInUseError` when another user holds the checkpoint,
   * and with `CheckpointCorruptError` when it is damaged.
   */
  load():
    | Iterable<unknown>
    | AsyncIterable<unknown>
    | Promise<Iterable<unknown> | AsyncIterable<unknown>>;
  /**
   * Appends one record. It need not be durable before {@link CheckpointStore.flush}; a store
   * may write records in groups. What it throws or rejects with fails the batch.
   */
  append(record: unknown): void | Promise<void>;
  /** Makes everything appended so far durable. */
  flush(): void | Promise<void>;
  /** Releases what the store holds (files, locks, timers) after making its records durable. */
  close(): void | Promise<void>;
  /** Deletes every record: the next batch starts from nothing. */
  clear(): void | Promise<void>;
  /**
   * When `true`, a batch that completes clears the checkpoint (calls `clear`) before closing
   * it, so that the next batch starts from nothing instead of returning the recorded results.
   * @default false
   */
  readonly clearOnSuccess?: boolean | undefined;
}
