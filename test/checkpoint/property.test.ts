/**
 * Property tests of the checkpoint file format (fast-check; a failure prints its seed and
 * counterexample, and `PROPERTY_RUNS` sets the runs): any JSON values round-trip through the
 * file store; a file cut at any byte loads the records whose lines are whole and takes the next
 * append cleanly; any one changed byte is found, at the offset of the record it is in (or, for
 * the file's very last byte, its newline, reads as a torn last record).
 */
import { readFileSync, writeFileSync } from "node:fs";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CheckpointCorruptError, fileCheckpoint } from "../../src/checkpoint/index.js";
import { frameLine } from "../../src/checkpoint/format.js";
import { NUM_RUNS } from "../support/property.js";
import { temporaryFolder } from "./support.js";

/**
 * Each run opens, locks and `fsync`s real files: about 100 ms on a busy disk, so a budget wider
 * than the in-memory properties' (test/support/property.ts).
 */
const TIMEOUT = 30_000 + NUM_RUNS * 400;

let folder: ReturnType<typeof temporaryFolder>;
let file = 0;
beforeAll(() => {
  folder = temporaryFolder();
});
afterAll(() => {
  folder.remove();
});

/** A fresh path in the test's folder. */
function freshPath(): string {
  return folder.file(`c${String(file++)}.ckpt`);
}

const records = fc.array(fc.jsonValue({ maxDepth: 3, stringUnit: "binary" }), {
  minLength: 1,
  maxLength: 12,
});

/** JSON's idea of `value` (what `load` must give back: -0 reads as 0, and so on). */
function viaJson(value: unknown): unknown {
  return JSON.parse(JSON.stringify(value)) as unknown;
}

/** Every record of the file, or what loading it throws. */
async function loadAll(path: string): Promise<unknown[]> {
  const checkpoint = fileCheckpoint(path);
  try {
    return [...checkpoint.load()];
  } finally {
    await checkpoint.close();
  }
}

/** The bytes of a file holding `values`, and where each line starts and ends. */
function encode(values: readonly unknown[]): { bytes: Buffer; starts: number[] } {
  const lines = values.map((value) => Buffer.from(frameLine(JSON.stringify(value))));
  const starts: number[] = [];
  let at = 0;
  for (const line of lines) {
    starts.push(at);
    at += line.length;
  }
  starts.push(at);
  return { bytes: Buffer.concat(lines), starts };
}

describe("property: the checkpoint file format", () => {
  it(
    "gives back any JSON values appended, in order",
    async () => {
      await fc.assert(
        fc.asyncProperty(records, fc.boolean(), async (values, flushBetween) => {
          const path = freshPath();
          const checkpoint = fileCheckpoint(path, { flushEvery: Infinity });
          checkpoint.load();
          for (const value of values) {
            checkpoint.append(value);
            if (flushBetween) await checkpoint.flush();
          }
          await checkpoint.close();
          expect(await loadAll(path)).toEqual(values.map(viaJson));
        }),
        { numRuns: NUM_RUNS },
      );
    },
    TIMEOUT,
  );

  it(
    "loads the whole lines of a file cut at any byte, and appends cleanly after them",
    async () => {
      await fc.assert(
        fc.asyncProperty(
          records,
          fc.double({ min: 0, max: 1, noNaN: true }),
          async (values, at) => {
            const path = freshPath();
            const { bytes, starts } = encode(values);
            const cut = Math.floor(at * bytes.length);
            writeFileSync(path, bytes.subarray(0, cut));
            // The lines whose newline is inside the cut survive.
            const whole = starts.slice(1).filter((end) => end <= cut).length;
            expect(await loadAll(path)).toEqual(values.slice(0, whole).map(viaJson));
            const checkpoint = fileCheckpoint(path);
            checkpoint.load();
            checkpoint.append({ after: "the cut" });
            await checkpoint.close();
            expect(readFileSync(path).length).toBe(
              (starts[whole] as number) + Buffer.from(frameLine('{"after":"the cut"}')).length,
            );
            expect(await loadAll(path)).toEqual([
              ...values.slice(0, whole).map(viaJson),
              { after: "the cut" },
            ]);
          },
        ),
        { numRuns: NUM_RUNS },
      );
    },
    TIMEOUT,
  );

  it(
    "finds any one changed byte at the offset of its record",
    async () => {
      await fc.assert(
        fc.asyncProperty(
          records,
          fc.double({ min: 0, max: 1, noNaN: true, maxExcluded: true }),
          fc.integer({ min: 1, max: 255 }),
          async (values, at, change) => {
            const path = freshPath();
            const { bytes, starts } = encode(values);
            const position = Math.floor(at * bytes.length);
            bytes[position] = ((bytes[position] as number) + change) % 256;
            writeFileSync(path, bytes);
            if (position === bytes.length - 1) {
              // The last newline changed: the last record reads as torn, and is not loaded.
              expect(await loadAll(path)).toEqual(values.slice(0, -1).map(viaJson));
              return;
            }
            const line = starts.filter((start) => start <= position).length - 1;
            let error: unknown;
            try {
              await loadAll(path);
            } catch (thrown) {
              error = thrown;
            }
            expect(error).toBeInstanceOf(CheckpointCorruptError);
            expect(error).toMatchObject({ path, offset: starts[line], record: line });
          },
        ),
        { numRuns: NUM_RUNS },
      );
    },
    TIMEOUT,
  );
});
