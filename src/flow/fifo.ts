/**
 * A first-in, first-out queue as a doubly linked list: `push`, `shift` and `remove` (of any
 * entry, by the node `push` returned) cost O(1), however long the queue: the waiters of a rate
 * limiter's window, of a circuit or of an adaptive limit, any of which may abort and leave.
 */

/** One entry of a {@link Fifo}; keep it to remove the entry later. */
export interface FifoNode<T> {
  readonly value: T;
  /** @internal */
  next: FifoNode<T> | undefined;
  /** @internal */
  prev: FifoNode<T> | undefined;
}

/** A FIFO queue with O(1) removal from the middle. */
export class Fifo<T> {
  #head: FifoNode<T> | undefined;
  #tail: FifoNode<T> | undefined;
  #size = 0;

  /** Entries queued now. */
  get size(): number {
    return this.#size;
  }

  /** The front entry's node, left in place; `undefined` when empty. */
  get first(): FifoNode<T> | undefined {
    return this.#head;
  }

  /** Adds `value` at the back; returns its node, for {@link Fifo.remove}. */
  push(value: T): FifoNode<T> {
    const node: FifoNode<T> = { value, next: undefined, prev: this.#tail };
    if (this.#tail === undefined) this.#head = node;
    else this.#tail.next = node;
    this.#tail = node;
    this.#size++;
    return node;
  }

  /** Takes the front entry's value; `undefined` when empty. */
  shift(): T | undefined {
    const node = this.#head;
    if (node === undefined) return undefined;
    this.remove(node);
    return node.value;
  }

  /** Takes `node`, which must be queued, out of the queue, wherever it is. */
  remove(node: FifoNode<T>): void {
    if (node.prev === undefined) this.#head = node.next;
    else node.prev.next = node.next;
    if (node.next === undefined) this.#tail = node.prev;
    else node.next.prev = node.prev;
    node.next = undefined;
    node.prev = undefined;
    this.#size--;
  }
}
