/**
 * Putting a batch's items into Redis as BullMQ jobs: each item checked on its own (JSON-safe,
 * and no larger than `maxItemBytes` as JSON), the jobs added in bulk commands of bounded
 * count and size, and a bulk add that Redis refused (out of memory, say) undone: the jobs of
 * it that did reach Redis are removed, so that none is left behind.
 */
import type { Queue } from "bullmq";
import { PipelineError } from "../index.js";
import { jsonProblem } from "../internal/json.js";
import { jobId } from "./keys.js";
import { notJsonSafe, type JobData } from "./wire.js";

/** An item taken from the input, and where. */
export interface Entry {
  readonly index: number;
  readonly value: unknown;
}

/** How many jobs one bulk add carries at most. */
export const BULK_COUNT = 500;
/** How many bytes of items one bulk add carries at most (Redis refuses huge requests). */
const BULK_BYTES = 32 * 1024 * 1024;

/** What an item costs as JSON, in bytes at most, without serializing small values. */
function jsonBytes(value: unknown, limit: number): number {
  switch (typeof value) {
    case "number":
    case "boolean":
      return 24;
    case "string":
      // Each UTF-16 unit is at most 6 bytes of JSON (an escape such as \u0001).
      if (value.length * 6 + 2 <= limit) return value.length * 6 + 2;
      break;
    default:
      if (value === null) return 4;
  }
  const json = JSON.stringify(value);
  return json.length * 3 <= limit ? json.length * 3 : Buffer.byteLength(json);
}

/**
 * Why `entry` cannot be enqueued (not JSON-safe, or larger than `maxItemBytes`), or its size
 * in bytes (an upper bound) when it can.
 */
export function checkItem(entry: Entry, maxItemBytes: number): Error | number {
  const problem = jsonProblem(entry.value);
  if (problem !== undefined) return notJsonSafe("The item", entry.index, problem);
  const bytes = jsonBytes(entry.value, maxItemBytes);
  if (bytes <= maxItemBytes) return bytes;
  return new RangeError(
    `The item at index ${String(entry.index)} is ${String(bytes)} bytes of JSON, more than maxItemBytes (${String(maxItemBytes)})`,
  );
}

/**
 * Adds one job per entry (`sizes`: their bytes, from {@link checkItem}), in bulk commands of
 * bounded count and size. When Redis refuses one, its jobs that got in are removed and the
 * returned promise rejects with a {@link PipelineError} naming the items and the cause.
 */
export async function addJobs(
  queue: Queue<JobData>,
  batchId: string,
  entries: readonly Entry[],
  sizes: readonly number[],
): Promise<void> {
  let start = 0;
  while (start < entries.length) {
    let end = start;
    let bytes = 0;
    while (end < entries.length && end - start < BULK_COUNT) {
      bytes += sizes[end] ?? 0;
      if (end > start && bytes > BULK_BYTES) break;
      end++;
    }
    const chunk = entries.slice(start, end);
    try {
      await queue.addBulk(
        chunk.map(({ index, value }) => ({
          name: "item",
          data: value,
          opts: {
            jobId: jobId(batchId, index),
            removeOnComplete: true,
            removeOnFail: false,
            attempts: 1,
          },
        })),
      );
    } catch (error) {
      await Promise.all(
        chunk.map((entry) => queue.remove(jobId(batchId, entry.index)).catch(() => 0)),
      );
      const first = chunk[0]?.index ?? 0;
      const last = chunk.at(-1)?.index ?? first;
      const message = error instanceof Error ? error.message : String(error);
      throw new PipelineError(
        `Redis refused to enqueue the items at index ${String(first)} to ${String(last)}: ${message}`,
        { cause: error },
      );
    }
    start = end;
  }
}
