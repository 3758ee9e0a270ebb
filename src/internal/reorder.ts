/** Marks a slot with no result in it. */
const EMPTY: unique symbol = Symbol("empty slot");

/** The ring a reorder buffer starts with when its expected spread is unbounded or large. */
const INITIAL_LIMIT = 1024;

/**
 * Results that arrive out of order, read back in input order: a ring of slots addressed by
 * input index, holding the results from the next one to read onwards. Sized for the expected
 * spread (how far ahead of the next read a result can be: a stream's read-ahead window), it
 * never grows; a result further ahead doubles the ring. Each result costs one array store,
 * not a hash-map entry.
 */
export class ReorderBuffer<T> {
  #slots: (T | typeof EMPTY)[];
  /** The input index read next. */
  #next = 0;

  /** `spread`: how far ahead of the next read a result is expected to land (≥ 1 or Infinity). */
  constructor(spread: number) {
    let size = 8;
    const target = Math.min(spread, INITIAL_LIMIT);
    while (size < target) size *= 2;
    this.#slots = new Array<T | typeof EMPTY>(size).fill(EMPTY);
  }

  /** Stores the result of input `index` (not read yet, and not stored before). */
  set(index: number, value: T): void {
    while (index - this.#next >= this.#slots.length) this.#grow();
    const slots = this.#slots;
    slots[index % slots.length] = value;
  }

  /** Whether the result of the next index is here. */
  get ready(): boolean {
    const slots = this.#slots;
    return slots[this.#next % slots.length] !== EMPTY;
  }

  /** The result of the next index (check {@link ReorderBuffer.ready} first), removed. */
  shift(): T {
    const slots = this.#slots;
    const slot = this.#next % slots.length;
    const value = slots[slot] as T;
    slots[slot] = EMPTY;
    this.#next++;
    return value;
  }

  /** Doubles the ring, keeping each stored result at its index's new slot. */
  #grow(): void {
    const old = this.#slots;
    const slots = new Array<T | typeof EMPTY>(old.length * 2).fill(EMPTY);
    for (let index = this.#next; index < this.#next + old.length; index++) {
      slots[index % slots.length] = old[index % old.length] as T | typeof EMPTY;
    }
    this.#slots = slots;
  }
}
