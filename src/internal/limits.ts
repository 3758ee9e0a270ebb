import { concurrencyLimit } from "./validate.js";

/**
 * Concurrency limits that change while batches run, as the core sees them. The pool and a
 * stage's retry loop know only these interfaces; `adaptiveConcurrency` (src/flow/adaptive.ts)
 * implements them, so that nothing in `src/internal/` imports the feature.
 *
 * The contract, in the order the core meets it (the costs are those of the implementation in
 * src/flow/adaptive.ts):
 *
 * 1. A batch given a limit (as `concurrency`, or as `perKey.concurrency`) asks it for each
 *    gauge it needs, and gives each back with {@link LimitGauge.release} once it no longer
 *    needs it: `limit[gaugeOf](false, undefined)` for the batch's own, when the batch starts,
 *    released when it ends, whichever way; `limit[gaugeOf](true, key)` for a key, when the
 *    batch's per-key admission makes the key's entry (no item of the key runs or waits in the
 *    batch), released when it drops that entry. A Map look-up per key entry, not per item.
 * 2. The pool starts an item under a gauge only while {@link LimitGauge.inFlight} (places
 *    taken under it, in every batch that shares it) is below {@link LimitGauge.limit}, both
 *    read afresh at each such decision. It calls {@link LimitGauge.started} when the item
 *    takes its place and {@link LimitGauge.finished} when it leaves it (settled, whatever the
 *    outcome, retries and their waits included: an item keeps its place while it waits to
 *    retry). A lower limit only stops starts; nothing running is cut short.
 * 2a. A worker that goes on to its next item at once (synchronously) may keep its place for
 *    it: when its item settles it calls {@link LimitGauge.keep} instead of `finished()`, which
 *    counts the completion as `finished()` does and then keeps the place only as a start
 *    would take it (below the limit read afresh, and no batch waiting for a place, so that
 *    waiters are served in order). A worker that then finds no item to run gives the place
 *    back with {@link LimitGauge.giveBack}. So a worker under a gauge pays one call per item,
 *    and a place is counted in `inFlight` from its item's start to its settling, as before.
 *    Per-key gauges are not kept this way: an item's next item is rarely of its key.
 * 3. A pool (or a key's queue of waiting items) that has items to start but finds no room
 *    calls {@link LimitGauge.wait} with a callback, once until it is called: the gauge calls
 *    it when a place frees (within some batch's `finished()`) or the limit rises, waking one
 *    waiter per free place, in the order they waited. A batch that stops while waiting takes
 *    its callback back with {@link LimitGauge.cancelWait}.
 * 4. The stage reports each failed attempt of an item run under gauges to an
 *    {@link AttemptObserver} the pool hands it with the item (the gauge itself, or, for an item
 *    under both a batch's and a key's gauge, one object per key entry that tells both), once,
 *    whether or not a retry follows; and an execution its circuit breaker refused the same way
 *    (the error is the `BrokenCircuitError`). Cancellation (the signal aborted) is not
 *    reported. A stage run outside an adaptive batch gets no observer and pays nothing.
 *
 * A limit rises only within `finished()` or `keep()`, and a pool looks for room when one of
 * its items finishes (whichever of the two it called); `wait` covers the batch that has no
 * item running to finish.
 */

/**
 * What a stage's retry loop tells about the attempts of an item run under adaptive limits:
 * all it knows of them.
 */
export interface AttemptObserver {
  /**
   * An attempt failed with `error` (the attempt's own error, not the `StageExecutionError`
   * around it). `retryAfter` is the wait in ms the stage's `retryAfter` returned for this
   * error when it returned a number, else `undefined` (no `retryAfter`, it returned
   * `undefined`, or it was not asked because no retry follows). Never throws. Off the hot
   * path: only failures call it.
   */
  attemptFailed(error: unknown, retryAfter: number | undefined): void;
}

/**
 * One limit: a batch's, or one key's under `perKey`. Shared by every batch given the same
 * controller. All methods are cheap and never throw; none sets a timer.
 */
export interface LimitGauge extends AttemptObserver {
  /**
   * The limit now, a whole number ≥ 1: start an item under this gauge only while fewer are
   * running under it. A field read; it changes only within the calls below.
   */
  readonly limit: number;
  /** Items running under this gauge now, in every batch that shares it. A field read. */
  readonly inFlight: number;
  /** An item took a place under this gauge. A counter update. */
  started(): void;
  /**
   * That item left its place. A few counter updates; about once per `limit` calls it reads
   * the clock once and updates the limit.
   */
  finished(): void;
  /**
   * That item left its place and its worker goes on to another at once: `finished()`, then,
   * when fewer than `limit` places are taken and no batch waits for one, the place is taken
   * again for the worker's next item (as by `started()`) and `true` returned. `false`: the
   * place is given up (waiters woken, as by `finished()`). Costs what `finished()` costs.
   */
  keep(): boolean;
  /**
   * A place kept by {@link LimitGauge.keep} that no item took after all (the worker found
   * nothing to run): given up, without counting a completion; waiters are woken.
   */
  giveBack(): void;
  /**
   * See {@link AttemptObserver.attemptFailed}: classifies the error (with the controller's
   * `isOverload`), and on an overload lowers the limit at once, once per window.
   */
  attemptFailed(error: unknown, retryAfter: number | undefined): void;
  /**
   * No room for an item that is ready to start: `wake` is called once, synchronously, when
   * a place frees or the limit rises (see the module comment). Only a blocked batch calls it.
   */
  wait(wake: () => void): void;
  /** Takes back a `wake` given to {@link LimitGauge.wait} and not called yet; else nothing. */
  cancelWait(wake: () => void): void;
  /**
   * A batch that used this gauge ended: once per batch and gauge, after its last item
   * finished. Lets the gauge forget a measurement the idle time between batches would spoil.
   */
  release(): void;
}

/**
 * `limit[gaugeOf](keyed, key)`: the gauge for a batch (`keyed` false, `key` ignored) or for
 * one key under `perKey` (`keyed` true; keys compared as a `Map` does). A registered symbol,
 * so that a controller made by one build of the package works with a pool of another. Not
 * exported from the package.
 */
export const gaugeOf: unique symbol = Symbol.for(
  "async-pipeline.adaptiveConcurrency.gaugeOf",
) as never;

/** A concurrency limit that changes over time: what `adaptiveConcurrency(...)` returns. */
export interface DynamicLimit {
  /** The limit now of a batch given it as `concurrency`: its batch-level gauge's. */
  readonly limit: number;
  /** See {@link gaugeOf}. */
  [gaugeOf](keyed: boolean, key: unknown): LimitGauge;
}

/** Whether `value` is a {@link DynamicLimit} (of this or any other copy of the package). */
export function isDynamicLimit(value: unknown): value is DynamicLimit {
  return (
    typeof value === "object" &&
    value !== null &&
    typeof (value as Partial<DynamicLimit>)[gaugeOf] === "function"
  );
}

/**
 * A batch's `concurrency` (or `perKey.concurrency`, `name`): a controller as it is, else an
 * integer ≥ 1 or `Infinity`, with the messages a number gets.
 */
export function concurrencyOption(value: unknown, name = "concurrency"): number | DynamicLimit {
  return isDynamicLimit(value) ? value : concurrencyLimit(value, name);
}
