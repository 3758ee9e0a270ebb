/**
 * How a batch reads and closes its input (issue 11, items 4, 5 and 6): a synchronous iterator
 * is never asked again after `done`, a throwing `value` getter is the input failing, and the
 * input's `return()` is awaited before the batch settles.
 */
import { afterEach, describe, expect, it, vi } from "vitest";
import { Pipeline, Stage } from "../src/index.js";
import { drain, range } from "./support/iterables.js";
import { never, observe, rejectionOf } from "./support/promises.js";
import { flush, sleep } from "./support/time.js";

afterEach(() => {
  vi.useRealTimers();
});

const identity = new Pipeline([new Stage("id", async (value: number) => value)]);

/** A cursor over `count` numbers that throws when read after its end, and counts reads. */
function strictCursor(count: number): { reads: { next: number }; items: Iterable<number> } {
  const reads = { next: 0 };
  let index = 0;
  let ended = false;
  const iterator: Iterator<number> = {
    next: () => {
      reads.next++;
      if (ended) throw new Error("cursor read after its end");
      if (index < count) return { done: false, value: index++ };
      ended = true;
      return { done: true, value: undefined };
    },
  };
  return { reads, items: { [Symbol.iterator]: () => iterator } };
}

describe("input: a synchronous iterator after done", () => {
  it.each([1, 4, 16])("no worker calls next() again (concurrency %d)", async (concurrency) => {
    const { reads, items } = strictCursor(10);
    await expect(identity.map(items, concurrency)).resolves.toEqual(range(10));
    expect(reads.next).toBe(11);
  });

  it("items after a non-sticky end are not processed", async () => {
    let index = 0;
    const items: Iterable<number> = {
      [Symbol.iterator]: () => ({
        // Says done once at 3, then goes on: nobody may read past that first done.
        next: () =>
          index++ === 3 ? { done: true, value: undefined } : { done: false, value: index },
      }),
    };
    await expect(identity.map(items, 4)).resolves.toEqual([1, 2, 3]);
  });

  it("mapSettled and stream do not ask again either", async () => {
    const settled = strictCursor(5);
    expect(await identity.mapSettled(settled.items, 3)).toHaveLength(5);
    expect(settled.reads.next).toBe(6);
    const streamed = strictCursor(5);
    expect(await drain(identity.stream(streamed.items, 3))).toEqual(range(5));
    expect(streamed.reads.next).toBe(6);
  });
});

describe("input: a throwing value getter", () => {
  const boom = new Error("value getter failed");
  function throwingValueAt(position: number): Iterable<number> {
    let index = 0;
    return {
      [Symbol.iterator]: () => ({
        next: () => {
          const current = index++;
          if (current === position) {
            return {
              done: false,
              get value(): number {
                throw boom;
              },
            };
          }
          return current < 5 ? { done: false, value: current } : { done: true, value: undefined };
        },
      }),
    };
  }

  it("mapSettled rejects with it, as for an input that throws", async () => {
    expect(await rejectionOf(identity.mapSettled(throwingValueAt(2), 2))).toBe(boom);
  });

  it("map rejects with it as it is, not wrapped as an item's failure", async () => {
    expect(await rejectionOf(identity.map(throwingValueAt(2), 2))).toBe(boom);
  });

  it("stream ends with it, also with settled: true", async () => {
    expect(
      await rejectionOf(drain(identity.stream(throwingValueAt(1), 2, { settled: true }))),
    ).toBe(boom);
  });
});

describe("input: closing it when a batch stops early", () => {
  /** An async generator whose `finally` takes a while, then records itself and maybe throws. */
  function slowToClose(closeError?: Error) {
    const log: string[] = [];
    async function* generate(): AsyncGenerator<number> {
      try {
        for (let index = 0; ; index++) yield index;
      } finally {
        await sleep(10);
        log.push("closed");
        // eslint-disable-next-line no-unsafe-finally -- the fault under test
        if (closeError !== undefined) throw closeError;
      }
    }
    return { log, items: generate() };
  }

  it("map: fail-fast settles only after the input's finally has run", async () => {
    const { log, items } = slowToClose();
    const pipeline = new Pipeline([
      new Stage("s", (value: number) => {
        if (value === 2) throw new Error("item failed");
        return value;
      }),
    ]);
    await expect(pipeline.map(items, 2)).rejects.toThrow("item failed");
    expect(log).toEqual(["closed"]);
  });

  it("map: the item's error wins over a close that throws", async () => {
    const { log, items } = slowToClose(new Error("close failed"));
    const boom = new Error("item failed");
    const pipeline = new Pipeline([
      new Stage("s", (value: number) => {
        if (value === 1) throw boom;
        return value;
      }),
    ]);
    const error = await rejectionOf(pipeline.map(items, 2));
    expect((error as { originalError?: unknown }).originalError).toBe(boom);
    expect(log).toEqual(["closed"]);
  });

  it("map: an abort settles after the close, with the abort's reason", async () => {
    const { log, items } = slowToClose(new Error("close failed"));
    const controller = new AbortController();
    const pipeline = new Pipeline([new Stage("s", () => never<number>())]);
    const map = rejectionOf(pipeline.map(items, 2, { signal: controller.signal }));
    await flush();
    controller.abort("stop");
    expect(await map).toBe("stop");
    expect(log).toEqual(["closed"]);
  });

  it("stream: break waits for the input's finally", async () => {
    const { log, items } = slowToClose();
    for await (const value of identity.stream(items, 2)) {
      expect(value).toBe(0);
      break;
    }
    expect(log).toEqual(["closed"]);
  });

  it("stream: a close that throws makes break (and return()) throw its error", async () => {
    const closeError = new Error("close failed");
    const { items } = slowToClose(closeError);
    const leave = async (): Promise<void> => {
      for await (const value of identity.stream(items, 2)) {
        expect(value).toBe(0);
        break;
      }
    };
    expect(await rejectionOf(leave())).toBe(closeError);
  });

  it("stream: throw()'s own error wins over a close that throws", async () => {
    const { log, items } = slowToClose(new Error("close failed"));
    const stream = identity.stream(items, 2);
    await stream.next();
    expect(await rejectionOf(stream.throw("consumer"))).toBe("consumer");
    expect(log).toEqual(["closed"]);
  });

  it("an input whose pull hangs does not hold up the abort", async () => {
    let returned = 0;
    const items: AsyncIterable<number> = {
      [Symbol.asyncIterator]: () => ({
        next: () => never<IteratorResult<number>>(),
        return: () => {
          returned++;
          return never<IteratorResult<number>>();
        },
      }),
    };
    const controller = new AbortController();
    const map = observe(identity.map(items, 2, { signal: controller.signal }));
    await flush();
    controller.abort("stop");
    await flush();
    expect(map).toMatchObject({ status: "rejected", reason: "stop" });
    expect(returned).toBe(1);
  });
});
