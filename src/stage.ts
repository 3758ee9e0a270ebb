import { executionGuardOption } from "./flow/circuit-breaker.js";
import { attemptGateOption } from "./flow/limiter-set.js";
import {
  composeExecution,
  executionOf,
  type Execution,
  type StagePlan,
} from "./internal/execution.js";
import { retryPolicy, type RetryPolicy } from "./internal/retry.js";
import { RunLoop, runOnce } from "./internal/run-loop.js";
import { nonEmptyString, optionsObject, positiveDuration } from "./internal/validate.js";
import { runSettings } from "./options/pipeline.js";
import { stageHints, stageOptionKeys, type StageOptions } from "./options/stage.js";
import { type Backoff, type Context, type Handler, type RunOptions } from "./types.js";

/**
 * One named step of a pipeline: a sync or async handler with an optional timeout, retries and
 * backoff.
 *
 * The handler is called with `value` alone when it declares fewer than two parameters
 * (`handler.length < 2`), otherwise with `(value, context, call)`. Note that a parameter with a
 * default value, and a rest parameter, do not count in `handler.length`.
 *
 * @typeParam I - the input type (what the previous stage returns)
 * @typeParam O - the output type (the handler's result, awaited)
 * @typeParam C - the context type the handler reads
 * @example
 * ```ts
 * import { Stage } from "async-pipeline";
 *
 * const addOne = new Stage("addOne", (value: number) => value + 1);
 * const fetchUser = new Stage(
 *   "fetchUser",
 *   async (id: string, _context, call) => {
 *     const response = await fetch(`https://example.com/users/${id}`, { signal: call.signal });
 *     return (await response.json()) as { name: string };
 *   },
 *   { timeout: 5_000, retries: 2, retryDelay: 200, backoff: "exponential" },
 * );
 *
 * await addOne.run(1); // 2
 * ```
 */
export class Stage<I, O, C extends object = Context> {
  readonly #name: string;
  readonly #timeout: number | undefined;
  readonly #policy: RetryPolicy;
  /** Every attempt of one run of the stage, composed once: see {@link composeExecution}. */
  readonly #execution: Execution;

  /**
   * @param name - names the stage in errors, hooks and middleware
   * @param handler - the work: `(value)` or `(value, context, call)`, sync or async
   * @param options - timeout and retry settings, see {@link StageOptions}
   * @throws TypeError when `name` is not a string, `handler` is not a function, or an option
   *   has the wrong type
   * @throws RangeError when `name` is empty or an option is out of range
   */
  constructor(name: string, handler: Handler<I, O, C>, options?: StageOptions) {
    this.#name = nonEmptyString("name", name);
    if (typeof handler !== "function") {
      throw new TypeError(`handler must be a function, got ${typeof handler}`);
    }
    const opts =
      optionsObject<NonNullable<typeof options>>("options", options, stageOptionKeys, stageHints) ??
      {};
    this.#timeout =
      opts.timeout === undefined ? undefined : positiveDuration("timeout", opts.timeout);
    this.#policy = retryPolicy(opts);
    const plan: StagePlan = {
      name: this.#name,
      handler: handler as StagePlan["handler"],
      takesContext: handler.length >= 2,
      timeout: this.#timeout,
      policy: this.#policy,
      gate: attemptGateOption(opts.rateLimit),
      guard: executionGuardOption(opts.circuitBreaker),
    };
    this.#execution = composeExecution(plan);
  }

  /**
   * The stage's name.
   * @example
   * ```ts
   * new Stage("parse", JSON.parse).name; // "parse"
   * ```
   */
  get name(): string {
    return this.#name;
  }

  /**
   * The per-attempt timeout in ms, or `undefined` for none.
   * @default undefined
   * @example
   * ```ts
   * new Stage("s", handler, { timeout: 1_000 }).timeout; // 1000
   * ```
   */
  get timeout(): number | undefined {
    return this.#timeout;
  }

  /**
   * Extra attempts after the first.
   * @default 0
   * @example
   * ```ts
   * new Stage("s", handler, { retries: 2 }).retries; // 2
   * ```
   */
  get retries(): number {
    return this.#policy.retries;
  }

  /**
   * The base wait between attempts, in ms.
   * @default 0
   * @example
   * ```ts
   * new Stage("s", handler, { retryDelay: 100 }).retryDelay; // 100
   * ```
   */
  get retryDelay(): number {
    return this.#policy.retryDelay;
  }

  /**
   * How the wait grows between attempts.
   * @default "fixed"
   * @example
   * ```ts
   * new Stage("s", handler, { backoff: "exponential" }).backoff; // "exponential"
   * ```
   */
  get backoff(): Backoff {
    return this.#policy.backoff;
  }

  /**
   * The cap on any one wait, in ms, or `undefined` for none.
   * @default undefined
   * @example
   * ```ts
   * new Stage("s", handler, { maxRetryDelay: 5_000 }).maxRetryDelay; // 5000
   * ```
   */
  get maxRetryDelay(): number | undefined {
    return this.#policy.maxRetryDelay;
  }

  /**
   * Whether waits are drawn at random from [0, delay].
   * @default false
   * @example
   * ```ts
   * new Stage("s", handler, { jitter: true }).jitter; // true
   * ```
   */
  get jitter(): boolean {
    return this.#policy.jitter;
  }

  /**
   * Runs the stage once on `value`: every attempt it needs, then the output.
   *
   * @param value - the input
   * @param options - the `context` for a handler that takes one (a new empty object when
   *   omitted) and a `signal` to cancel with
   * @returns the handler's output
   * @throws StageExecutionError (as a rejection) when the last attempt failed
   * @throws the signal's `reason` (as a rejection) when `options.signal` aborts
   * @example
   * ```ts
   * import { Stage } from "async-pipeline";
   *
   * const double = new Stage("double", async (value: number) => value * 2, { timeout: 100 });
   * await double.run(21); // 42
   * ```
   */
  run(value: I, options?: RunOptions<C>): Promise<O> {
    let signal: AbortSignal | undefined;
    let context: C;
    try {
      ({ signal, context } = runSettings(options, () => ({}) as C));
    } catch (error) {
      return Promise.reject(error);
    }
    const loop = new RunLoop([this.#execution], signal, context, undefined);
    return runOnce(loop, value, signal) as Promise<O>;
  }

  /**
   * The stage's execution, for the pipeline that runs it: the one entry point between a
   * `Pipeline` and a `Stage`. A registered symbol, so that a stage made by the package's
   * CommonJS build runs in a pipeline made by its ESM build and the other way round.
   * @internal
   */
  get [executionOf](): Execution {
    return this.#execution;
  }
}
