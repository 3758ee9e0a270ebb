/**
 * Between a distributed batch and the core's {@link ResultStream}: hands each result to the
 * stream (the value, or the settled result with `settled`), and, as the consumer reads, tells
 * the batch which items were yielded (their results then leave Redis, and a resumed stream
 * skips them) and that there may be room to take more input.
 *
 * A resumed stream skips the items an earlier run yielded, so the stream's positions are the
 * input indexes less the skipped ones below each: in input order, the consumer's n-th read is
 * the n-th item not skipped; in arrival order, it is the n-th to arrive.
 */
import { Queue } from "../internal/queue.js";
import type { ResultStream } from "../internal/result-stream.js";
import type { Batch, Consumer } from "./batch.js";

export class StreamFeed implements Consumer {
  readonly #stream: ResultStream;
  readonly #ordered: boolean;
  readonly #settled: boolean;
  #batch: Batch | undefined = undefined;
  /** Input indexes skipped, in increasing order. */
  readonly #skipped: number[] = [];
  /** Arrival order: the indexes that arrived and were not yet read. */
  readonly #arrivals = new Queue<number>();
  /** Input order: the next index the consumer reads, and how far into `#skipped` it is. */
  #nextIndex = 0;
  #nextSkipped = 0;
  /** Reads already passed on to the batch. */
  #forgotten = 0;

  constructor(stream: ResultStream, ordered: boolean, settled: boolean) {
    this.#stream = stream;
    this.#ordered = ordered;
    this.#settled = settled;
  }

  /** The batch that feeds the stream. */
  attach(batch: Batch): void {
    this.#batch = batch;
  }

  arrive(index: number, result: PromiseSettledResult<unknown>): void {
    // Without `settled`, a failure never arrives: it ends the batch (fail-fast).
    const value = this.#settled ? result : (result as PromiseFulfilledResult<unknown>).value;
    if (!this.#ordered) {
      this.#arrivals.push(index);
      this.#stream.arrive(index, value);
      return;
    }
    this.#stream.arrive(index - this.#skippedBelow(index), value);
  }

  skip(index: number): void {
    this.#skipped.push(index);
  }

  handed(): number {
    return this.#stream.read;
  }

  /** The consumer read: the batch forgets the items read, and may take more input. */
  resume(): void {
    const batch = this.#batch as Batch;
    for (let read = this.#stream.read; this.#forgotten < read; this.#forgotten++) {
      batch.forget(this.#ordered ? this.#nextRead() : (this.#arrivals.shift() as number));
    }
    batch.resume();
  }

  /** Input order: the index of the next item read (the next one not skipped). */
  #nextRead(): number {
    const skipped = this.#skipped;
    while (this.#nextSkipped < skipped.length && skipped[this.#nextSkipped] === this.#nextIndex) {
      this.#nextSkipped++;
      this.#nextIndex++;
    }
    return this.#nextIndex++;
  }

  /** How many skipped indexes are below `index` (binary search; none unless resumed). */
  #skippedBelow(index: number): number {
    const skipped = this.#skipped;
    let low = 0;
    let high = skipped.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if ((skipped[middle] as number) < index) low = middle + 1;
      else high = middle;
    }
    return low;
  }
}
