/**
 * A batch's input, read lazily: items taken in runs of at most the room the window leaves, an
 * async input's slow item never holding back the items already taken, and the input closed
 * (its `return()`) when the batch ends early.
 */
import type { Entry } from "./enqueue.js";

/** What closing the input threw, if anything. */
export type CloseOutcome = { readonly error: unknown } | undefined;

type Step = IteratorResult<unknown>;

const LATER = Symbol("later");

export class Input {
  readonly #iterator: Iterator<unknown> | AsyncIterator<unknown>;
  readonly #isAsync: boolean;
  /** Called when a pull that was not ready at once (left for the next run) has answered. */
  readonly #onLate: () => void;
  /** A pull that was not ready at once, taken by the next run. */
  #pending: Promise<Step> | undefined = undefined;
  /** The pending pull whose answer `onLate` waits for. */
  #watched: Promise<Step> | undefined = undefined;
  #taken = 0;
  #exhausted = false;
  /** A `take` is under way (awaiting the input). */
  #pulling = false;

  /**
   * @param onLate - called when a pull left for the next {@link Input.take} has answered
   * @throws TypeError when `items` is neither an `Iterable` nor an `AsyncIterable`
   */
  constructor(items: unknown, onLate: () => void) {
    this.#onLate = onLate;
    if (typeof items === "object" && items !== null) {
      if (Symbol.asyncIterator in items) {
        this.#iterator = (items as AsyncIterable<unknown>)[Symbol.asyncIterator]();
        this.#isAsync = true;
        return;
      }
      if (Symbol.iterator in items) {
        this.#iterator = (items as Iterable<unknown>)[Symbol.iterator]();
        this.#isAsync = false;
        return;
      }
    }
    throw new TypeError("items must be an Iterable or an AsyncIterable");
  }

  /** How many items were taken. */
  get taken(): number {
    return this.#taken;
  }

  /** True once the input said `done`. */
  get exhausted(): boolean {
    return this.#exhausted;
  }

  /**
   * Takes up to `room` items (with their indices). From an async input it stops early when
   * the next item is not ready at once, so that a slow input never holds back the items
   * already taken, nor, unless `wait`, the collection of results: then it may take none.
   */
  async take(room: number, wait: boolean): Promise<Entry[]> {
    this.#pulling = true;
    try {
      return await this.#take(room, wait);
    } finally {
      this.#pulling = false;
    }
  }

  async #take(room: number, wait: boolean): Promise<Entry[]> {
    const entries: Entry[] = [];
    while (entries.length < room && !this.#exhausted) {
      const pending = this.#pending ?? Promise.resolve(this.#iterator.next());
      this.#pending = undefined;
      let step: Step | typeof LATER;
      if ((entries.length > 0 || !wait) && this.#isAsync) {
        step = await Promise.race([pending, nextTurn()]);
        if (step === LATER) {
          if (this.#watched !== pending) {
            this.#watched = pending;
            pending.then(this.#onLate, () => {
              this.#onLate();
            });
          }
          this.#pending = pending;
          break;
        }
      } else {
        step = await pending;
      }
      if (step.done === true) this.#exhausted = true;
      else entries.push({ index: this.#taken++, value: step.value });
    }
    return entries;
  }

  /**
   * Closes the input (unless it ended): what its `return()` threw, if anything. While a pull
   * is under way (an async input still producing an item), `return()` is called but not
   * awaited: an async generator queues it behind the pull, and an input that never answers
   * must not hold the batch's end.
   */
  async close(): Promise<CloseOutcome> {
    this.#pending?.catch(() => undefined);
    if (this.#exhausted) return undefined;
    try {
      const closing = this.#iterator.return?.();
      if (this.#pulling) {
        Promise.resolve(closing).catch(() => undefined);
        return undefined;
      }
      await closing;
      return undefined;
    } catch (error) {
      return { error };
    }
  }
}

function nextTurn(): Promise<typeof LATER> {
  return new Promise((resolve) => setImmediate(resolve, LATER));
}
