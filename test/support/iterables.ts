/** Inputs for batches and readers of their output, shared by the test files. */

/** The numbers 0 to `length - 1`. */
export function range(length: number): number[] {
  return Array.from({ length }, (_, index) => index);
}

/** Reads a whole stream into an array. */
export async function drain<T>(stream: AsyncIterable<T>): Promise<T[]> {
  const values: T[] = [];
  for await (const value of stream) values.push(value);
  return values;
}

export interface Source {
  /** Items the generator produced (pulled from it). */
  pulled: number;
  /** Whether its `finally` ran. */
  closed: boolean;
}

/** A generator of `count` numbers (endless by default) that counts pulls and records closing. */
export function counted(count = Infinity): { source: Source; items: Generator<number> } {
  const source: Source = { pulled: 0, closed: false };
  function* generate(): Generator<number> {
    try {
      for (let index = 0; index < count; index++) {
        source.pulled++;
        yield index;
      }
    } finally {
      source.closed = true;
    }
  }
  return { source, items: generate() };
}

/** The async version of {@link counted}. */
export function countedAsync(count = Infinity): { source: Source; items: AsyncGenerator<number> } {
  const source: Source = { pulled: 0, closed: false };
  async function* generate(): AsyncGenerator<number> {
    try {
      for (let index = 0; index < count; index++) {
        source.pulled++;
        yield index;
      }
    } finally {
      source.closed = true;
    }
  }
  return { source, items: generate() };
}
