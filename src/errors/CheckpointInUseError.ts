import { brandClass } from "./brand.js";
import { PipelineError } from "./PipelineError.js";

/**
 * The process that holds a checkpoint's lock, as its lock file says.
 *
 * @example
 * ```ts
 * import { CheckpointInUseError, type CheckpointHolder } from "async-pipeline/checkpoint";
 *
 * function holderOf(error: unknown): CheckpointHolder | undefined {
 *   return error instanceof CheckpointInUseError ? error.holder : undefined;
 * }
 * ```
 */
export interface CheckpointHolder {
  /** The holder's process id. */
  readonly pid: number;
  /** The host it runs on (`os.hostname()`). */
  readonly hostname: string;
  /** When it took the lock, as an ISO 8601 date. */
  readonly since: string;
}

/**
 * A checkpoint is in use by another batch: one in another process (its lock file names a
 * process that is alive, or one on another host, which cannot be checked), another batch of
 * this process, or the same store object used twice at once. One batch per checkpoint at a
 * time; the lock of a process that no longer exists is taken over at once, so this error means
 * the holder was alive (or could not be checked) when the batch started.
 *
 * @example
 * ```ts
 * import { CheckpointInUseError, fileCheckpoint, readCheckpoint } from "async-pipeline/checkpoint";
 *
 * try {
 *   await readCheckpoint(fileCheckpoint("prices.ckpt"));
 * } catch (error) {
 *   if (error instanceof CheckpointInUseError && error.holder !== undefined) {
 *     console.error(`still running: process ${error.holder.pid} on ${error.holder.hostname}`);
 *   }
 *   throw error;
 * }
 * ```
 */
export class CheckpointInUseError extends PipelineError {
  /** Always `"CheckpointInUseError"`. */
  override name = "CheckpointInUseError" as const;

  /** The checkpoint file's path, as given to `fileCheckpoint`; `undefined` for another store. */
  readonly path: string | undefined;

  /**
   * Who holds it, as its lock file says; `undefined` when the holder is the same store
   * object or the lock file could not be read.
   */
  readonly holder: CheckpointHolder | undefined;

  /**
   * @param path - the checkpoint's path, if it has one
   * @param holder - who holds it, if known
   * @param detail - a sentence to append: why, and what to do
   * @param cause - the error that left the holder's state unknown, if any
   */
  constructor(
    path: string | undefined,
    holder: CheckpointHolder | undefined,
    detail: string,
    cause?: unknown,
  ) {
    const what = path === undefined ? "The checkpoint" : `Checkpoint ${path}`;
    const who =
      holder === undefined
        ? ""
        : ` by process ${String(holder.pid)} on ${holder.hostname} (since ${holder.since})`;
    super(`${what} is in use${who}: ${detail}`, cause === undefined ? undefined : { cause });
    this.path = path;
    this.holder = holder;
  }
}

// `instanceof CheckpointInUseError` holds for an instance made by any copy of the library.
brandClass(CheckpointInUseError, "CheckpointInUseError");
