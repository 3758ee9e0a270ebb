import type { StageCall } from "../types.js";
import { whenAborted, type Subscription } from "./abort.js";
import { unusedLimiter, type AttemptGrant } from "./gates.js";

const RUNNING = 0;
const ENDED = 1;
const ABORTED = 2;

/**
 * The `call` argument given to a handler that declares three parameters: one attempt of one
 * item. Its `signal` belongs to that attempt alone. It aborts when the attempt times out
 * ({@link AttemptCall.abort}) or when the run's signal (the caller's, or the batch's) aborts
 * while the attempt runs, and never after the attempt settled ({@link AttemptCall.end}), so
 * listeners a handler leaves on it cannot pile up across items or fire for a finished one.
 *
 * The signal is lazy: nothing (no controller, no subscription) is made until the handler
 * reads `call.signal`. Its link to the run's signal goes through the signal registry, so
 * many attempts at once cost the run's signal one listener.
 */
export class AttemptCall implements StageCall {
  readonly attempt: number;
  readonly stageName: string;
  readonly #parent: AbortSignal | undefined;
  #controller: AbortController | undefined = undefined;
  #subscription: Subscription | undefined = undefined;
  #phase: typeof RUNNING | typeof ENDED | typeof ABORTED = RUNNING;
  #reason: unknown = undefined;

  constructor(parent: AbortSignal | undefined, attempt: number, stageName: string) {
    this.#parent = parent;
    this.attempt = attempt;
    this.stageName = stageName;
  }

  get signal(): AbortSignal {
    if (this.#controller !== undefined) return this.#controller.signal;
    const controller = new AbortController();
    this.#controller = controller;
    if (this.#phase === ABORTED) {
      controller.abort(this.#reason);
    } else if (this.#phase === RUNNING) {
      const parent = this.#parent;
      if (parent !== undefined) {
        this.#subscription = whenAborted(parent, () => {
          this.abort(parent.reason);
        });
      }
    }
    return controller.signal;
  }

  /**
   * The handler returned `pending`, and nothing else watches it: the call ends when it
   * settles. (Watched from the start, not from the first read of the signal: a signal first
   * read after the attempt settled must not abort.)
   */
  endWhenSettled(pending: PromiseLike<unknown>): void {
    Promise.resolve(pending).then(this.#end, this.#end);
  }

  readonly #end = (): void => {
    this.end();
  };

  /** The attempt settled: from now on the signal never aborts. */
  end(): void {
    if (this.#phase !== RUNNING) return;
    this.#phase = ENDED;
    this.#subscription?.cancel();
  }

  /** The attempt is abandoned (timeout, cancellation): its signal aborts with `reason`. */
  abort(reason: unknown): void {
    if (this.#phase !== RUNNING) return;
    this.#phase = ABORTED;
    this.#reason = reason;
    this.#subscription?.cancel();
    this.#controller?.abort(reason);
  }

  /**
   * See {@link StageCall.charge}: an attempt without a rate limit used no limiter, whatever
   * the amount.
   */
  charge(limiter: object): void {
    throw unusedLimiter(limiter);
  }
}

/**
 * The `call` of an attempt that took its turn under the stage's rate limit: `call.charge`
 * reaches the attempt's grant, with the receipt its start gave (see src/internal/gates.ts). A
 * class of its own, so that the calls of stages without a rate limit carry nothing for it.
 */
export class GrantedCall extends AttemptCall {
  readonly #grant: AttemptGrant;
  readonly #receipt: unknown;

  constructor(
    parent: AbortSignal | undefined,
    attempt: number,
    stageName: string,
    grant: AttemptGrant,
    receipt: unknown,
  ) {
    super(parent, attempt, stageName);
    this.#grant = grant;
    this.#receipt = receipt;
  }

  override charge(limiter: object, actual?: number): void {
    this.#grant.charge(this.#receipt, limiter, actual);
  }
}
