/**
 * A first-in, first-out queue as a doubly linked list: `push`, `shift` and `remove` (of any
 * entry, by the node `push` returned) all cost O(1), however long the queue: the rate
 * limiter's waiters, any of which may abort and leave.
 */

/** One entry of a {@link Fifo}; keep it to remove the entry later. */
export interface FifoNode<T> {
  readonly value: T;
  /** @internal */
  next: FifoNode<T> | undefined;
  /** @internal */
  prev: FifoNode<T> | undefined;
  /** Whether the node is still queued. @internal */
  queued: boolean;
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

  /** Adds `value` at the back; returns its node, for {@link Fifo.remove}. */
  push(value: T): FifoNode<T> {
    const node: FifoNode<T> = { value, next: undefined, prev: this.#tail, queued: true };
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

  /** Takes `node` out of the queue, wherever it is; harmless when it was already taken. */
  remove(node: FifoNode<T>): void {
    if (!node.queued) return;
    node.queued = false;
    if (node.prev === undefined) this.#head = node.next;
    else node.prev.next = node.next;
    if (node.next === undefined) this.#tail = node.prev;
    else node.next.prev = node.prev;
    node.next = undefined;
    node.prev = undefined;
    this.#size--;
  }
}
