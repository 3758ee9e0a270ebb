import { noop } from "./thenable.js";

/**
 * Throws `signal.reason` when `signal` has aborted: how every loop honours cancellation
 * ("no further attempt, stage or item starts"). A function, not an inline check, because
 * `aborted` changes between awaits.
 */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted === true) throw signal.reason;
}

/** What {@link whenAborted} returns: call `cancel()` once the callback is no longer wanted. */
export interface Subscription {
  cancel(): void;
}

/**
 * The signal registry: every part of the library that waits on a signal subscribes here, and
 * the registry keeps ONE "abort" listener of its own on each signal however many runs,
 * attempts and batches share it. Subscribing and cancelling are O(1) (a doubly linked list),
 * where `addEventListener` scans the signal's listeners (quadratic for 100,000 runs sharing a
 * signal) and makes Node warn about "max listeners". The listener is removed, and the list
 * forgotten, when the last subscriber leaves.
 */
class Subscribers {
  head: Subscriber | undefined = undefined;
  tail: Subscriber | undefined = undefined;
  readonly #signal: AbortSignal;

  constructor(signal: AbortSignal) {
    this.#signal = signal;
    signal.addEventListener("abort", this.#dispatch, { once: true });
  }

  add(callback: () => void): Subscriber {
    const node = new Subscriber(this, callback);
    node.prev = this.tail;
    if (this.tail === undefined) this.head = node;
    else this.tail.next = node;
    this.tail = node;
    return node;
  }

  remove(node: Subscriber): void {
    if (node.prev === undefined) this.head = node.next;
    else node.prev.next = node.next;
    if (node.next === undefined) this.tail = node.prev;
    else node.next.prev = node.prev;
    if (this.head === undefined) {
      this.#signal.removeEventListener("abort", this.#dispatch);
      registry.delete(this.#signal);
    }
  }

  /** The one listener: detaches the whole list, then calls each subscriber still active. */
  readonly #dispatch = (): void => {
    registry.delete(this.#signal);
    let node = this.head;
    this.head = this.tail = undefined;
    while (node !== undefined) {
      const next = node.next;
      if (node.active) {
        node.active = false;
        node.callback();
      }
      node = next;
    }
  };
}

class Subscriber implements Subscription {
  prev: Subscriber | undefined = undefined;
  next: Subscriber | undefined = undefined;
  active = true;
  readonly #list: Subscribers;
  readonly callback: () => void;

  constructor(list: Subscribers, callback: () => void) {
    this.#list = list;
    this.callback = callback;
  }

  cancel(): void {
    if (!this.active) return;
    this.active = false;
    this.#list.remove(this);
  }
}

const registry = new WeakMap<AbortSignal, Subscribers>();

const NOT_SUBSCRIBED: Subscription = Object.freeze({ cancel: noop });

/**
 * Calls `callback` once when `signal` aborts, through the registry (see `Subscribers`). When
 * `signal` has already aborted, calls it at once, synchronously: an abort made before anyone
 * listened (say, by a handler that aborted its caller's controller) is never missed.
 */
export function whenAborted(signal: AbortSignal, callback: () => void): Subscription {
  if (signal.aborted) {
    callback();
    return NOT_SUBSCRIBED;
  }
  let list = registry.get(signal);
  if (list === undefined) {
    list = new Subscribers(signal);
    registry.set(signal, list);
  }
  return list.add(callback);
}

/**
 * `promise`, or a rejection with `signal.reason` as soon as `signal` aborts first (at once
 * when it already has). Settles once: whatever `promise` does later is ignored, its rejection
 * handled. The subscription is cancelled whichever way it ends.
 */
export function untilAborted<T>(
  promise: PromiseLike<T>,
  signal: AbortSignal | undefined,
): Promise<T> {
  if (signal === undefined) return Promise.resolve(promise);
  if (signal.aborted) {
    // The work's rejection must still be handled.
    Promise.resolve(promise).then(noop, noop);
    return Promise.reject(signal.reason as Error);
  }
  return new Promise<T>((resolve, reject) => {
    let settled = false;
    const subscription = whenAborted(signal, () => {
      settled = true;
      reject(signal.reason);
    });
    Promise.resolve(promise).then(
      (value) => {
        if (settled) return;
        settled = true;
        subscription.cancel();
        resolve(value);
      },
      (error: unknown) => {
        if (settled) return;
        settled = true;
        subscription.cancel();
        reject(error);
      },
    );
  });
}
