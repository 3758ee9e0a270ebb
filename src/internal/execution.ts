import { StageExecutionError } from "../errors/StageExecutionError.js";
import { TimeoutError } from "../errors/TimeoutError.js";
import type { RetryEvent } from "../types.js";
import { throwIfAborted, untilAborted } from "./abort.js";
import { retryAfterWait, retryDelayFor } from "./backoff.js";
import { AttemptCall, GrantedCall } from "./call.js";
import { delay } from "./delay.js";
import {
  admitAttempt,
  guardExecution,
  type AttemptGate,
  type AttemptGrant,
  type ExecutionGuard,
} from "./gates.js";
import type { AttemptObserver } from "./limits.js";
import type { RetryPolicy } from "./retry.js";
import { callIgnoringErrors, isThenable } from "./thenable.js";
import { Deadlines } from "./timers.js";

/**
 * A stage's execution, composed once when the stage is built: every attempt it needs, as one
 * function. A run loop calls `run` once per stage; the stage owns its attempts. Also what hooks
 * and middleware wrap, so that a wrapped stage is one `Execution` too.
 */
export interface Execution {
  /**
   * Runs on `value`: the output, or a thenable of it. May throw. `observer`, given for an item
   * of a batch under adaptive limits (and only then), is told of each failed attempt (see
   * src/internal/limits.ts); whoever maps a failure with {@link failureOf} passes it on too.
   */
  readonly run: (
    value: unknown,
    context: unknown,
    signal: AbortSignal | undefined,
    observer?: AttemptObserver,
  ) => unknown;
  /**
   * What the execution fails with when `run` threw `error` or its thenable rejected with it,
   * or `undefined` when those failures are final already. An execution of one plain attempt
   * hands out its handler's own promise: whoever awaits it maps the failure where it catches
   * it, rather than a promise made per call just to map it (see {@link failureOf}).
   */
  readonly failure: ((error: unknown) => unknown) | undefined;
  /** Whether `run` reads its `context`, so that a run must make one. */
  readonly readsContext: boolean;
}

/**
 * `stage[executionOf]`: a stage's {@link Execution}, what a pipeline runs for it. A registered
 * symbol (`Symbol.for`), so that a stage made by the package's CommonJS build runs in a
 * pipeline made by its ESM build and the other way round. Not exported from the package.
 */
export const executionOf: unique symbol = Symbol.for("async-pipeline.execution") as never;

/**
 * What `execution` fails with, given what it threw: cancellation wins, with its reason. An
 * execution of one plain attempt (it has a `failure` to map with) threw its attempt's own
 * error: that attempt is reported to `observer` here, where the failure is mapped.
 */
export function failureOf(
  execution: Execution,
  error: unknown,
  signal: AbortSignal | undefined,
  observer?: AttemptObserver,
): unknown {
  if (signal?.aborted === true) return signal.reason;
  const { failure } = execution;
  if (failure === undefined) return error;
  observer?.attemptFailed(error, undefined);
  return failure(error);
}

/** Runs `execution` with its failure mapped: for callers that hand its promise on as it is. */
export function runMapped(
  execution: Execution,
  value: unknown,
  context: unknown,
  signal: AbortSignal | undefined,
  observer?: AttemptObserver,
): unknown {
  let result: unknown;
  try {
    result = execution.run(value, context, signal, observer);
    if (execution.failure === undefined || !isThenable(result)) return result;
  } catch (error) {
    throw failureOf(execution, error, signal, observer);
  }
  return Promise.resolve(result).then(undefined, (error: unknown) => {
    throw failureOf(execution, error, signal, observer);
  });
}

/** What a stage is made of, validated: what {@link composeExecution} builds from. */
export interface StagePlan {
  readonly name: string;
  readonly handler: (value: unknown, context: unknown, call: AttemptCall) => unknown;
  /** The handler declares two or more parameters: it gets `(value, context, call)`. */
  readonly takesContext: boolean;
  readonly timeout: number | undefined;
  readonly policy: RetryPolicy;
  /** The `rateLimit`, asked for each attempt's turn (see src/internal/gates.ts). */
  readonly gate: AttemptGate | undefined;
  /** The `circuitBreaker`, around each execution (see src/internal/gates.ts). */
  readonly guard: ExecutionGuard | undefined;
}

/** One attempt of a stage: attempt number `attempt` (from 1) at `value`. */
export type Attempt = (
  value: unknown,
  context: unknown,
  signal: AbortSignal | undefined,
  attempt: number,
) => unknown;

/**
 * Builds a stage's execution from the options that are set, each a layer around the next:
 * the circuit breaker around the retries, the retries around each attempt, and in each
 * attempt its turn under the rate limit, then the handler's call under the timeout. A layer
 * whose option is not set is not there: a bare stage's execution is the handler's call.
 */
export function composeExecution(plan: StagePlan): Execution {
  const { name, policy, guard, gate } = plan;
  const fail = (error: unknown, attempts: number): StageExecutionError =>
    new StageExecutionError(name, error, attempts);
  const attempt = gate === undefined ? callOf(plan) : gated(gate, grantedCallOf(plan));
  let execution: Execution;
  if (policy.retries === 0) {
    execution = {
      // A bare attempt (no rate limit, timeout or call object) reads the value alone: it is the
      // whole execution (its failure is reported where it is mapped, see failureOf).
      run:
        gate === undefined && !plan.takesContext && plan.timeout === undefined
          ? (attempt as unknown as Execution["run"])
          : (value, context, signal) => attempt(value, context, signal, 1),
      failure:
        gate === undefined
          ? (error) => fail(error, 1)
          : (error) => (error instanceof Unadmitted ? fail(error.cause, 0) : fail(error, 1)),
      readsContext: plan.takesContext,
    };
  } else {
    const retrying = new Retrying(attempt, policy, name, fail);
    execution = {
      run: (value, context, signal, observer) => retrying.run(value, context, signal, observer),
      failure: undefined,
      readsContext: plan.takesContext,
    };
  }
  if (guard === undefined) return execution;
  const inner = execution;
  // What an execution the breaker does not run fails with: its refusal (a BrokenCircuitError),
  // or what its `key` threw.
  const refuse = (error: unknown): StageExecutionError => fail(error, 0);
  // The breaker must learn of a cancellation when it happens, also when the handler hangs: the
  // execution it guards ends with the signal. Each call is a fresh execution, with the stage's
  // full attempts: in wait mode, the breaker runs an execution again once the circuit closes.
  const guarded = (
    value: unknown,
    context: unknown,
    signal: AbortSignal | undefined,
    observer: AttemptObserver | undefined,
  ): unknown => {
    const result = runMapped(inner, value, context, signal, observer);
    return signal === undefined || !isThenable(result) ? result : untilAborted(result, signal);
  };
  return {
    run: (value, context, signal, observer) =>
      guard[guardExecution](
        name,
        value,
        context,
        signal,
        // A refusal is reported as an attempt that failed with the BrokenCircuitError.
        observer === undefined ? refuse : (error) => refusedTo(observer, refuse, error),
        () => guarded(value, context, signal, observer),
      ),
    failure: undefined,
    readsContext: plan.takesContext,
  };
}

/** A circuit breaker's refusal of an execution run under adaptive limits: reported, then mapped. */
function refusedTo(
  observer: AttemptObserver,
  refuse: (error: unknown) => unknown,
  error: unknown,
): unknown {
  observer.attemptFailed(error, undefined);
  return refuse(error);
}

/**
 * What a gated attempt throws when its gate answered with a throw (the limiter's `key` or
 * `cost` threw, or the cost is above its `limit`): the execution fails at once with `cause`,
 * with the attempts made before this one. Never retried: the same input gets the same answer.
 * Internal: the retry layer and the execution's `failure` unwrap it.
 */
class Unadmitted extends Error {
  constructor(cause: unknown) {
    super("the attempt's rate limit refused it", { cause });
  }
}

/** One attempt's handler call once its turn under the rate limit has come (see {@link gated}). */
type GrantedAttempt = (
  value: unknown,
  context: unknown,
  signal: AbortSignal | undefined,
  attempt: number,
  grant: AttemptGrant,
) => unknown;

/**
 * Each attempt asks for its turn under the rate limit (src/internal/gates.ts), the signal
 * checked first: granted at once, the handler is called now; else once the turn comes, unless
 * the signal aborted meanwhile (the grant is then given back, and the attempt fails with the
 * signal's reason).
 */
function gated(gate: AttemptGate, call: GrantedAttempt): Attempt {
  return (value, context, signal, number) => {
    throwIfAborted(signal);
    let answer: AttemptGrant | Promise<AttemptGrant>;
    try {
      answer = gate[admitAttempt](value, context, signal);
    } catch (error) {
      throw new Unadmitted(error);
    }
    if (!isThenable(answer)) return call(value, context, signal, number, answer);
    return answer.then((grant) => {
      if (signal?.aborted === true) {
        grant.release();
        throw signal.reason;
      }
      return call(value, context, signal, number, grant);
    });
  };
}

/**
 * One attempt's handler call. A bare handler (one parameter, no timeout) is called with the
 * value alone and nothing else. Otherwise the handler gets a fresh {@link AttemptCall} when it
 * takes one (ended when the attempt settles), and a promise it returns races the timeout.
 */
function callOf(plan: StagePlan): Attempt {
  const { handler, takesContext, timeout, name } = plan;
  if (!takesContext && timeout === undefined) {
    return (value) => (handler as (value: unknown) => unknown)(value);
  }
  return (value, context, signal, number) =>
    invoke(
      plan,
      value,
      context,
      signal,
      takesContext ? new AttemptCall(signal, number, name) : undefined,
    );
}

/**
 * {@link callOf} for an attempt under a rate limit: the grant starts (the attempt counts in the
 * limiter's window) immediately before the handler is called, and a handler that takes a
 * `call` gets a {@link GrantedCall}, whose `charge` reaches the grant. A function of its own,
 * rather than a branch in {@link callOf}: the attempts of stages without a rate limit run the
 * code they ran before, with no check added.
 */
function grantedCallOf(plan: StagePlan): GrantedAttempt {
  const { handler, takesContext, timeout, name } = plan;
  if (!takesContext && timeout === undefined) {
    return (value, _context, _signal, _number, grant) => {
      grant.start();
      return (handler as (value: unknown) => unknown)(value);
    };
  }
  return (value, context, signal, number, grant) => {
    const receipt = grant.start();
    const call = takesContext ? new GrantedCall(signal, number, name, grant, receipt) : undefined;
    return invoke(plan, value, context, signal, call);
  };
}

/**
 * Calls the handler of `plan` on `value`, with `call` when it takes one (`undefined`: the value
 * alone), under the stage's timeout when it has one; `call` ends when the attempt settles.
 */
function invoke(
  plan: StagePlan,
  value: unknown,
  context: unknown,
  signal: AbortSignal | undefined,
  call: AttemptCall | undefined,
): unknown {
  const { handler, timeout } = plan;
  let result: unknown;
  try {
    result =
      call === undefined
        ? (handler as (value: unknown) => unknown)(value)
        : handler(value, context, call);
    if (timeout !== undefined) return timed(result, plan.name, timeout, signal, call);
    if (call !== undefined) {
      if (isThenable(result)) call.endWhenSettled(result);
      else call.end();
    }
  } catch (error) {
    call?.end();
    throw error;
  }
  return result;
}

/**
 * `result` (what a handler returned) under a timeout of `timeout` ms: a synchronous result as
 * it is (never timed out), a promise raced against its deadline (rejecting with a
 * {@link TimeoutError}) and against `signal` (rejecting with its reason). The deadline comes
 * from the queue of its duration and signal ({@link Deadlines}): no timer and no listener of
 * its own. `call`, when the handler got one, ends when the attempt settles, or aborts with
 * the reason it lost to. The losing promise is abandoned with its rejection handled.
 */
export function timed(
  result: unknown,
  name: string,
  timeout: number,
  signal: AbortSignal | undefined,
  call: AttemptCall | undefined,
): unknown {
  if (!isThenable(result)) {
    call?.end();
    return result;
  }
  return new Promise<unknown>((resolve, reject) => {
    const deadlines = Deadlines.for(timeout, signal);
    const deadline = deadlines.add((reason) => {
      const error = reason === undefined ? new TimeoutError(name, timeout) : reason;
      call?.abort(error);
      reject(error);
    });
    try {
      result.then(
        (value) => {
          if (!deadlines.settle(deadline)) return;
          call?.end();
          resolve(value);
        },
        (error: unknown) => {
          if (!deadlines.settle(deadline)) return;
          call?.end();
          reject(error);
        },
      );
    } catch (error) {
      if (deadlines.settle(deadline)) {
        call?.end();
        reject(error);
      }
    }
  });
}

/**
 * The retry layer of one stage (or of `retryMiddleware`): runs attempt 1, 2, … of a value
 * until one succeeds or the policy gives up. Made once per stage, so that a run passes it the
 * value and nothing else. Synchronous while attempts are: a first attempt that returns a
 * value returns it as it is.
 *
 * - When `signal` aborts, nothing further starts, a wait is cut short, and the layer rejects
 *   with `signal.reason` (cancellation is never retried nor wrapped).
 * - When the attempts are used up, or `shouldRetry` says no (or throws), it rejects with
 *   `fail(lastError, attemptsMade)`.
 */
export class Retrying {
  readonly #attempt: Attempt;
  readonly #policy: RetryPolicy;
  readonly #stageName: string;
  readonly #fail: (error: unknown, attempts: number) => unknown;

  constructor(
    attempt: Attempt,
    policy: RetryPolicy,
    stageName: string,
    fail: (error: unknown, attempts: number) => unknown,
  ) {
    this.#attempt = attempt;
    this.#policy = policy;
    this.#stageName = stageName;
    this.#fail = fail;
  }

  /**
   * Every attempt at `value`: the output, or a promise of it. Each failed attempt is told to
   * `observer` when there is one, once, unless the signal has aborted by then.
   */
  run(
    value: unknown,
    context: unknown,
    signal: AbortSignal | undefined,
    observer?: AttemptObserver,
  ): unknown {
    let first: unknown;
    try {
      first = this.#attempt(value, context, signal, 1);
      if (!isThenable(first)) return first;
    } catch (error) {
      return this.#again(error, value, context, signal, observer);
    }
    // A success passes through as it is: only a failure goes on to the retries, so that an
    // attempt that succeeds costs a `then` (on the promise itself, when it is a native one),
    // not an async frame awaiting it.
    return Promise.resolve(first).then(undefined, (error: unknown) =>
      this.#again(error, value, context, signal, observer),
    );
  }

  /**
   * The rest of {@link Retrying.run}, from the first attempt's failure `error`: decides, waits
   * and tries again.
   */
  async #again(
    error: unknown,
    value: unknown,
    context: unknown,
    signal: AbortSignal | undefined,
    observer: AttemptObserver | undefined,
  ): Promise<unknown> {
    const policy = this.#policy;
    for (let number = 1; ; number++) {
      throwIfAborted(signal);
      // Refused by its rate limit (a throwing `key` or `cost`): a retry would get the same.
      if (error instanceof Unadmitted) throw this.#fail(error.cause, number - 1);
      let again = number <= policy.retries;
      if (again && policy.shouldRetry !== undefined) {
        // Only a verdict to wait for is raced against the signal: no shouldRetry, no race.
        again = await untilAborted(allowsRetry(policy.shouldRetry, error, number), signal);
        // Cancellation wins over the verdict: the signal may have aborted while it was awaited.
        throwIfAborted(signal);
      }
      if (!again) {
        observer?.attemptFailed(error, undefined);
        throw this.#fail(error, number);
      }
      const { retryAfter, onRetry } = policy;
      let wait: number;
      if (retryAfter === undefined) {
        wait = retryDelayFor(policy, number);
        observer?.attemptFailed(error, undefined);
      } else if (observer === undefined) {
        wait = retryAfterWait(retryAfter, policy, error, number, this.#fail);
      } else {
        const told = { said: undefined as number | undefined };
        try {
          wait = retryAfterWait(retryAfter, policy, error, number, this.#fail, told);
        } finally {
          // Also when `retryAfter` failed the stage: the attempt failed all the same.
          observer.attemptFailed(error, told.said);
        }
      }
      if (onRetry !== undefined) {
        const stageName = this.#stageName;
        const event: RetryEvent = Object.freeze({ stageName, error, attempt: number, delay: wait });
        callIgnoringErrors(() => onRetry(event));
      }
      if (wait > 0) await delay(wait, signal);
      throwIfAborted(signal);
      try {
        return await this.#attempt(value, context, signal, number + 1);
      } catch (caught) {
        error = caught;
      }
    }
  }
}

async function allowsRetry(
  shouldRetry: NonNullable<RetryPolicy["shouldRetry"]>,
  error: unknown,
  attempt: number,
): Promise<boolean> {
  try {
    const verdict: unknown = await shouldRetry(error, attempt);
    return verdict !== false;
  } catch {
    return false;
  }
}
