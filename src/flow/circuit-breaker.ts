import { BrokenCircuitError } from "../errors/BrokenCircuitError.js";
import { guardExecution, type ExecutionGuard } from "../internal/gates.js";
import type { OptionKeys } from "../internal/known-keys.js";
import { isThenable } from "../internal/thenable.js";
import { circuitBreakerOptionHints } from "../internal/option-hints.js";
import {
  oneOf,
  optionalFunction,
  optionsObject,
  positiveDuration,
  positiveInteger,
  show,
} from "../internal/validate.js";
import type { Context } from "../types.js";
import {
  BLOCKED,
  Circuit,
  EXPIRED,
  RELEASED,
  type CircuitSettings,
  type CircuitState,
} from "./circuit.js";
import { KeyedStates } from "./keyed.js";

export type { CircuitState } from "./circuit.js";

/**
 * What an execution does while its circuit is open: `"fail"` at once with a
 * `BrokenCircuitError`, or `"wait"` for the circuit to close.
 *
 * @default "fail"
 * @example
 * ```ts
 * import { CircuitBreaker, type WhenOpen } from "async-pipeline";
 *
 * const whenOpen: WhenOpen = process.env.BATCH === "1" ? "wait" : "fail";
 * new CircuitBreaker({ threshold: 5, cooldown: 30_000, whenOpen });
 * ```
 */
export type WhenOpen = "fail" | "wait";

/**
 * Options of a {@link CircuitBreaker}.
 *
 * @typeParam T - the input of the stages the breaker is given to (what `key` reads)
 * @typeParam C - their context type
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
export interface CircuitBreakerOptions<T = unknown, C extends object = Context> {
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
   * number > 0, measured on a clock that never goes back (`performance.now()`).
   * @default no default: required
   * @example
   * ```ts
   * new CircuitBreaker({ threshold: 3, cooldown: 60_000 }); // try again after a minute
   * ```
   */
  cooldown: number;
  /**
   * Called with the new state on each change, and the key of the circuit that changed
   * (`undefined` without a `key` option). Not awaited; its failures are ignored. It is told
   * once the change is complete: an execution it starts at once sees the new state (in
   * `"half-open"`, with the trial already running).
   * @default undefined
   * @example
   * ```ts
   * new CircuitBreaker({
   *   threshold: 3,
   *   cooldown: 10_000,
   *   onStateChange: (state, host) => console.warn(`circuit of ${String(host)}: ${state}`),
   * });
   * ```
   */
  onStateChange?: ((state: CircuitState, key: unknown) => unknown) | undefined;
  /**
   * `"fail"`: while the circuit is open (or its trial runs), an execution fails at once with a
   * `BrokenCircuitError`, without calling the handler. `"wait"`: it waits (in order, taking no
   * rate-limit slot, making no attempt) until the circuit closes, then runs; after the
   * cooldown the first waiter is the trial. For batch jobs: an outage shorter than `maxWait`
   * pauses the batch instead of draining it. The execution whose failure opened the circuit,
   * one that failed while it was open, and a failed trial wait too and then run again, with
   * the stage's full attempts. A failure that does not open the circuit is held while other
   * executions of the circuit run: if the circuit opens meanwhile, it waits and runs again
   * too; a success (the streak is broken), nothing else running, `maxWait` or the signal let
   * it stand. So an outage shorter than `maxWait` fails no item whose stage retries.
   * @default "fail"
   * @example
   * ```ts
   * // A nightly batch: pause while the service is down, for up to 10 minutes.
   * new CircuitBreaker({ threshold: 5, cooldown: 30_000, whenOpen: "wait", maxWait: 600_000 });
   * ```
   */
  whenOpen?: WhenOpen | undefined;
  /**
   * With `whenOpen: "wait"`: how long, in ms, an execution may wait at a time; after that it
   * fails with a `BrokenCircuitError`. A number > 0, or `Infinity`. Only with
   * `whenOpen: "wait"`.
   * @default Infinity
   * @example
   * ```ts
   * new CircuitBreaker({ threshold: 5, cooldown: 30_000, whenOpen: "wait", maxWait: 300_000 });
   * ```
   */
  maxWait?: number | undefined;
  /**
   * Gives each key its own circuit: `key(value, context)` with the stage's input and the run's
   * context, keys compared as a `Map` compares them. One breaker then stops calling one host
   * (tenant, account) that is down while the others carry on. A closed circuit with no failure
   * counted, nothing running and nobody waiting is dropped, so a million keys do not stay in
   * memory. A throw fails that execution.
   * @default undefined (one circuit for every execution)
   * @example
   * ```ts
   * new CircuitBreaker({ threshold: 3, cooldown: 30_000, key: (url: URL) => url.host });
   * ```
   */
  key?: ((value: T, context: C) => unknown) | undefined;
}

/** The keys of {@link CircuitBreakerOptions}; any other key is rejected. */
const circuitBreakerOptionKeys = {
  threshold: true,
  cooldown: true,
  onStateChange: true,
  whenOpen: true,
  maxWait: true,
  key: true,
} as const satisfies OptionKeys<CircuitBreakerOptions>;

/** `breaker[circuitCount]`: how many keys' circuits a keyed breaker holds now (for tests). */
export const circuitCount: unique symbol = Symbol("CircuitBreaker.circuitCount") as never;

type Refuse = (error: unknown) => unknown;
type Reader = (value: unknown, context: unknown) => unknown;

/**
 * Stops calling a service that keeps failing. After `threshold` consecutive failed stage
 * executions the circuit opens: the executions of the stages that share the breaker then fail
 * at once, without calling the handler, with a {@link StageExecutionError} whose
 * `originalError` is a {@link BrokenCircuitError}, or, with `whenOpen: "wait"`, wait for it to
 * close. Once `cooldown` ms have passed, one trial execution runs (`"half-open"`; the others
 * still fail fast, or wait): its success closes the circuit, its failure opens it for another
 * `cooldown`.
 *
 * - **Cancellation counts neither way.** A cancelled execution (the caller's signal aborted,
 *   or the batch stopped) is neither a success nor a failure; a cancelled trial lets the next
 *   execution be the trial.
 * - **Stale outcomes are ignored.** An execution that began before the circuit opened (or in an
 *   earlier closed period) does not count when it settles later; a trial's outcome moves only
 *   the state it was admitted in.
 * - **One trial at a time**, also when `onStateChange` starts an execution from inside the
 *   change to `"half-open"`.
 * - **Time never runs backwards.** The cooldown is measured on `performance.now()`: a wall
 *   clock stepped back or forward neither keeps a circuit open for the size of the step nor
 *   lets a trial through early. Fake timers drive it.
 * - **Timers.** None with `whenOpen: "fail"` (the move to `"half-open"` happens when the first
 *   execution after the cooldown arrives). With `"wait"`, one per circuit while executions
 *   wait or are held: for the end of the cooldown, or the first `maxWait` if that comes first.
 * - **Per key.** With `key`, each key has its own circuit; `stateOf(key)` reads it.
 *
 * One breaker may be shared by several stages and several pipelines: they then count together
 * and open together.
 *
 * @typeParam T - the input of the stages the breaker is given to (what `key` reads)
 * @typeParam C - their context type
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
// Implements `ExecutionGuard` (checked where `executionGuardOption` returns it): not declared
// here, where it would make an internal interface part of the public class's documentation.
export class CircuitBreaker<T = unknown, C extends object = Context> {
  readonly #settings: CircuitSettings;
  readonly #key: Reader | undefined;
  /** The one circuit, without `key`. */
  readonly #circuit: Circuit | undefined;
  /** The circuits per key, with `key`. */
  readonly #circuits: KeyedStates<Circuit> | undefined;
  readonly #makeCircuit = (key: unknown): Circuit => new Circuit(key, this.#settings);

  /**
   * @param options - `threshold`, `cooldown`, `onStateChange`, `whenOpen`, `maxWait`, `key`:
   *   see {@link CircuitBreakerOptions}
   * @throws TypeError when `options` is not an object, has an unknown key, or an option has the
   *   wrong type, or `maxWait` is given without `whenOpen: "wait"`
   * @throws RangeError when `threshold` is not an integer ≥ 1, `cooldown` is not a finite
   *   number > 0, `maxWait` is not a number > 0, or `whenOpen` is another string
   */
  constructor(options: CircuitBreakerOptions<T, C>) {
    const opts = optionsObject<Partial<CircuitBreakerOptions>>(
      "options",
      options,
      circuitBreakerOptionKeys,
      circuitBreakerOptionHints,
    );
    if (opts === undefined) throw new TypeError("options must be an object, got undefined");
    const wait = oneOf("whenOpen", opts.whenOpen, ["fail", "wait"], "fail") === "wait";
    this.#settings = Object.freeze({
      threshold: positiveInteger("threshold", opts.threshold),
      cooldown: positiveDuration("cooldown", opts.cooldown),
      onStateChange: optionalFunction("onStateChange", opts.onStateChange),
      wait,
      maxWait: maxWaitOption(opts.maxWait, wait),
    });
    this.#key = optionalFunction("key", opts.key) as Reader | undefined;
    if (this.#key === undefined) this.#circuit = this.#makeCircuit(undefined);
    else this.#circuits = new KeyedStates((circuit) => circuit.idle);
  }

  /**
   * The state of the circuit: without a `key` option, the breaker's one circuit; with one, the
   * circuit of the key `undefined` (see {@link CircuitBreaker.stateOf}). `"open"` until the
   * first execution that arrives after the cooldown (or, with `whenOpen: "wait"` and
   * executions waiting, until the cooldown ends), which moves it to `"half-open"`.
   * @default "closed"
   * @example
   * ```ts
   * new CircuitBreaker({ threshold: 3, cooldown: 1_000 }).state; // "closed"
   * ```
   */
  get state(): CircuitState {
    return this.stateOf(undefined);
  }

  /**
   * The state of the circuit of `key` (keys compared as a `Map` compares them): `"closed"` for a
   * key it holds nothing for. Without a `key` option every key shares the one circuit.
   * @param key - a key as the `key` option returns it
   * @default "closed"
   * @example
   * ```ts
   * import { CircuitBreaker } from "async-pipeline";
   *
   * const perHost = new CircuitBreaker({ threshold: 3, cooldown: 30_000, key: (url: URL) => url.host });
   * perHost.stateOf("api.example.com"); // "closed"
   * ```
   */
  stateOf(key: unknown): CircuitState {
    return (this.#circuit ?? this.#circuits?.get(key))?.state ?? "closed";
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
    return this.#settings.threshold;
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
    return this.#settings.cooldown;
  }

  /** How many keys' circuits are held now: 0 without `key`. @internal */
  get [circuitCount](): number {
    return this.#circuits?.size ?? 0;
  }

  /** See {@link guardExecution}. @internal */
  [guardExecution]<R>(
    stageName: string,
    value: unknown,
    context: unknown,
    signal: AbortSignal | undefined,
    refuse: Refuse,
    run: () => R | PromiseLike<R>,
  ): R | Promise<R> {
    const circuit = this.#circuit ?? this.#circuitOf(value, context, refuse);
    const ticket = circuit.admit();
    if (ticket !== BLOCKED) return this.#run(circuit, ticket, stageName, signal, refuse, run);
    if (!this.#settings.wait) throw refuse(new BrokenCircuitError(stageName, circuit.lastFailure));
    return this.#runWhen(circuit, circuit.wait(signal), undefined, stageName, signal, refuse, run);
  }

  /** The circuit of the execution's key; a `key` that throws fails it, as a refusal does. */
  #circuitOf(value: unknown, context: unknown, refuse: Refuse): Circuit {
    let key: unknown;
    try {
      key = (this.#key as Reader)(value, context);
    } catch (error) {
      throw refuse(error);
    }
    return (this.#circuits as KeyedStates<Circuit>).obtain(key, this.#makeCircuit);
  }

  /**
   * Runs the admitted execution and reports its outcome; in wait mode, holds its failure or
   * waits and runs it again when the circuit says so.
   */
  #run<R>(
    circuit: Circuit,
    ticket: number,
    stageName: string,
    signal: AbortSignal | undefined,
    refuse: Refuse,
    run: () => R | PromiseLike<R>,
  ): R | Promise<R> {
    let result: R | PromiseLike<R>;
    try {
      result = run();
      if (!isThenable(result)) {
        circuit.report(ticket, true, undefined, false);
        return result;
      }
    } catch (error) {
      return this.#failed(circuit, ticket, error, stageName, signal, refuse, run);
    }
    return Promise.resolve(result).then(
      (value) => {
        circuit.report(ticket, true, undefined, false);
        return value;
      },
      (error: unknown) => this.#failed(circuit, ticket, error, stageName, signal, refuse, run),
    );
  }

  /**
   * The admitted execution failed with `error`: thrown as it is, unless wait mode holds it or
   * runs it again (see {@link Circuit.report}).
   */
  #failed<R>(
    circuit: Circuit,
    ticket: number,
    error: unknown,
    stageName: string,
    signal: AbortSignal | undefined,
    refuse: Refuse,
    run: () => R | PromiseLike<R>,
  ): Promise<R> {
    const verdict = circuit.report(ticket, false, error, signal?.aborted === true);
    if (verdict === "done") throw error;
    const waiting = verdict === "again" ? circuit.wait(signal) : circuit.hold(signal);
    return this.#runWhen(circuit, waiting, error, stageName, signal, refuse, run);
  }

  /**
   * Wait mode: runs the execution once `waiting` gives it a ticket. A held `failure` that
   * stands is thrown; a wait of `maxWait` in vain is refused.
   */
  async #runWhen<R>(
    circuit: Circuit,
    waiting: Promise<number>,
    failure: unknown,
    stageName: string,
    signal: AbortSignal | undefined,
    refuse: Refuse,
    run: () => R | PromiseLike<R>,
  ): Promise<R> {
    const ticket = await waiting;
    if (ticket === RELEASED) throw failure;
    if (ticket === EXPIRED) {
      throw refuse(new BrokenCircuitError(stageName, circuit.lastFailure, this.#settings.maxWait));
    }
    return this.#run(circuit, ticket, stageName, signal, refuse, run);
  }
}

/** `maxWait`, validated: a number > 0 or `Infinity`, only with `whenOpen: "wait"`. */
function maxWaitOption(value: unknown, wait: boolean): number {
  if (value === undefined) return Infinity;
  if (!wait) {
    throw new TypeError(
      `maxWait applies only with whenOpen: "wait" (got maxWait ${show(value)} without it)`,
    );
  }
  return value === Infinity ? Infinity : positiveDuration("maxWait", value);
}

/**
 * The `circuitBreaker` stage option, validated, as the guard around the stage's executions: a
 * {@link CircuitBreaker} of this or any other copy of the package.
 */
export function executionGuardOption(value: unknown): ExecutionGuard | undefined {
  if (value === undefined) return undefined;
  if (
    typeof value !== "object" ||
    value === null ||
    typeof (value as Partial<CircuitBreaker>)[guardExecution] !== "function"
  ) {
    throw new TypeError(`circuitBreaker must be a CircuitBreaker, got ${show(value)}`);
  }
  return value as CircuitBreaker;
}
