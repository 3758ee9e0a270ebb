import { BrokenCircuitError } from "../errors/BrokenCircuitError.js";
import type { OptionKeys } from "../internal/known-keys.js";
import { callIgnoringErrors, isThenable } from "../internal/thenable.js";
import {
  optionalFunction,
  optionsObject,
  positiveDuration,
  positiveInteger,
  show,
} from "../internal/validate.js";

/**
 * The state of a {@link CircuitBreaker}: `"closed"` lets executions through, `"open"` refuses
 * them, `"half-open"` lets one trial execution through after the cooldown.
 *
 * @default "closed"
 * @example
 * ```ts
 * import type { CircuitState } from "async-pipeline";
 *
 * const healthy = (state: CircuitState): boolean => state === "closed";
 * ```
 */
export type CircuitState = "closed" | "open" | "half-open";

/**
 * Options of a {@link CircuitBreaker}.
 *
 * @example
 * ```ts
 * import { CircuitBreaker } from "async-pipeline";
 *
 * const breaker = new CircuitBreaker({
 *   threshold: 5,
 *   cooldown: 30_000,
 *   onStateChange: (state) => console.warn(`quotes API circuit: ${state}`),
 * });
 * ```
 */
export interface CircuitBreakerOptions {
  /**
   * Consecutive failed stage executions that open the circuit: an integer ≥ 1. An execution
   * fails when all its attempts failed; a retried attempt that then succeeds is a success.
   * @default no default: required
   * @example
   * ```ts
   * new CircuitBreaker({ threshold: 3, cooldown: 10_000 });
   * ```
   */
  threshold: number;
  /**
   * Milliseconds the circuit stays open before it lets one trial execution through: a finite
   * number > 0.
   * @default no default: required
   * @example
   * ```ts
   * new CircuitBreaker({ threshold: 3, cooldown: 60_000 }); // try again after a minute
   * ```
   */
  cooldown: number;
  /**
   * Called with the new state on each change. Not awaited; its failures are ignored.
   * @default undefined
   * @example
   * ```ts
   * new CircuitBreaker({ threshold: 3, cooldown: 10_000, onStateChange: (state) => metrics.gauge("circuit", state) });
   * ```
   */
  onStateChange?: ((state: CircuitState) => unknown) | undefined;
}

/**
 * `breaker[guard](stageName, signal, refuse, run)`: runs one stage execution `run()` through
 * the breaker (see {@link guardExecution}). A registered symbol, so that a breaker made by one
 * build of the package works with a stage made by another. Not exported from the package.
 */
export const guard: unique symbol = Symbol.for("async-pipeline.CircuitBreaker.guard") as never;

/** The keys of {@link CircuitBreakerOptions}; any other key is rejected. */
const circuitBreakerOptionKeys = {
  threshold: true,
  cooldown: true,
  onStateChange: true,
} as const satisfies OptionKeys<CircuitBreakerOptions>;

/** The ticket of the half-open trial execution; other tickets are the epoch they began in. */
const TRIAL = -1;

/**
 * Stops calling a service that keeps failing. After `threshold` consecutive failed stage
 * executions the circuit opens: every execution of the stages that share the breaker then
 * fails at once, without calling the handler, with a {@link StageExecutionError} whose
 * `originalError` is a {@link BrokenCircuitError}. The first execution that starts once
 * `cooldown` ms have passed is a trial (`"half-open"`; others still fail fast while it runs):
 * its success closes the circuit, its failure opens it for another `cooldown`.
 *
 * A cancelled execution (the caller's signal aborted, or the batch stopped) counts neither as
 * a success nor as a failure; a cancelled trial lets the next execution be the trial. Results
 * of executions that began before the circuit opened are ignored. There is no timer: the move
 * to `"half-open"` happens when that first execution after the cooldown starts
 * (`Date.now()`, so fake timers drive it).
 *
 * One breaker may be shared by several stages and several pipelines: they then count
 * together and open together.
 *
 * @example
 * ```ts
 * import { CircuitBreaker, Pipeline, Stage } from "async-pipeline";
 *
 * const quotesApi = new CircuitBreaker({ threshold: 5, cooldown: 30_000 });
 * const fetchQuote = new Stage("fetchQuote", async (id: string) => ({ id, price: 1 }), {
 *   circuitBreaker: quotesApi,
 *   retries: 2,
 * });
 * const settled = await new Pipeline([fetchQuote]).mapSettled(["a", "b"]);
 * quotesApi.state; // "closed"
 * ```
 */
export class CircuitBreaker {
  readonly #threshold: number;
  readonly #cooldown: number;
  readonly #onStateChange: ((state: CircuitState) => unknown) | undefined;
  #state: CircuitState = "closed";
  /** Consecutive failures while closed. */
  #failures = 0;
  /** Counts the closed periods, so that a result from an earlier one is ignored. */
  #epoch = 0;
  #openedAt = 0;
  #trialRunning = false;
  #lastFailure: unknown;

  /**
   * @param options - `threshold`, `cooldown`, `onStateChange`, see {@link CircuitBreakerOptions}
   * @throws TypeError when `options` is not an object or an option has the wrong type
   * @throws RangeError when `threshold` is not an integer ≥ 1 or `cooldown` is not a finite
   *   number > 0
   */
  constructor(options: CircuitBreakerOptions) {
    const opts = optionsObject<Partial<CircuitBreakerOptions>>(
      "options",
      options,
      circuitBreakerOptionKeys,
    );
    if (opts === undefined) throw new TypeError("options must be an object, got undefined");
    this.#threshold = positiveInteger("threshold", opts.threshold);
    this.#cooldown = positiveDuration("cooldown", opts.cooldown);
    this.#onStateChange = optionalFunction("onStateChange", opts.onStateChange);
  }

  /**
   * The current state. `"open"` until the first execution that starts after the cooldown,
   * which moves it to `"half-open"`.
   * @default "closed"
   * @example
   * ```ts
   * new CircuitBreaker({ threshold: 3, cooldown: 1_000 }).state; // "closed"
   * ```
   */
  get state(): CircuitState {
    return this.#state;
  }

  /**
   * Consecutive failed executions that open the circuit.
   * @default no default: set at construction
   * @example
   * ```ts
   * new CircuitBreaker({ threshold: 3, cooldown: 1_000 }).threshold; // 3
   * ```
   */
  get threshold(): number {
    return this.#threshold;
  }

  /**
   * Milliseconds the circuit stays open before a trial.
   * @default no default: set at construction
   * @example
   * ```ts
   * new CircuitBreaker({ threshold: 3, cooldown: 1_000 }).cooldown; // 1000
   * ```
   */
  get cooldown(): number {
    return this.#cooldown;
  }

  /**
   * Runs one stage execution through the breaker: throws `refuse(BrokenCircuitError)` at once
   * when the circuit refuses it, else returns `run()`'s result (a value, or a promise that
   * settles like it) and counts its outcome. A failure while `signal` has aborted is a
   * cancellation and is not counted.
   * @internal
   */
  [guard]<T>(
    stageName: string,
    signal: AbortSignal | undefined,
    refuse: (error: BrokenCircuitError) => unknown,
    run: () => T | PromiseLike<T>,
  ): T | Promise<T> {
    const ticket = this.#admit();
    if (ticket === undefined) throw refuse(new BrokenCircuitError(stageName, this.#lastFailure));
    let result: T | PromiseLike<T>;
    try {
      result = run();
      if (!isThenable(result)) {
        this.#report(ticket, true, undefined, signal);
        return result;
      }
    } catch (error) {
      this.#report(ticket, false, error, signal);
      throw error;
    }
    return Promise.resolve(result).then(
      (value) => {
        this.#report(ticket, true, undefined, signal);
        return value;
      },
      (error: unknown) => {
        this.#report(ticket, false, error, signal);
        throw error;
      },
    );
  }

  /** A ticket for an execution allowed to run, or `undefined` when refused. */
  #admit(): number | undefined {
    if (this.#state === "closed") return this.#epoch;
    if (this.#trialRunning) return undefined;
    if (this.#state === "open") {
      if (Date.now() - this.#openedAt < this.#cooldown) return undefined;
      this.#change("half-open");
    }
    this.#trialRunning = true;
    return TRIAL;
  }

  #report(ticket: number, ok: boolean, error: unknown, signal: AbortSignal | undefined): void {
    const cancelled = !ok && signal?.aborted === true;
    if (ticket === TRIAL) {
      this.#trialRunning = false;
      if (cancelled) return; // the next execution is the trial
      if (ok) this.#close();
      else this.#open(error);
      return;
    }
    if (cancelled || this.#state !== "closed" || ticket !== this.#epoch) return;
    if (ok) {
      this.#failures = 0;
      return;
    }
    this.#failures++;
    if (this.#failures >= this.#threshold) this.#open(error);
  }

  #open(error: unknown): void {
    this.#openedAt = Date.now();
    this.#lastFailure = error;
    this.#change("open");
  }

  #close(): void {
    this.#failures = 0;
    this.#epoch++;
    this.#lastFailure = undefined;
    this.#change("closed");
  }

  #change(state: CircuitState): void {
    this.#state = state;
    const onStateChange = this.#onStateChange;
    if (onStateChange !== undefined) callIgnoringErrors(() => onStateChange(state));
  }
}

/**
 * The `circuitBreaker` stage option, validated: a {@link CircuitBreaker} of this or any other
 * copy of the package.
 */
export function circuitBreakerOption(value: unknown): CircuitBreaker | undefined {
  if (value === undefined) return undefined;
  if (
    typeof value !== "object" ||
    value === null ||
    typeof (value as Partial<CircuitBreaker>)[guard] !== "function"
  ) {
    throw new TypeError(`circuitBreaker must be a CircuitBreaker, got ${show(value)}`);
  }
  return value as CircuitBreaker;
}
