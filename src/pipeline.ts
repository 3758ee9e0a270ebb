import { throwIfAborted, untilAborted } from "./internal/abort.js";
import type {
  AnyStage,
  PipelineContext,
  PipelineInput,
  PipelineOutput,
  ValidStages,
} from "./chain.js";
import type { AfterStageHook, BeforeStageHook } from "./hooks.js";
import { copyContext } from "./internal/context.js";
import { begin, execute, fail, readsContext, recover, settle } from "./internal/execute.js";
import { batchSettings, collect, type BatchSettings, type ItemRunner } from "./internal/batch.js";
import { pipelineStream } from "./internal/stream.js";
import { isThenable, handled } from "./internal/thenable.js";
import { composeMiddlewares, type ComposedChain, type Middleware } from "./middleware.js";
import type { OptionKeys } from "./internal/known-keys.js";
import {
  isFunction,
  listOf,
  optionalContext,
  optionalFunction,
  optionalSignal,
  optionsObject,
} from "./internal/validate.js";
import { runOptionKeys, type Context, type Progress, type RunOptions } from "./types.js";
import type { PerKeyOptions } from "./flow/per-key.js";

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
const pipelineOptionKeys = {
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

/**
 * Options of {@link Pipeline.map} and {@link Pipeline.mapSettled}.
 *
 * @example
 * ```ts
 * const controller = new AbortController();
 * const results = await pipeline.map(ids, { concurrency: 8, context: { tenant: "acme" }, signal: controller.signal });
 * ```
 */
export interface MapOptions<C extends object = Context, I = unknown> {
  /**
   * How many items run at once: an integer of at least 1, or `Infinity`. A positional
   * `concurrency` argument wins over this one.
   * @default 5
   * @example
   * ```ts
   * await pipeline.map(items, { concurrency: 16 });
   * ```
   */
  concurrency?: number | undefined;
  /**
   * A template: each item's run gets its own shallow copy (prototype kept), so concurrent
   * items never share one object and the template's own properties never change.
   * @default a new empty object per item
   * @example
   * ```ts
   * await pipeline.map(items, 4, { context: { tenant: "acme" } });
   * ```
   */
  context?: C | undefined;
  /**
   * Cancels the whole batch: nothing new starts, in-flight items' signals abort, and the
   * promise rejects with `signal.reason`.
   * @default undefined
   * @example
   * ```ts
   * await pipeline.map(items, 4, { signal: AbortSignal.timeout(60_000) });
   * ```
   */
  signal?: AbortSignal | undefined;
  /**
   * Called with a frozen `{ done, failed, inFlight, total }` after items settle: at most once
   * per turn of the event loop when many settle together, and once more, at the latest,
   * before the batch settles. `total` is the input's size when known (an array, a `Set`, a
   * `Map`), else `undefined`. Its failures are ignored.
   * @default undefined
   * @example
   * ```ts
   * await pipeline.map(items, 8, {
   *   onProgress: ({ done, total }) => console.log(`${done}/${total ?? "?"}`),
   * });
   * ```
   */
  onProgress?: ((progress: Progress) => unknown) | undefined;
  /**
   * A bound per key, within `concurrency`: at most `perKey.concurrency` items whose
   * `perKey.key(item, index)` are equal (`SameValueZero`) run at once, for example two per
   * host. An item waiting for its key does not hold up items of other keys: the batch reads
   * ahead past it, keeping at most `concurrency` such items waiting (so at most
   * 2 × `concurrency` items are taken and not finished). Results keep input order. A `key`
   * that throws fails its item as a stage failure would.
   * @default undefined (no bound per key)
   * @example
   * ```ts
   * await pipeline.map(urls, { concurrency: 32, perKey: { key: (url) => new URL(url).host, concurrency: 2 } });
   * ```
   */
  perKey?: PerKeyOptions<I> | undefined;
}

/** The keys of {@link MapOptions}; any other key is rejected. A new option goes here too. */
const mapOptionKeys = {
  concurrency: true,
  context: true,
  signal: true,
  onProgress: true,
  perKey: true,
} as const satisfies OptionKeys<MapOptions>;

/**
 * Options of {@link Pipeline.stream}: those of `map`, plus how results are delivered.
 *
 * @example
 * ```ts
 * for await (const entry of pipeline.stream(items, { concurrency: 8, ordered: false, settled: true })) {
 *   if (entry.status === "rejected") console.error(entry.reason);
 * }
 * ```
 */
export interface StreamOptions<C extends object = Context, I = unknown> extends MapOptions<C, I> {
  /**
   * How many finished results may wait to be read beyond the `concurrency` in flight: no item
   * is taken from the input while `concurrency + buffer` are taken and not yet read. An integer
   * ≥ 0, or `Infinity` for no backpressure.
   * @default concurrency
   * @example
   * ```ts
   * pipeline.stream(items, { concurrency: 4, buffer: 0 }); // never more than 4 items ahead
   * ```
   */
  buffer?: number | undefined;
  /**
   * `true`: results in input order. `false`: as items finish (a slow item does not hold the
   * others back).
   * @default true
   * @example
   * ```ts
   * pipeline.stream(items, { ordered: false });
   * ```
   */
  ordered?: boolean | undefined;
  /**
   * `true`: yield a `PromiseSettledResult` per item and go on after failures, like
   * `mapSettled`. `false`: end the stream with the first failure, like `map`.
   * @default false
   * @example
   * ```ts
   * pipeline.stream(items, { settled: true });
   * ```
   */
  settled?: boolean | undefined;
}

/** The keys of {@link StreamOptions}; any other key is rejected. A new option goes here too. */
const streamOptionKeys = {
  ...mapOptionKeys,
  buffer: true,
  ordered: true,
  settled: true,
} as const satisfies OptionKeys<StreamOptions>;

/** Whether `value` is a stage (of any copy of the library): what `stages` must hold. */
function isStage(value: unknown): boolean {
  return (
    typeof value === "object" &&
    value !== null &&
    typeof (value as Partial<AnyStage>)[execute] === "function"
  );
}

/**
 * The implementation behind {@link Pipeline}; exported under that name with a constructor
 * type that infers `I`, `O` and `C` from the stages and checks that they chain.
 */
class PipelineImpl<I, O, C extends object = Context> {
  readonly #stages: readonly AnyStage[];
  readonly #beforeStage: BeforeStageHook<C> | undefined;
  readonly #afterStage: AfterStageHook<C> | undefined;
  readonly #beforeTakesContext: boolean;
  readonly #afterTakesContext: boolean;
  readonly #needsContext: boolean;
  readonly #hooked: boolean;
  readonly #chain: ComposedChain<C> | undefined;
  readonly #aroundRun: RunWrapper<C> | undefined;

  constructor(stages: readonly AnyStage[], options?: PipelineOptions<C>) {
    this.#stages = Object.freeze(listOf<AnyStage>("stages", stages, "a Stage", isStage));
    if (this.#stages.length === 0) throw new RangeError("Pipeline requires at least one stage");
    const opts =
      optionsObject<NonNullable<typeof options>>("options", options, pipelineOptionKeys) ?? {};
    this.#beforeStage = optionalFunction("beforeStage", opts.beforeStage);
    this.#afterStage = optionalFunction("afterStage", opts.afterStage);
    this.#beforeTakesContext = (this.#beforeStage?.length ?? 0) >= 3;
    this.#afterTakesContext = (this.#afterStage?.length ?? 0) >= 5;
    const middlewares = listOf<Middleware<C>>(
      "middlewares",
      opts.middlewares ?? [],
      "a function",
      isFunction,
    );
    this.#chain = middlewares.length === 0 ? undefined : composeMiddlewares(middlewares);
    this.#hooked =
      this.#beforeStage !== undefined ||
      this.#afterStage !== undefined ||
      this.#chain !== undefined;
    this.#aroundRun = optionalFunction("aroundRun", opts.aroundRun);
    this.#needsContext =
      this.#aroundRun !== undefined ||
      this.#chain !== undefined ||
      this.#beforeTakesContext ||
      this.#afterTakesContext ||
      this.#stages.some((stage) => stage[readsContext]);
  }

  /**
   * The stages, in order (a frozen copy).
   * @example
   * ```ts
   * pipeline.stages.map((stage) => stage.name); // ["parse", "fetch", "save"]
   * ```
   */
  get stages(): readonly AnyStage[] {
    return this.#stages;
  }

  /**
   * Runs every stage in order on `input`, each receiving the previous stage's output.
   *
   * @param input - the first stage's input
   * @param options - the `context` shared by every stage and hook of this run (a new empty
   *   object when omitted) and a `signal` to cancel with
   * @returns the last stage's output
   * @throws StageExecutionError (as a rejection) when a stage fails
   * @throws the signal's `reason` (as a rejection) when `options.signal` aborts
   * @example
   * ```ts
   * import { Pipeline, Stage } from "async-pipeline";
   *
   * const pipeline = new Pipeline([
   *   new Stage("addOne", async (value: number) => value + 1),
   *   new Stage("double", (value: number) => value * 2),
   * ]);
   * await pipeline.run(10); // 22
   * ```
   */
  run(input: I, options?: RunOptions<C>): Promise<O> {
    // Not an async method: the run's own promise is returned as it is, which saves an async
    // frame and a microtask per run. Every throw still becomes a rejection.
    try {
      const opts = optionsObject<NonNullable<typeof options>>("options", options, runOptionKeys);
      const signal = optionalSignal(opts?.signal);
      const context = optionalContext(opts?.context) ?? this.#newContext();
      throwIfAborted(signal);
      return Promise.resolve(this.#runWrapped(input, context, signal, signal !== undefined) as O);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * Runs the pipeline on every item, at most `concurrency` at once, and resolves with the
   * outputs in input order. Fails fast: on the first failure nothing new starts, in-flight
   * items' signals abort, and the promise rejects with that item's error.
   *
   * `items` may be any `Iterable` or `AsyncIterable`; it is consumed lazily, never more than
   * `concurrency` items ahead of those finished.
   *
   * @param items - the inputs
   * @param concurrency - items run at once: an integer ≥ 1 or `Infinity` (default 5)
   * @param options - `context` template, `signal`
   * @returns the outputs, in input order
   * @example
   * ```ts
   * const outputs = await pipeline.map([1, 2, 3], 2); // [4, 6, 8] for the pipeline above
   * const more = await pipeline.map(readIds(), { concurrency: 16, signal });
   * ```
   */
  map(
    items: Iterable<I> | AsyncIterable<I>,
    concurrency?: number,
    options?: MapOptions<C, I>,
  ): Promise<O[]>;
  map(items: Iterable<I> | AsyncIterable<I>, options?: MapOptions<C, I>): Promise<O[]>;
  map(
    items: Iterable<I> | AsyncIterable<I>,
    concurrencyOrOptions?: number | MapOptions<C, I>,
    options?: MapOptions<C, I>,
  ): Promise<O[]> {
    return this.#batch(items, concurrencyOrOptions, options, false) as Promise<O[]>;
  }

  /**
   * Like {@link Pipeline.map}, but never rejects for an item's failure: resolves with one
   * `PromiseSettledResult` per item, in input order. Rejects only for bad arguments, an input
   * iterable that throws, or the caller's signal.
   *
   * @param items - the inputs
   * @param concurrency - items run at once: an integer ≥ 1 or `Infinity` (default 5)
   * @param options - `context` template, `signal`
   * @returns `{ status: "fulfilled", value }` or `{ status: "rejected", reason }` per item
   * @example
   * ```ts
   * const settled = await pipeline.mapSettled(urls, 8);
   * const failed = settled.filter((entry) => entry.status === "rejected");
   * ```
   */
  mapSettled(
    items: Iterable<I> | AsyncIterable<I>,
    concurrency?: number,
    options?: MapOptions<C, I>,
  ): Promise<PromiseSettledResult<O>[]>;
  mapSettled(
    items: Iterable<I> | AsyncIterable<I>,
    options?: MapOptions<C, I>,
  ): Promise<PromiseSettledResult<O>[]>;
  mapSettled(
    items: Iterable<I> | AsyncIterable<I>,
    concurrencyOrOptions?: number | MapOptions<C, I>,
    options?: MapOptions<C, I>,
  ): Promise<PromiseSettledResult<O>[]> {
    return this.#batch(items, concurrencyOrOptions, options, true) as Promise<
      PromiseSettledResult<O>[]
    >;
  }

  /**
   * Runs the pipeline on every item, at most `concurrency` at once, and yields the outputs as
   * they are ready: in input order (`ordered: true`, the default) or as items finish. The
   * input is read lazily and with backpressure: no item is taken while `concurrency + buffer`
   * items are taken and not yet read, so a slow consumer slows the producer instead of
   * filling memory.
   *
   * Fails fast unless `settled` is set: the first failure ends the stream with that error
   * (after the results that were ready before it). With `settled: true`, each entry is a
   * `PromiseSettledResult`. Leaving the `for await` loop early (or calling `return()`) aborts
   * in-flight items' signals, starts nothing new, and closes the input.
   *
   * @param items - the inputs: any `Iterable` or `AsyncIterable`
   * @param concurrency - items run at once: an integer ≥ 1 or `Infinity` (default 5)
   * @param options - `buffer`, `ordered`, `settled`, `context`, `signal`, `onProgress`
   * @returns an async generator of outputs (or of settled results)
   * @example
   * ```ts
   * import { createReadStream } from "node:fs";
   * import { createInterface } from "node:readline";
   *
   * const lines = createInterface({ input: createReadStream("input.ndjson") });
   * for await (const output of pipeline.stream(lines, 16)) {
   *   process.stdout.write(`${JSON.stringify(output)}\n`);
   * }
   * ```
   */
  stream(
    items: Iterable<I> | AsyncIterable<I>,
    concurrency: number | undefined,
    options: StreamOptions<C, I> & { settled: true },
  ): AsyncGenerator<PromiseSettledResult<O>, void, undefined>;
  stream(
    items: Iterable<I> | AsyncIterable<I>,
    options: StreamOptions<C, I> & { settled: true },
  ): AsyncGenerator<PromiseSettledResult<O>, void, undefined>;
  stream(
    items: Iterable<I> | AsyncIterable<I>,
    concurrency?: number,
    options?: StreamOptions<C, I> & { settled?: false | undefined },
  ): AsyncGenerator<O, void, undefined>;
  stream(
    items: Iterable<I> | AsyncIterable<I>,
    options?: StreamOptions<C, I> & { settled?: false | undefined },
  ): AsyncGenerator<O, void, undefined>;
  stream(
    items: Iterable<I> | AsyncIterable<I>,
    concurrency?: number,
    options?: StreamOptions<C, I>,
  ): AsyncGenerator<O | PromiseSettledResult<O>, void, undefined>;
  stream(
    items: Iterable<I> | AsyncIterable<I>,
    options?: StreamOptions<C, I>,
  ): AsyncGenerator<O | PromiseSettledResult<O>, void, undefined>;
  stream(
    items: Iterable<I> | AsyncIterable<I>,
    concurrencyOrOptions?: number | StreamOptions<C, I>,
    options?: StreamOptions<C, I>,
  ): AsyncGenerator<unknown, void, undefined> {
    return pipelineStream(
      items,
      () => batchSettings<C>(items, concurrencyOrOptions, options, streamOptionKeys),
      (settings) => this.#itemRunner(settings.template as C | undefined),
    );
  }

  #batch(
    items: Iterable<I> | AsyncIterable<I>,
    concurrencyOrOptions: number | MapOptions<C, I> | undefined,
    options: MapOptions<C, I> | undefined,
    settled: boolean,
  ): Promise<unknown[]> {
    let settings: BatchSettings<C>;
    try {
      settings = batchSettings<C>(items, concurrencyOrOptions, options, mapOptionKeys);
    } catch (error) {
      return Promise.reject(error);
    }
    return collect(items, settings, this.#itemRunner(settings.template), settled);
  }

  /**
   * Runs one batch item, with its own context: a copy of the template, or a new one. The
   * pool owns the batch's cancellation; with hooks or middleware each stage also races the
   * signal, so that afterStage learns of it promptly.
   *
   * A pipeline of one stage without retries, hooks, middleware or `aroundRun` hands the pool
   * that stage's own promise, and the pool maps a rejection (always to the same kind of
   * `StageExecutionError`) on the failure path only: no handler chained onto every item.
   */
  #itemRunner(template: C | undefined): ItemRunner {
    // Chosen once per batch, not per item.
    const newContext: () => C =
      template !== undefined
        ? () => copyContext(template)
        : this.#needsContext
          ? () => ({}) as C
          : () => undefined as unknown as C;
    const stages = this.#stages;
    const only = stages[0] as AnyStage;
    if (
      stages.length === 1 &&
      only.retries === 0 &&
      !this.#hooked &&
      this.#aroundRun === undefined
    ) {
      return {
        // The pool reads `then` of what this returns, and maps what that throws as it maps a
        // rejection: one look at `then` per item.
        run: (item, signal): unknown => {
          const context = newContext();
          try {
            return only[begin](item, context, signal, false) as unknown;
          } catch (error) {
            return only[recover](error, item, context, signal, false);
          }
        },
        mapRejection: (error) => only[fail](error),
      };
    }
    const race = this.#hooked;
    return {
      run: (item, signal) => this.#runWrapped(item, newContext(), signal, race),
      mapRejection: undefined,
    };
  }

  #newContext(): C {
    return (this.#needsContext ? {} : undefined) as C;
  }

  /** One whole run, through `aroundRun` when set. May throw synchronously. */
  #runWrapped(input: unknown, context: C, signal: AbortSignal | undefined, race: boolean): unknown {
    return this.#aroundRun === undefined
      ? this.#runOne(input, context, signal, race)
      : this.#runAround(this.#aroundRun, input, context, signal, race);
  }

  /**
   * One run through `aroundRun` (its own method, so that a pipeline without one builds no
   * closure). `run()` checks the signal first: an `aroundRun` that awaited (or aborted the
   * signal itself) before calling it starts no stage once the run is cancelled.
   */
  #runAround(
    around: RunWrapper<C>,
    input: unknown,
    context: C,
    signal: AbortSignal | undefined,
    race: boolean,
  ): unknown {
    return around(
      () => {
        try {
          throwIfAborted(signal);
          return Promise.resolve(this.#runOne(input, context, signal, race));
        } catch (error) {
          return Promise.reject(error);
        }
      },
      input,
      context,
      signal,
    );
  }

  /**
   * One run of the stages, racing `signal` when `race` is set. With hooks or middleware each
   * stage races it, so that afterStage learns of a cancellation at once; without them nothing
   * can tell a stage's race from the run's, so the whole run races it: one subscription per
   * run instead of one per stage. Stages still see the signal (call.signal, timeouts), and
   * none starts after it aborts. May throw synchronously.
   */
  #runOne(input: unknown, context: C, signal: AbortSignal | undefined, race: boolean): unknown {
    if (!race || signal === undefined || this.#hooked) {
      return this.#runItem(input, context, signal, race);
    }
    return untilAborted(Promise.resolve(this.#runItem(input, context, signal, false)), signal);
  }

  /**
   * Runs every stage on one input. Returns the output itself when every stage was
   * synchronous; may throw synchronously.
   */
  #runItem(input: unknown, context: C, signal: AbortSignal | undefined, race: boolean): unknown {
    if (this.#hooked) return this.#runHooked(input, context, signal, race);
    const stages = this.#stages;
    const last = stages.length - 1;
    let value = input;
    for (let index = 0; index <= last; index++) {
      const stage = stages[index] as AnyStage;
      // The caller checked the signal before the first stage; a synchronous stage may abort it.
      if (index > 0) throwIfAborted(signal);
      let output: unknown;
      let pending: boolean;
      try {
        output = stage[begin](value, context, signal, race);
        // Inside the try: reading `then` is user code too (a getter may throw).
        pending = isThenable(output);
      } catch (error) {
        // Mapped by the stage: a synchronous throw, or a promise of its retries.
        const retried = stage[recover](error, value, context, signal, race);
        return index === last
          ? retried
          : this.#runRest(retried, index, value, context, signal, race, true);
      }
      if (pending) {
        return index === last
          ? stage[settle](output as PromiseLike<unknown>, value, context, signal, race)
          : this.#runRest(
              output as PromiseLike<unknown>,
              index,
              value,
              context,
              signal,
              race,
              false,
            );
      }
      value = output;
    }
    return value;
  }

  /**
   * The rest of a run, from stage `from`, whose promise `pending` (on `input`) is the first
   * one of the run: raw from `stage[begin]`, or already mapped (`mapped`). Each later stage's
   * own promise is awaited here and a failure handed to the stage, rather than every stage
   * wrapping its promise in another.
   */
  async #runRest(
    pending: PromiseLike<unknown>,
    from: number,
    input: unknown,
    context: C,
    signal: AbortSignal | undefined,
    race: boolean,
    mapped: boolean,
  ): Promise<unknown> {
    const stages = this.#stages;
    let value: unknown;
    try {
      value = await pending;
    } catch (error) {
      if (mapped) throw error;
      value = await (stages[from] as AnyStage)[recover](error, input, context, signal, race);
    }
    for (let index = from + 1; index < stages.length; index++) {
      const stage = stages[index] as AnyStage;
      const stageInput = value;
      throwIfAborted(signal);
      try {
        value = stage[begin](stageInput, context, signal, race);
        if (isThenable(value)) value = await value;
      } catch (error) {
        value = await stage[recover](error, stageInput, context, signal, race);
      }
    }
    return value;
  }

  async #runHooked(
    input: unknown,
    context: C,
    signal: AbortSignal | undefined,
    race: boolean,
  ): Promise<unknown> {
    const before = this.#beforeStage;
    const after = this.#afterStage;
    const beforeTakesContext = this.#beforeTakesContext;
    const afterTakesContext = this.#afterTakesContext;
    const chain = this.#chain;
    // Middlewares always get a signal: one that never aborts when the run has none.
    const chainSignal = chain === undefined ? undefined : (signal ?? new AbortController().signal);
    const stages = this.#stages;
    let value = input;
    // An indexed loop: an array iterator held across awaits costs an allocation per stage.
    // eslint-disable-next-line @typescript-eslint/prefer-for-of
    for (let index = 0; index < stages.length; index++) {
      const stage = stages[index] as AnyStage;
      throwIfAborted(signal);
      const { name } = stage;
      let output: unknown;
      let error: unknown;
      let failed = false;
      try {
        if (before !== undefined) {
          // Awaited only when the hook returned a promise: a sync hook costs no microtask. A
          // hook that hangs does not delay the caller's cancellation.
          const pending = callBefore(before, beforeTakesContext, name, value, context);
          if (pending !== undefined) await (race ? untilAborted(pending, signal) : pending);
        }
        // The signal may have aborted while beforeStage ran: the stage does not start, and
        // afterStage sees it cancelled.
        throwIfAborted(signal);
        if (chain === undefined) {
          try {
            output = stage[begin](value, context, signal, race);
            if (isThenable(output)) output = await output;
          } catch (failure) {
            output = await stage[recover](failure, value, context, signal, race);
          }
        } else {
          const chained = chain(stage, value, context, chainSignal as AbortSignal);
          // A middleware that ignores its signal must not delay the caller's cancellation.
          output = await (race ? untilAborted(chained, signal) : chained);
        }
      } catch (caught) {
        failed = true;
        error = caught;
        output = undefined;
      }
      if (after !== undefined) {
        const pending = callAfter(after, afterTakesContext, name, value, output, error, context);
        if (pending !== undefined) await (race ? untilAborted(pending, signal) : pending);
      }
      if (failed) throw error;
      value = output;
    }
    // Cancellation wins over the output: a hook or stage may have aborted the signal.
    throwIfAborted(signal);
    return value;
  }
}

/**
 * Calls `beforeStage`, ignoring its failure: returns its promise, guarded, when it returned
 * one, so that the run awaits it, and `undefined` otherwise. No closure, and no microtask
 * for a synchronous hook.
 */
function callBefore<C extends object>(
  hook: BeforeStageHook<C>,
  takesContext: boolean,
  name: string,
  input: unknown,
  context: C,
): PromiseLike<unknown> | undefined {
  try {
    const result = takesContext
      ? hook(name, input, context)
      : (hook as (stageName: string, input: unknown) => unknown)(name, input);
    return handled(result);
  } catch {
    return undefined; // A hook's failure is documented as ignored.
  }
}

/** {@link callBefore} for `afterStage`. */
function callAfter<C extends object>(
  hook: AfterStageHook<C>,
  takesContext: boolean,
  name: string,
  input: unknown,
  output: unknown,
  error: unknown,
  context: C,
): PromiseLike<unknown> | undefined {
  try {
    const result = takesContext
      ? hook(name, input, output, error, context)
      : (hook as (n: string, i: unknown, o: unknown, e: unknown) => unknown)(
          name,
          input,
          output,
          error,
        );
    return handled(result);
  } catch {
    return undefined; // A hook's failure is documented as ignored.
  }
}

/**
 * The constructor type of {@link Pipeline}: infers `Pipeline<I, O, C>` from the stages and
 * rejects, at compile time, a stage whose input type does not accept the previous stage's
 * output, and an empty stage list.
 */
export interface PipelineConstructor {
  /**
   * @param stages - the stages, in order (at least one)
   * @param options - hooks
   * @throws RangeError when `stages` is empty
   * @throws TypeError when `stages` is not an array of `Stage` or an option has the wrong type
   */
  new <const S extends readonly AnyStage[]>(
    stages: S & ValidStages<S>,
    options?: PipelineOptions<PipelineContext<S>>,
  ): Pipeline<PipelineInput<S>, PipelineOutput<S>, PipelineContext<S>>;
  /** The prototype every pipeline inherits from, so that `value instanceof Pipeline` works. */
  readonly prototype: Pipeline<unknown, unknown>;
}

/**
 * Stages run in order, each receiving the previous stage's output, with hooks around each
 * stage, one context per run, and batch forms with bounded concurrency.
 *
 * The types chain: `Pipeline<I, O, C>` is inferred from the stages, and a stage that cannot
 * take the previous stage's output does not compile.
 *
 * @typeParam I - the first stage's input type
 * @typeParam O - the last stage's output type
 * @typeParam C - the context type every stage, hook and middleware shares
 * @example
 * ```ts
 * import { Pipeline, Stage } from "async-pipeline";
 *
 * const pipeline = new Pipeline([
 *   new Stage("parse", (line: string) => Number.parseInt(line, 10)),
 *   new Stage("square", async (value: number) => value * value, { timeout: 1_000 }),
 * ]);
 *
 * await pipeline.run("12"); // 144
 * await pipeline.map(["1", "2", "3"], 2); // [1, 4, 9]
 * ```
 * @interface
 */
export type Pipeline<I, O, C extends object = Context> = PipelineImpl<I, O, C>;

/** {@inheritDoc Pipeline:interface} */
export const Pipeline = PipelineImpl as PipelineConstructor;

// The class a user meets is `Pipeline` (in `console.log(pipeline)`, in stack traces), not the
// name of its implementation.
Object.defineProperty(PipelineImpl, "name", { value: "Pipeline" });
