/**
 * What a batch's awaits are raced against: its end (a failure, an abort, a closed queue, a
 * consumer that left), and, for an await on Redis, an outage that lasted `outageTimeout` ms.
 * One await at a time (a batch's loop is sequential), so an end rejects the pending one at
 * once without a listener per await.
 */
export class Guard {
  readonly #outageTimeout: number;
  readonly #outage: () => Error;
  #failure: { readonly error: unknown } | undefined = undefined;
  #reject: ((error: unknown) => void) | undefined = undefined;

  /**
   * @param outageTimeout - how long an await on Redis may take (beyond a blocking read's own
   *   wait) before the guard fails with `outage()`
   * @param outage - the error of an outage
   */
  constructor(outageTimeout: number, outage: () => Error) {
    this.#outageTimeout = outageTimeout;
    this.#outage = outage;
  }

  /** How the guarded work ended, once it has. */
  get failure(): { readonly error: unknown } | undefined {
    return this.#failure;
  }

  /** Ends the guarded work with `error` (the first call wins): the pending await rejects. */
  fail(error: unknown): void {
    if (this.#failure !== undefined) return;
    this.#failure = { error };
    const reject = this.#reject;
    this.#reject = undefined;
    reject?.(error);
  }

  /**
   * `promise`'s outcome, unless the guard fails first. With `blocking` (ms a blocking Redis
   * command waits by itself, 0 for any other), the guard also fails with an outage when
   * Redis has not answered `outageTimeout` ms after that.
   */
  wait<T>(promise: Promise<T>, blocking?: number): Promise<T> {
    const failure = this.#failure;
    if (failure !== undefined) {
      promise.catch(() => undefined);
      return Promise.reject(failure.error);
    }
    return new Promise<T>((resolve, reject) => {
      const timer =
        blocking === undefined
          ? undefined
          : setTimeout(() => {
              this.fail(this.#outage());
            }, this.#outageTimeout + blocking);
      this.#reject = reject;
      promise.then(
        (value) => {
          clearTimeout(timer);
          if (this.#reject === reject) this.#reject = undefined;
          resolve(value);
        },
        (error: unknown) => {
          clearTimeout(timer);
          if (this.#reject === reject) this.#reject = undefined;
          reject(error);
        },
      );
    });
  }
}
