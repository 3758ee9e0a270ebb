/**
 * The hand-written floors several cases share: the least code that does the job, with none of
 * the library's guarantees beyond it (no signals, contexts, hooks or progress).
 */

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
