/** Helpers that watch, await or hold promises, shared by the test files. */

/** The reason `promise` rejects with; rejects itself if `promise` fulfils. */
export async function rejectionOf(promise: PromiseLike<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error("expected the promise to reject");
}

/** A promise that never settles: a handler that hangs until its signal aborts. */
export function never<T>(): Promise<T> {
  return new Promise<T>(() => {
    // Never settles.
  });
}

export interface Tracked<T> {
  readonly promise: Promise<T>;
  settled: boolean;
}

/** Records whether a promise has settled, without leaving its rejection unhandled. */
export function track<T>(promise: Promise<T>): Tracked<T> {
  const tracked: Tracked<T> = { promise, settled: false };
  promise.then(
    () => {
      tracked.settled = true;
    },
    () => {
      tracked.settled = true;
    },
  );
  return tracked;
}

export interface Observed<T> {
  status: "pending" | "fulfilled" | "rejected";
  value: T | undefined;
  reason: unknown;
}

/** Records how a promise settles, without leaving its rejection unhandled. */
export function observe<T>(promise: Promise<T>): Observed<T> {
  const state: Observed<T> = { status: "pending", value: undefined, reason: undefined };
  void promise.then(
    (value) => {
      state.status = "fulfilled";
      state.value = value;
    },
    (reason: unknown) => {
      state.status = "rejected";
      state.reason = reason;
    },
  );
  return state;
}
