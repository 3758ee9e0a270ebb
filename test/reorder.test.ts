/**
 * The ordered stream's reorder buffer: results stored in any order within the read-ahead
 * window come back in input order, whatever the window, including windows larger than the
 * ring it starts with (it grows).
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ReorderBuffer } from "../src/internal/reorder.js";
import { Pipeline, Stage } from "../src/index.js";
import { NUM_RUNS } from "./support/property.js";

/** Stores `count` results in a shuffled order that never runs `spread` ahead of the reads. */
function roundTrip(spread: number, count: number, seed: number): number[] {
  const buffer = new ReorderBuffer<number>(spread);
  let state = seed >>> 0 || 1;
  const random = (): number => {
    state = (state * 1_103_515_245 + 12_345) >>> 0;
    return state / 2 ** 32;
  };
  const read: number[] = [];
  const pending: number[] = [];
  let next = 0;
  while (read.length < count) {
    // Take new indices while the window allows, then store one of them at random.
    while (next < count && next - read.length < spread) pending.push(next++);
    const pick = Math.floor(random() * pending.length);
    const [index] = pending.splice(pick, 1) as [number];
    buffer.set(index, index * 10);
    while (buffer.ready) read.push(buffer.shift());
  }
  expect(buffer.ready).toBe(false);
  return read;
}

describe("ReorderBuffer", () => {
  it("gives back results in input order whatever order they were stored in", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 64 }),
        fc.integer({ min: 0, max: 300 }),
        fc.integer(),
        (spread, count, seed) => {
          const read = roundTrip(spread, count, seed);
          expect(read).toEqual(Array.from({ length: count }, (_, index) => index * 10));
        },
      ),
      { numRuns: NUM_RUNS },
    );
  });

  it("grows when results land further ahead than the ring it started with", () => {
    // Spread 5,000 (the ring starts at 1,024 for large spreads), results stored in reverse.
    const buffer = new ReorderBuffer<number>(Infinity);
    for (let index = 4_999; index >= 0; index--) {
      buffer.set(index, index);
      expect(buffer.ready).toBe(index === 0);
    }
    const read: number[] = [];
    while (buffer.ready) read.push(buffer.shift());
    expect(read).toEqual(Array.from({ length: 5_000 }, (_, index) => index));
  });
});

describe("stream: ordered results through a window larger than the initial ring", () => {
  it("yields 3,000 items in input order when they settle in reverse order", async () => {
    const count = 3_000;
    const releases: (() => void)[] = [];
    const stage = new Stage(
      "held",
      (value: number) =>
        new Promise<number>((resolve) => {
          releases.push(() => {
            resolve(value);
          });
        }),
    );
    const stream = new Pipeline([stage]).stream(
      Array.from({ length: count }, (_, index) => index),
      { concurrency: Infinity, buffer: Infinity },
    );
    const reading = (async () => {
      const seen: number[] = [];
      for await (const value of stream) seen.push(value);
      return seen;
    })();
    // Every item starts (the window is unbounded), then they settle last first.
    while (releases.length < count) await Promise.resolve();
    for (let index = count - 1; index >= 0; index--) (releases[index] as () => void)();
    expect(await reading).toEqual(Array.from({ length: count }, (_, index) => index));
  });
});
