/**
 * The hand-written floors several cases share: the least code that does the job, with none of
 * the library's guarantees beyond it (no signals, contexts, hooks or progress).
 */
import { closeSync, fsyncSync, openSync, writeSync } from "node:fs";

/** `concurrency` workers pulling the next index of the array; results in input order. */
export async function arrayPool<T>(
  items: readonly number[],
  concurrency: number,
  run: (item: number) => Promise<T>,
): Promise<T[]> {
  const results = new Array<T>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const index = next++;
      results[index] = await run(items[index] as number);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
  return results;
}

/** The hand-written timeout: a timer raced against the promise, cleared when it settles. */
export function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => {
      reject(new Error(`timed out after ${String(ms)} ms`));
    }, ms);
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}

/**
 * The floor of checkpoint journaling (issue 22): what a user would hand-write to make a batch
 * resumable. Each finished item's JSON line is appended in memory; the lines are written and
 * `fsync`ed together at most `flushEvery` ms apart (one timer while lines wait), and at `close`.
 * No checksum, no lock, no torn-tail handling, no identity check: the library's journal must
 * cost at most 1.5× this over trivial items. For phase B's bench case.
 */
export class JournalFloor {
  readonly #fd: number;
  readonly #flushEvery: number;
  #lines: string[] = [];
  #timer: ReturnType<typeof setTimeout> | undefined;

  constructor(path: string, flushEvery: number) {
    this.#fd = openSync(path, "a");
    this.#flushEvery = flushEvery;
  }

  /** Appends one line (a JSON text without its newline). */
  append(line: string): void {
    this.#lines.push(line);
    if (this.#timer === undefined && this.#flushEvery !== Infinity) {
      this.#timer = setTimeout(this.#flush, this.#flushEvery);
    }
  }

  /** Writes and `fsync`s what waits, and closes the file. */
  close(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#flush();
    closeSync(this.#fd);
  }

  readonly #flush = (): void => {
    this.#timer = undefined;
    if (this.#lines.length === 0) return;
    writeSync(this.#fd, `${this.#lines.join("\n")}\n`);
    this.#lines = [];
    fsyncSync(this.#fd);
  };
}
