import type {
  AnyStage,
  PipelineContext,
  PipelineInput,
  PipelineOutput,
  ValidStages,
} from "./chain.js";
import type { AdaptiveConcurrency } from "./flow/adaptive.js";
import { withHooks } from "./hooks.js";
import { collect, type RunnerFactory } from "./internal/batch.js";
import { copyContext } from "./internal/context.js";
import { executionOf, type Execution } from "./internal/execution.js";
import type { AttemptObserver } from "./internal/limits.js";
import type { ItemRunner } from "./internal/pool.js";
import { RunLoop, runOnce } from "./internal/run-loop.js";
import { pipelineStream } from "./internal/stream.js";
import { isThenable } from "./internal/thenable.js";
import { isFunction, listOf, optionalFunction, optionsObject } from "./internal/validate.js";
import { withMiddlewares, type Middleware } from "./middleware.js";
import {
  batchSettings,
  mapForm,
  mapSettledForm,
  streamForm,
  type MapOptions,
  type StreamOptions,
} from "./options/batch.js";
import {
  pipelineHints,
  pipelineOptionKeys,
  runSettings,
  type PipelineOptions,
  type RunWrapper,
} from "./options/pipeline.js";
import type { Context, RunOptions } from "./types.js";

/** Whether `value` is a stage (of any copy of the library): what `stages` must hold. */
function isStage(value: unknown): boolean {
  return (
    typeof value === "object" &&
    value !== null &&
    typeof (value as Partial<Record<typeof executionOf, unknown>>)[executionOf] === "object"
  );
}

/**
 * The implementation behind {@link Pipeline}; exported under that name with a constructor
 * type that infers `I`, `O` and `C` from the stages and checks that they chain.
 */
class PipelineImpl<I, O, C extends object = Context> {
  readonly #stages: readonly AnyStage[];
  /** The stages' names, in order: what a checkpoint records as the pipeline's identity. */
  readonly #stageNames: readonly string[];
  /**
   * What runs for each stage, in order: its execution, inside the middlewares and hooks when
   * there are any, composed once here. The run loop runs these, hooked or not.
   */
  readonly #steps: readonly Execution[];
  readonly #aroundRun: RunWrapper<C> | undefined;
  /** Whether a run needs a context object: something reads it. */
  readonly #needsContext: boolean;

  constructor(stages: readonly AnyStage[], options?: PipelineOptions<C>) {
    this.#stages = Object.freeze(listOf<AnyStage>("stages", stages, "a Stage", isStage));
    if (this.#stages.length === 0) throw new RangeError("Pipeline requires at least one stage");
    this.#stageNames = Object.freeze(this.#stages.map((stage) => stage.name));
    const opts =
      optionsObject<NonNullable<typeof options>>(
        "options",
        options,
        pipelineOptionKeys,
        pipelineHints,
      ) ?? {};
    const before = optionalFunction("beforeStage", opts.beforeStage);
    const after = optionalFunction("afterStage", opts.afterStage);
    const middlewares = listOf<Middleware<C>>(
      "middlewares",
      opts.middlewares ?? [],
      "a function",
      isFunction,
    );
    this.#aroundRun = optionalFunction("aroundRun", opts.aroundRun);
    this.#steps = this.#stages.map((stage) => {
      const { name } = stage;
      let step = (stage as unknown as Record<typeof executionOf, Execution>)[executionOf];
      if (middlewares.length > 0) step = withMiddlewares(step, name, middlewares);
      if (before !== undefined || after !== undefined)
        step = withHooks(step, name, { before, after });
      return step;
    });
    this.#needsContext =
      this.#aroundRun !== undefined || this.#steps.some((step) => step.readsContext);
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
    let signal: AbortSignal | undefined;
    let context: C;
    try {
      ({ signal, context } = runSettings(options, () => this.#newContext()));
    } catch (error) {
      return Promise.reject(error);
    }
    const around = this.#aroundRun;
    if (around === undefined) return this.#runOnce(input, context, signal) as Promise<O>;
    try {
      return Promise.resolve(
        around(() => this.#runOnce(input, context, signal), input, context, signal),
      ) as Promise<O>;
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
   * With `checkpoint`, each finished item is recorded, and the same call after a crash runs
   * only what is not recorded (see {@link MapOptions.checkpoint}).
   *
   * @param items - the inputs
   * @param concurrency - items run at once: an integer ≥ 1, `Infinity`, or an
   *   `adaptiveConcurrency(...)` (default 5)
   * @param options - `context` template, `signal`, `onProgress`, `perKey`, `checkpoint`
   *   (with `itemKey`, `retryFailed`, `version`)
   * @returns the outputs, in input order
   * @example
   * ```ts
   * const outputs = await pipeline.map([1, 2, 3], 2); // [4, 6, 8] for the pipeline above
   * const more = await pipeline.map(readIds(), { concurrency: 16, signal });
   * const resumable = await pipeline.map(ids, { checkpoint: fileCheckpoint("ids.ckpt") });
   * ```
   */
  map(
    items: Iterable<I> | AsyncIterable<I>,
    concurrency?: number | AdaptiveConcurrency,
    options?: MapOptions<C, I>,
  ): Promise<O[]>;
  map(items: Iterable<I> | AsyncIterable<I>, options?: MapOptions<C, I>): Promise<O[]>;
  map(
    items: Iterable<I> | AsyncIterable<I>,
    concurrencyOrOptions?: number | AdaptiveConcurrency | MapOptions<C, I>,
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
   * @param concurrency - items run at once: an integer ≥ 1, `Infinity`, or an
   *   `adaptiveConcurrency(...)` (default 5)
   * @param options - `context` template, `signal`, `onProgress`, `perKey`, `checkpoint`
   *   (with `itemKey`, `retryFailed`, `version`)
   * @returns `{ status: "fulfilled", value }` or `{ status: "rejected", reason }` per item
   * @example
   * ```ts
   * const settled = await pipeline.mapSettled(urls, 8);
   * const failed = settled.filter((entry) => entry.status === "rejected");
   * ```
   */
  mapSettled(
    items: Iterable<I> | AsyncIterable<I>,
    concurrency?: number | AdaptiveConcurrency,
    options?: MapOptions<C, I>,
  ): Promise<PromiseSettledResult<O>[]>;
  mapSettled(
    items: Iterable<I> | AsyncIterable<I>,
    options?: MapOptions<C, I>,
  ): Promise<PromiseSettledResult<O>[]>;
  mapSettled(
    items: Iterable<I> | AsyncIterable<I>,
    concurrencyOrOptions?: number | AdaptiveConcurrency | MapOptions<C, I>,
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
   * @param concurrency - items run at once: an integer ≥ 1, `Infinity`, or an
   *   `adaptiveConcurrency(...)` (default 5)
   * @param options - `buffer`, `ordered`, `settled`, `context`, `signal`, `onProgress`,
   *   `perKey`, `checkpoint` (with `itemKey`, `retryFailed`, `version`): a resumed stream
   *   yields the recorded outputs in their places, fetching each when its turn comes
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
    concurrency: number | AdaptiveConcurrency | undefined,
    options: StreamOptions<C, I> & { settled: true },
  ): AsyncGenerator<PromiseSettledResult<O>, void, undefined>;
  stream(
    items: Iterable<I> | AsyncIterable<I>,
    options: StreamOptions<C, I> & { settled: true },
  ): AsyncGenerator<PromiseSettledResult<O>, void, undefined>;
  stream(
    items: Iterable<I> | AsyncIterable<I>,
    concurrency?: number | AdaptiveConcurrency,
    options?: StreamOptions<C, I> & { settled?: false | undefined },
  ): AsyncGenerator<O, void, undefined>;
  stream(
    items: Iterable<I> | AsyncIterable<I>,
    options?: StreamOptions<C, I> & { settled?: false | undefined },
  ): AsyncGenerator<O, void, undefined>;
  stream(
    items: Iterable<I> | AsyncIterable<I>,
    concurrency?: number | AdaptiveConcurrency,
    options?: StreamOptions<C, I>,
  ): AsyncGenerator<O | PromiseSettledResult<O>, void, undefined>;
  stream(
    items: Iterable<I> | AsyncIterable<I>,
    options?: StreamOptions<C, I>,
  ): AsyncGenerator<O | PromiseSettledResult<O>, void, undefined>;
  stream(
    items: Iterable<I> | AsyncIterable<I>,
    concurrencyOrOptions?: number | AdaptiveConcurrency | StreamOptions<C, I>,
    options?: StreamOptions<C, I>,
  ): AsyncGenerator<unknown, void, undefined> {
    return pipelineStream(
      items,
      () => batchSettings<C>(items, concurrencyOrOptions, options, streamForm),
      (settings) => this.#runners(settings.template as C | undefined),
      this.#stageNames,
    );
  }

  #batch(
    items: Iterable<I> | AsyncIterable<I>,
    concurrencyOrOptions: number | AdaptiveConcurrency | MapOptions<C, I> | undefined,
    options: MapOptions<C, I> | undefined,
    settled: boolean,
  ): Promise<unknown[]> {
    let settings;
    try {
      settings = batchSettings<C>(
        items,
        concurrencyOrOptions,
        options,
        settled ? mapSettledForm : mapForm,
      );
    } catch (error) {
      return Promise.reject(error);
    }
    return collect(items, settings, this.#runners(settings.template), settled, this.#stageNames);
  }

  /** One run of the stages on `input`, as a promise; `observer` as {@link RunLoop.start}'s. */
  #runOnce(
    input: unknown,
    context: C,
    signal: AbortSignal | undefined,
    observer?: AttemptObserver,
  ): Promise<unknown> {
    return runOnce(new RunLoop(this.#steps, signal, context, undefined), input, signal, observer);
  }

  /**
   * The runners of one batch: each item gets its own context (a copy of the template, or a
   * new one when something reads it) and goes through the run loop, or through `aroundRun`.
   */
  #runners(template: C | undefined): RunnerFactory {
    // Chosen once per batch, not per item: `undefined` when no item needs a context.
    const newContext: (() => C) | undefined =
      template !== undefined
        ? () => copyContext(template)
        : this.#needsContext
          ? () => ({}) as C
          : undefined;
    const around = this.#aroundRun;
    const steps = this.#steps;
    if (around === undefined) return (signal) => new RunLoop(steps, signal, undefined, newContext);
    return (signal) =>
      new AroundRun(
        around,
        (input, context, observer) => this.#runOnce(input, context, signal, observer),
        newContext,
        signal,
      );
  }

  #newContext(): C {
    return (this.#needsContext ? {} : undefined) as C;
  }
}

/** A batch item of a pipeline with `aroundRun`: the whole run inside it, as one step. */
class AroundRun<C extends object> implements ItemRunner<unknown> {
  readonly #around: RunWrapper<C>;
  readonly #run: (
    input: unknown,
    context: C,
    observer: AttemptObserver | undefined,
  ) => Promise<unknown>;
  readonly #newContext: (() => C) | undefined;
  readonly #signal: AbortSignal;
  pending = false;

  constructor(
    around: RunWrapper<C>,
    run: (input: unknown, context: C, observer: AttemptObserver | undefined) => Promise<unknown>,
    newContext: (() => C) | undefined,
    signal: AbortSignal,
  ) {
    this.#around = around;
    this.#run = run;
    this.#newContext = newContext;
    this.#signal = signal;
  }

  start(item: unknown, observer: AttemptObserver | undefined): unknown {
    const context = this.#newContext?.() as C;
    this.pending = false;
    const result = this.#around(
      () => this.#run(item, context, observer),
      item,
      context,
      this.#signal,
    );
    this.pending = isThenable(result);
    return result;
  }

  resume(value: unknown): unknown {
    this.pending = false;
    return value;
  }

  failure(error: unknown): unknown {
    this.pending = false;
    return error;
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
