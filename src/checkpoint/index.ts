/**
 * Checkpoints for `async-pipeline` batches: a `map`, `mapSettled` or `stream` given
 * `checkpoint: fileCheckpoint(path)` records each finished item, and the same call after a
 * crash, a deploy or Ctrl-C runs only what is not recorded. No server, no native module, no
 * dependency: an append-only file with a lock beside it, in Node, Bun and Deno. The interface a
 * batch needs, {@link CheckpointStore}, comes from the core entry point, so any runtime can
 * implement its own store.
 *
 * @example
 * ```ts
 * import { fileCheckpoint, readCheckpoint } from "async-pipeline/checkpoint";
 * ```
 *
 * @packageDocumentation
 */

export { fileCheckpoint } from "./file.js";
export type { FileCheckpoint, FileCheckpointOptions } from "./file.js";
export { readCheckpoint } from "./read.js";
export type {
  CheckpointFailure,
  CheckpointReport,
  RecordedCause,
  RecordedError,
} from "../internal/checkpoint-records.js";
export { CheckpointMismatchError } from "../errors/CheckpointMismatchError.js";
export type { CheckpointMismatch } from "../errors/CheckpointMismatchError.js";
export { CheckpointCorruptError } from "../errors/CheckpointCorruptError.js";
export type { CheckpointDamage } from "../errors/CheckpointCorruptError.js";
export { CheckpointInUseError } from "../errors/CheckpointInUseError.js";
export type { CheckpointHolder } from "../errors/CheckpointInUseError.js";
export type { CheckpointStore } from "../types.js";
// Not exported on purpose: the line format's reader and writer, the lock's internals, and the
// journal a batch drives. They may change in any release; docs/checkpoints.md documents the
// file format itself.
