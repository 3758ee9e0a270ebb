import { brandClass } from "./brand.js";
import { PipelineError } from "./PipelineError.js";

/**
 * Where a {@link CheckpointCorruptError} found the damage. Each part is known only for some
 * stores: a file checkpoint gives all three, another store the record's position at most.
 */
export interface CheckpointDamage {
  /** The checkpoint file's path, as given to `fileCheckpoint`. */
  readonly path?: string | undefined;
  /** The byte offset in the file where the damaged record starts. */
  readonly offset?: number | undefined;
  /** The damaged record's position in the checkpoint, counting from 0 (the header). */
  readonly record?: number | undefined;
}

/**
 * A checkpoint is damaged: a record whose checksum does not match its bytes, a line that is
 * not a record, a record of the wrong shape, a missing header. (A torn last record, left by a
 * crash in the middle of a write, is not damage: it is ignored and cut off.) Nothing ran and
 * the checkpoint is left as it was; `docs/checkpoints.md` says how to repair one.
 *
 * @example
 * ```ts
 * import { CheckpointCorruptError, readCheckpoint, fileCheckpoint } from "async-pipeline/checkpoint";
 *
 * try {
 *   await readCheckpoint(fileCheckpoint("prices.ckpt"));
 * } catch (error) {
 *   if (error instanceof CheckpointCorruptError) {
 *     console.error(`${error.path} is damaged at byte ${error.offset}: ${error.reason}`);
 *   }
 *   throw error;
 * }
 * ```
 */
export class CheckpointCorruptError extends PipelineError {
  /** Always `"CheckpointCorruptError"`. */
  override name = "CheckpointCorruptError" as const;

  /** The checkpoint file's path, as given to `fileCheckpoint`; `undefined` for another store. */
  readonly path: string | undefined;

  /** The byte offset where the damaged record starts, for a file; otherwise `undefined`. */
  readonly offset: number | undefined;

  /** The damaged record's position, counting from 0 (the header), when known. */
  readonly record: number | undefined;

  /** What is wrong with the record, such as `"checksum mismatch"`. */
  readonly reason: string;

  /**
   * @param reason - what is wrong with the record
   * @param where - where the damage is
   * @param cause - the error that revealed it (a JSON `SyntaxError`), if any
   */
  constructor(reason: string, where: CheckpointDamage, cause?: unknown) {
    super(describe(reason, where), cause === undefined ? undefined : { cause });
    this.path = where.path;
    this.offset = where.offset;
    this.record = where.record;
    this.reason = reason;
  }
}

// `instanceof CheckpointCorruptError` holds for an instance made by any copy of the library.
brandClass(CheckpointCorruptError, "CheckpointCorruptError");

function describe(reason: string, { path, offset, record }: CheckpointDamage): string {
  const what = path === undefined ? "The checkpoint" : `Checkpoint ${path}`;
  const places: string[] = [];
  if (record !== undefined) places.push(`record ${String(record)}`);
  if (offset !== undefined) places.push(`byte ${String(offset)}`);
  const where = places.length === 0 ? "" : ` at ${places.join(", ")}`;
  return `${what} is damaged${where}: ${reason}`;
}
