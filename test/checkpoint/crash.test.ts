/**
 * Crash tests of the file store alone: a child process appends records as fast as it can and
 * is killed with SIGKILL at a random moment, several times in a row on the same file. After
 * each kill the file loads cleanly (every record intact, in order, none missing before the
 * last), keeps every record the child knew durable (a `flush` had resolved), and the next child
 * takes the dead one's lock over and goes on from there. Whole batches are phase B's.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { fileCheckpoint } from "../../src/checkpoint/index.js";
import { seeded, startChild, temporaryFolder, within } from "./support.js";

let folder: ReturnType<typeof temporaryFolder>;
beforeEach(() => {
  folder = temporaryFolder();
});
afterEach(() => {
  folder.remove();
});

/** The records of the file, checked to be `{ n: 0 }`, `{ n: 1 }`, … */
async function countRecords(path: string): Promise<number> {
  const checkpoint = fileCheckpoint(path);
  let count = 0;
  try {
    for (const record of checkpoint.load()) {
      expect((record as { n: number }).n).toBe(count);
      count++;
    }
  } finally {
    await checkpoint.close();
  }
  return count;
}

describe("the file store killed with SIGKILL while appending", () => {
  it.each([20, Infinity])(
    "loads cleanly after every kill, losing nothing flushed (flushEvery %s)",
    (flushEvery) =>
      seeded("test/checkpoint/crash.test.ts", async (next) => {
        const path = folder.file("c.ckpt");
        let expected = 0;
        const kills = 5;
        for (let kill = 0; kill < kills; kill++) {
          const child = startChild("appender.ts", [path, String(flushEvery)]);
          const loaded = Number(
            (await within(child.line("loaded "), 30_000, "a child's load")).slice("loaded ".length),
          );
          expect(loaded).toBeGreaterThanOrEqual(expected);
          // Kill at a random moment while it appends (after at least one durable group).
          try {
            await within(child.line("durable "), 30_000, "a child's first durable group");
            await new Promise((resolve) => setTimeout(resolve, next() * 300));
          } finally {
            child.process.kill("SIGKILL");
          }
          const { signal } = await within(child.exited, 30_000, "a killed child's exit");
          expect(signal, child.output().stderr).toBe("SIGKILL");
          const durable = child
            .output()
            .stdout.split("\n")
            .filter((line) => line.startsWith("durable "))
            .map((line) => Number(line.slice("durable ".length)));
          expected = Math.max(...durable);
          const count = await countRecords(path);
          expect(count).toBeGreaterThanOrEqual(expected);
          expected = count;
        }
      }),
    180_000,
  );
});
