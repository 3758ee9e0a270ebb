/**
 * The gates a stage's execution passes through, declared here so that the core calls them
 * without importing a feature folder: `src/flow/` implements them (`RateLimiter`, an array of
 * limiters, `CircuitBreaker`). Each method is keyed by a registered symbol (`Symbol.for`), so a
 * limiter or breaker made by the package's CommonJS build works with a stage of its ESM build
 * and the other way round. Not exported from the package.
 *
 * One execution of a stage, as the core runs it:
 *
 * 1. `guard[guardExecution](stageName, value, context, signal, refuse, run)`, when the stage has
 *    a circuit breaker; `run` is everything below, and the guard may call it more than once.
 * 2. For each attempt: `gate[admitAttempt](value, context, signal)`, when the stage has a rate
 *    limit. Its answer is a grant, or a promise of one.
 * 3. `grant.start()` right before the handler is called (that is when the attempt counts), or
 *    `grant.release()` when the attempt will not start after all (the signal aborted between
 *    the grant and the call). Exactly one of the two, once.
 * 4. While the attempt runs, `call.charge(limiter, actual)` is
 *    `grant.charge(receipt, limiter, actual)`, `receipt` being what `start()` returned.
 */

import { show } from "./validate.js";

/**
 * `gate[admitAttempt](value, context, signal)`: asks for an attempt's turn. `value` and
 * `context` are the stage's input and the run's context (a keyed limiter picks its window with
 * them, a costed one weighs the attempt).
 *
 * - Granted now: returns the {@link AttemptGrant} itself, synchronously (no promise; for a
 *   single limiter without `key` or `cost` that does not bind, nothing is allocated).
 * - Must wait: returns a promise of the grant. It waits in FIFO order; when `signal` aborts
 *   first, the promise rejects with `signal.reason` and nothing is taken. An already aborted
 *   signal is the caller's to check before asking: a free slot is granted whatever the signal.
 * - Throws synchronously, failing the execution (the core must not retry it): what `key` or
 *   `cost` threw; a `TypeError`/`RangeError` for a cost that is not a finite number ≥ 0; a
 *   `RangeError` for a cost above the limiter's `limit` (it could never be granted).
 *
 * A grant reserves its cost in each limiter: later requests see it as taken. The reservation
 * is counted in the sliding window only at {@link AttemptGrant.start}, so that a burst of
 * waiters released at once but started late cannot put more than `limit` starts in any window
 * measured at the handler.
 *
 * A grant is never a thenable: `isThenable(answer)` tells the two answers apart.
 */
export const admitAttempt: unique symbol = Symbol.for("async-pipeline.gate.admitAttempt") as never;

/** What `rateLimit` becomes: one limiter, or an array of them acting as one. */
export interface AttemptGate {
  [admitAttempt](
    value: unknown,
    context: unknown,
    signal: AbortSignal | undefined,
  ): AttemptGrant | Promise<AttemptGrant>;
}

/**
 * An attempt's turn under a rate limit, between the grant and the end of the attempt. The core
 * calls exactly one of `start` and `release`, once; a grant may be shared between attempts of a
 * plain limiter, so it holds no state of one attempt: what `start` returns does.
 */
export interface AttemptGrant {
  /**
   * The handler is being called now: the attempt is stamped into each limiter's window at
   * this moment (the monotonic clock). Returns the receipt that `charge` needs: keep it for
   * the attempt's `call.charge`; it is opaque (a number for a single limiter).
   */
  start(): unknown;
  /** The attempt will not start: its reservation is given back, and the next waiter may go. */
  release(): void;
  /**
   * `call.charge(limiter, actual)` for the attempt that got `receipt` from `start`: replaces
   * its recorded cost in `limiter` by `actual` (a refund when smaller), so that later grants
   * see what was really spent. Throws {@link unusedLimiter}'s `TypeError` when the attempt did
   * not use `limiter`, and {@link chargeAmount}'s error for a bad `actual`. Once the attempt's
   * entry has left the window (after `interval`), there is nothing left to change.
   */
  charge(receipt: unknown, limiter: unknown, actual: unknown): void;
}

/**
 * `breaker[guardExecution](stageName, value, context, signal, refuse, run)`: runs one whole
 * execution of a stage through a circuit breaker. `run()` is the execution, every attempt of
 * it, and throws (or rejects with) what the stage fails with, its `StageExecutionError`, or
 * `signal.reason` when cancelled. Returns `run()`'s result: a plain value when the execution
 * ran synchronously and nothing had to wait, else a promise.
 *
 * - Refused (`whenOpen: "fail"`, the circuit open or its trial running): throws
 *   `refuse(new BrokenCircuitError(stageName, cause))` at once, without calling `run`.
 * - `whenOpen: "wait"`: waits instead (FIFO), then runs; an execution whose failure opened the
 *   circuit, one that failed while it was open, and a failed trial wait again and `run()`
 *   anew, so `run` must be callable more than once (each call a fresh execution with the
 *   stage's full attempts). A wait longer than `maxWait` ends in `refuse(BrokenCircuitError)`;
 *   `signal` aborting ends a wait at once, rejecting with `signal.reason`.
 * - `whenOpen: "wait"`, a failure that does not open the circuit: its verdict is held (the
 *   returned promise stays pending) while other executions of the circuit run, since they may
 *   yet open it; then it waits and runs again as above, or is thrown as it came once the
 *   streak is broken (a success), nothing else runs, or `maxWait` has passed.
 * - A failure while `signal` has aborted is a cancellation: counted neither way.
 * - A `key` that throws: throws `refuse(what it threw)`, before anything else (the execution
 *   fails without running, like a refusal).
 */
export const guardExecution: unique symbol = Symbol.for(
  "async-pipeline.gate.guardExecution",
) as never;

/** What `circuitBreaker` becomes. */
export interface ExecutionGuard {
  [guardExecution]<T>(
    stageName: string,
    value: unknown,
    context: unknown,
    signal: AbortSignal | undefined,
    refuse: (error: unknown) => unknown,
    run: () => T | PromiseLike<T>,
  ): T | Promise<T>;
}

/**
 * The error of `call.charge(limiter, actual)` for a limiter the attempt did not use: also
 * what the core throws for an attempt that had no rate limit at all.
 */
export function unusedLimiter(limiter: unknown): TypeError {
  return new TypeError(
    `call.charge: this attempt did not use that limiter (got ${show(limiter)}); charge one of the stage's rateLimit`,
  );
}

/** `call.charge`'s `actual`, checked: a finite number ≥ 0. */
export function chargeAmount(actual: unknown): number {
  if (typeof actual !== "number") {
    throw new TypeError(`call.charge: actual must be a number, got ${show(actual)}`);
  }
  if (!(actual >= 0) || actual === Infinity) {
    throw new RangeError(`call.charge: actual must be a finite number ≥ 0, got ${show(actual)}`);
  }
  return actual;
}
