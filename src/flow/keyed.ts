/** Per-key state kept by a {@link KeyedStates} table: it knows its own key. */
export interface KeyedState {
  readonly key: unknown;
  /** Made or used since the table last swept: its mark (`true` when made). */
  recent: boolean;
}

/** The table sweeps no sooner than when it holds this many keys. */
export const SWEEP_FLOOR = 1_024;

/**
 * The per-key state of a limiter or a breaker given a `key` option (a sliding window per host,
 * a circuit per tenant): a `Map` from key to state (keys compared as a `Map` compares them),
 * whose idle entries are dropped, so that a million keys seen once each do not stay in memory.
 *
 * There is no timer. When an addition brings the table to its sweep size, it sweeps the whole
 * table: an entry that is idle (see `isIdle`) and was neither made nor used since the last
 * sweep is dropped; the others stay, their mark cleared. The next sweep comes after half as
 * many additions as stayed (at least {@link SWEEP_FLOOR}): sweeping costs O(1) per addition on
 * average, and a key in steady use is never dropped and made again at each use. With B keys
 * busy or in use (a busy window is one still holding a start of the last `interval`; a busy
 * circuit one that is open, counting failures, or running an execution), the keys kept settle
 * at about 2·B, the table at about 3·B, or a few times {@link SWEEP_FLOOR} when B is small; a
 * million keys seen once never hold more than 2 × {@link SWEEP_FLOOR} entries. What is idle
 * after the last sweep stays until the next one.
 */
export class KeyedStates<S extends KeyedState> {
  readonly #map = new Map<unknown, S>();
  readonly #isIdle: (state: S) => boolean;
  #sweepAt = SWEEP_FLOOR;

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
    return this.#map.get(key);
  }

  /** The state of `key`: the one held (marked used), or `create(key)`, added. */
  obtain(key: unknown, create: (key: unknown) => S): S {
    const held = this.#map.get(key);
    if (held !== undefined) {
      held.recent = true;
      return held;
    }
    const state = create(key);
    this.#map.set(key, state);
    if (this.#map.size >= this.#sweepAt) this.#sweep();
    return state;
  }

  /** Drops the idle entries not made or used since the last sweep; clears the others' marks. */
  #sweep(): void {
    const map = this.#map;
    // Deleting the entry being visited is safe while iterating a Map.
    for (const [key, state] of map) {
      if (!state.recent && this.#isIdle(state)) map.delete(key);
      else state.recent = false;
    }
    // Half as many additions as were kept: enough to pay for the next sweep, few enough that
    // what the next sweep keeps (what was kept, and these additions) shrinks back to the busy.
    this.#sweepAt = map.size + Math.max(SWEEP_FLOOR, map.size >> 1);
  }
}
