import { Fifo, type FifoNode } from "./fifo.js";

/** Per-key state kept by a {@link KeyedStates} table: it knows its own key. */
export interface KeyedState {
  readonly key: unknown;
}

/**
 * The per-key state of a limiter or a breaker given a `key` option (a sliding window per host,
 * a circuit per tenant): a `Map` from key to state (keys compared as a `Map` compares them),
 * whose idle entries are dropped, so that a million keys seen once each do not stay in memory.
 *
 * There is no timer: each time a key is added, the sweep looks at the two oldest entries (in
 * the order they were added, then swept); an idle one (see `isIdle`) is dropped, a busy one
 * goes to the back. Two looks per addition drop idle entries faster than additions make them
 * as long as at least half of the table is idle, so the table holds about twice the busy
 * entries at most (a busy window is one still holding a start of the last `interval`, a busy
 * circuit one that is open, counting failures, or running an execution); what was idle when
 * the last key was added stays until the next addition.
 */
export class KeyedStates<S extends KeyedState> {
  readonly #map = new Map<unknown, FifoNode<S>>();
  readonly #order = new Fifo<S>();
  readonly #isIdle: (state: S) => boolean;

  /** @param isIdle - whether a state holds nothing worth keeping (it is made anew when needed) */
  constructor(isIdle: (state: S) => boolean) {
    this.#isIdle = isIdle;
  }

  /** Keys held now. */
  get size(): number {
    return this.#map.size;
  }

  /** The state of `key`, if held. */
  get(key: unknown): S | undefined {
    return this.#map.get(key)?.value;
  }

  /** The state of `key`: the one held, or `create(key)`, added after a sweep. */
  obtain(key: unknown, create: (key: unknown) => S): S {
    const node = this.#map.get(key);
    if (node !== undefined) return node.value;
    this.#sweep();
    const state = create(key);
    this.#map.set(key, this.#order.push(state));
    return state;
  }

  /** Looks at the two oldest entries: drops an idle one, sends a busy one to the back. */
  #sweep(): void {
    for (let look = 0; look < 2; look++) {
      const oldest = this.#order.first;
      if (oldest === undefined) return;
      if (this.#isIdle(oldest.value)) {
        this.#order.remove(oldest);
        this.#map.delete(oldest.value.key);
      } else {
        this.#order.rotate();
      }
    }
  }
}
