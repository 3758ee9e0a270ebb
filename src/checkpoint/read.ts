import type { CheckpointStore } from "../types.js";
import { claimStore } from "../internal/checkpoint.js";
import { reportOf, type CheckpointReport } from "../internal/checkpoint-records.js";

/**
 * What a checkpoint holds, without running anything: how many items are recorded, which of
 * them failed (and how), and whether the batch that wrote it completed. Opens the store (so it
 * rejects with `CheckpointInUseError` while a batch uses it, and with `CheckpointCorruptError`
 * for a damaged one), reads it, and closes it again, whatever happens. A checkpoint that does
 * not exist yet reads as `{ done: 0, failed: [], complete: false }`. Nothing is written: a torn
 * last record is skipped, not cut off.
 *
 * @param store - the checkpoint: `fileCheckpoint(path)` or any {@link CheckpointStore}
 * @returns `{ done, failed: [{ key, error }], complete }`, frozen
 * @example
 * ```ts
 * import { fileCheckpoint, readCheckpoint } from "async-pipeline/checkpoint";
 *
 * const { done, failed, complete } = await readCheckpoint(fileCheckpoint("prices.ckpt"));
 * console.log(`${done} items recorded${complete ? " (complete)" : ""}`);
 * for (const { key, error } of failed) console.log(`${key}: ${error.stageName}: ${error.message}`);
 * ```
 */
export async function readCheckpoint(store: CheckpointStore): Promise<CheckpointReport> {
  const claim = claimStore(store);
  try {
    return await reportOf(await store.load());
  } finally {
    try {
      await store.close();
    } finally {
      claim.end();
    }
  }
}
