/**
 * `fileCheckpoint(path)`: the embedded {@link CheckpointStore}, an append-only file of
 * checksummed JSON lines (see `format.ts`) with a lock file beside it (see `lock.ts`).
 *
 * Appending frames the record into a buffer in memory. The buffer is written (one `write`) and
 * made durable (one `fsync`, off the main thread) when the oldest record in it is `flushEvery`
 * ms old, on `flush`, and on `close`; past 1 MiB it is written at once (without `fsync`), so
 * memory stays flat whatever `flushEvery` is. A timer runs only while records wait.
 *
 * The `fsync`s, and why each is needed (all off the main thread):
 * - the file's, once per group: the records themselves;
 * - the folder's, with the first group of a file this store created (side by side with the
 *   file's): without it a power loss can lose the new name, and with it every record;
 * - the folder's after `clear` deleted the file: a cleared checkpoint must not come back;
 * - none of the lock file: a lock matters only while its holder runs, and no holder outlives
 *   the power loss that could lose it (a lock left behind by a dead process is taken over).
 */
import {
  close,
  closeSync,
  fstatSync,
  fsync,
  ftruncateSync,
  open,
  openSync,
  rmSync,
  writeSync,
} from "node:fs";
import { dirname } from "node:path";
import type { CheckpointStore } from "../types.js";
import { APPEND_OUTPUT } from "../internal/checkpoint-records.js";
import type { OptionKeys } from "../internal/known-keys.js";
import { noop } from "../internal/thenable.js";
import { startTimer, stopTimer, type TimerHandle } from "../internal/timers.js";
import { optionalBoolean, optionsObject, show } from "../internal/validate.js";
import { LineBuffer, readLines, type ReadEnd } from "./format.js";
import { acquireLock, type HeldLock } from "./lock.js";

/**
 * Options of {@link fileCheckpoint}.
 *
 * @example
 * ```ts
 * import { fileCheckpoint } from "async-pipeline/checkpoint";
 *
 * const checkpoint = fileCheckpoint("prices.ckpt", { flushEvery: 1_000, clearOnSuccess: true });
 * ```
 */
export interface FileCheckpointOptions {
  /**
   * The longest time, in ms, between a record's append and its `fsync`: records are written
   * and made durable in groups at most this far apart. A crash loses at most the last group
   * (those items run again). A number greater than 0, or `Infinity` to write them only when
   * the batch ends (or every 1 MiB, without `fsync`).
   * @default 200
   */
  flushEvery?: number | undefined;
  /**
   * Delete the checkpoint when a batch completes, so that the next batch starts from nothing
   * instead of returning the recorded results.
   * @default false
   */
  clearOnSuccess?: boolean | undefined;
}

const fileCheckpointOptionKeys = {
  flushEvery: true,
  clearOnSuccess: true,
} as const satisfies OptionKeys<FileCheckpointOptions>;

/** The default of {@link FileCheckpointOptions.flushEvery}. */
const DEFAULT_FLUSH_EVERY = 200;

/** Past this many bytes waiting, the buffer is written at once (without `fsync`). */
const HIGH_WATER = 1024 * 1024;

/**
 * Keeps a batch's checkpoint in the file at `path`: an append-only file of checksummed JSON
 * lines, with a lock file `<path>.lock` beside it. No server, no native module: Node, Bun and
 * Deno (with `--allow-read` and `--allow-write` for the folder, and `--allow-sys=hostname` and
 * `--allow-run` for the lock's checks). Creating it touches no file: the batch that uses it
 * opens it, and closes it when it ends.
 *
 * @param path - the checkpoint file; `<path>.lock` is its lock
 * @param options - `flushEvery` (default 200 ms), `clearOnSuccess` (default `false`)
 * @returns a {@link CheckpointStore} for the `checkpoint` option of `map`, `mapSettled` and
 *   `stream`, or for {@link readCheckpoint}
 * @throws TypeError or RangeError for a bad path or option
 * @example
 * ```ts
 * import { Pipeline, Stage } from "async-pipeline";
 * import { fileCheckpoint } from "async-pipeline/checkpoint";
 *
 * declare function fetchPrice(sku: string): Promise<number>;
 * declare const skus: string[];
 *
 * const pricing = new Pipeline([new Stage("price", fetchPrice)]);
 * // Killed at 90%? The same command again runs the remaining 10% only.
 * const prices = await pricing.map(skus, { concurrency: 32, checkpoint: fileCheckpoint("prices.ckpt") });
 * ```
 */
export function fileCheckpoint(path: string, options?: FileCheckpointOptions): FileCheckpoint {
  return new FileCheckpoint(path, options);
}

/**
 * The store {@link fileCheckpoint} returns: a {@link CheckpointStore} with its settings
 * readable.
 *
 * @example
 * ```ts
 * import { fileCheckpoint, type FileCheckpoint } from "async-pipeline/checkpoint";
 *
 * const checkpoint: FileCheckpoint = fileCheckpoint("prices.ckpt");
 * checkpoint.path; // "prices.ckpt"
 * ```
 */
export class FileCheckpoint implements CheckpointStore {
  /** The checkpoint file, as given. */
  readonly path: string;
  /** See {@link FileCheckpointOptions.flushEvery}. */
  readonly flushEvery: number;
  /** See {@link FileCheckpointOptions.clearOnSuccess}. */
  readonly clearOnSuccess: boolean;

  #lock: HeldLock | undefined;
  /** The file, open for appending once something was written. */
  #fd: number | undefined;
  /** Where the valid records end, once known: a torn tail past it is cut before writing. */
  #validEnd: number | undefined;
  readonly #pending = new LineBuffer();
  #timer: TimerHandle | undefined;
  /** Writes so far, and how many of them an `fsync` has covered. */
  #writes = 0;
  #durable = 0;
  /** Whether the file was created since the last `fsync`: its folder needs one too. */
  #unsyncedName = false;
  /** The `fsync` under way, and the writes it covers. */
  #syncing: Promise<void> | undefined;
  #syncingUpTo = 0;
  /** A failure of a write or `fsync` that no caller has seen yet. */
  #failure: { readonly error: unknown } | undefined;
  /** The reads under way, closed with the store. */
  readonly #readers = new Set<Generator>();

  /** @internal Use {@link fileCheckpoint}. */
  constructor(path: string, options?: FileCheckpointOptions) {
    if (typeof path !== "string") throw new TypeError(`path must be a string, got ${show(path)}`);
    if (path === "") throw new RangeError("path must not be empty");
    const given = optionsObject<FileCheckpointOptions>(
      "options",
      options,
      fileCheckpointOptionKeys,
    );
    this.path = path;
    this.flushEvery = flushEveryOption(given?.flushEvery);
    this.clearOnSuccess = optionalBoolean("clearOnSuccess", given?.clearOnSuccess, false);
  }

  /**
   * Takes the lock (`CheckpointInUseError` when another batch holds it) and reads the records,
   * checking each checksum as it goes (`CheckpointCorruptError` for damage; a torn last record
   * is skipped, and cut off before the next write). A missing file (or folder) has no records.
   */
  load(): Iterable<unknown> {
    try {
      this.#open();
    } catch (error) {
      // No folder, so no checkpoint: nothing to read or to lock. Writing will say what is wrong.
      if ((error as { code?: unknown }).code === "ENOENT") return [];
      throw error;
    }
    return this.#read();
  }

  /** Frames the record into the group to write; starts the group's timer if none runs. */
  append(record: unknown): void {
    this.#throwFailure();
    this.#open();
    if (!this.#pending.addValue(record)) {
      throw new TypeError(`a checkpoint record must be JSON-safe, got ${show(record)}`);
    }
    this.#added();
  }

  /**
   * @internal The journal's way to append the record `{ i: index, h: hash, o: output }` of an
   * item that succeeded without making the object: see `APPEND_OUTPUT`.
   */
  [APPEND_OUTPUT](index: number, hash: number, output: unknown): void {
    this.#throwFailure();
    this.#open();
    this.#pending.addOutput(index, hash, output);
    this.#added();
  }

  /** A record was framed: writes past the high water; starts the group's timer if none runs. */
  #added(): void {
    if (this.#pending.length >= HIGH_WATER) this.#write();
    if (this.#timer === undefined && this.flushEvery !== Infinity) {
      this.#timer = startTimer(this.flushEvery, this.#tick);
    }
  }

  /** Writes the records appended so far and resolves once an `fsync` made them durable. */
  async flush(): Promise<void> {
    this.#throwFailure();
    this.#stopTimer();
    this.#write();
    await this.#sync();
  }

  /**
   * Flushes, then releases everything: the file, the lock, the timer, any read under way. The
   * store can be opened again afterwards. Rejects with a write's failure, after releasing.
   */
  async close(): Promise<void> {
    this.#stopTimer();
    let failure = this.#failure;
    if (this.#lock !== undefined) {
      try {
        this.#write();
        await this.#sync();
      } catch (error) {
        failure ??= { error };
      }
    }
    this.#release();
    if (failure !== undefined) throw failure.error;
  }

  /**
   * Deletes the checkpoint file (records not yet written included). Takes the lock for the
   * time it takes when the store is not open (`CheckpointInUseError` when another batch holds
   * it); an open store stays open, and starts a new file with its next record.
   */
  async clear(): Promise<void> {
    const wasOpen = this.#lock !== undefined;
    this.#open();
    try {
      this.#stopTimer();
      await this.#syncing?.then(noop, noop);
      this.#pending.clear();
      this.#closeFile();
      rmSync(this.path, { force: true });
      this.#validEnd = 0;
      await syncFolder(this.path);
    } finally {
      if (!wasOpen) this.#release();
    }
  }

  /** Takes the lock, unless this store holds it already. */
  #open(): void {
    if (this.#lock !== undefined) return;
    this.#lock = acquireLock(this.path);
  }

  #read(): Generator {
    // Where the records end matters only until this store opens the file to write.
    const onEnd =
      this.#fd === undefined
        ? (end: ReadEnd) => {
            this.#validEnd = end.validEnd;
          }
        : undefined;
    const readers = this.#readers;
    const path = this.path;
    function* tracked(): Generator {
      try {
        yield* readLines(path, onEnd);
      } finally {
        readers.delete(reader);
      }
    }
    const reader = tracked();
    readers.add(reader);
    return reader;
  }

  readonly #tick = (): void => {
    this.#timer = undefined;
    try {
      this.#write();
      // A failure is kept for the next append, flush or close.
      this.#sync().then(noop, noop);
    } catch (error) {
      this.#failure ??= { error };
    }
  };

  #stopTimer(): void {
    if (this.#timer === undefined) return;
    stopTimer(this.#timer);
    this.#timer = undefined;
  }

  #throwFailure(): void {
    if (this.#failure !== undefined) throw this.#failure.error;
  }

  /** Writes the waiting records (one `write`, no `fsync`). */
  #write(): void {
    const length = this.#pending.length;
    if (length === 0) return;
    const fd = this.#fd ?? this.#openFile();
    const bytes = this.#pending.bytes;
    let written = 0;
    while (written < length) written += writeSync(fd, bytes, written, length - written);
    this.#pending.clear();
    this.#writes++;
  }

  /** Opens the file for appending, cutting off a torn tail first. */
  #openFile(): number {
    if (this.#validEnd === undefined) {
      // Appending without a full read first: read once to find where the records end.
      const reader = this.#read();
      while (reader.next().done !== true) {
        // Each record is checked as it is read; nothing else to do with it.
      }
    }
    const fd = openSync(this.path, "a");
    try {
      const { size } = fstatSync(fd);
      const validEnd = this.#validEnd as number;
      if (size > validEnd) ftruncateSync(fd, validEnd);
      // A new file's name is made durable with its first records, by the next `#sync`.
      this.#unsyncedName = size === 0;
    } catch (error) {
      closeSync(fd);
      throw error;
    }
    this.#fd = fd;
    return fd;
  }

  /** Resolves once an `fsync` begun after the last write has finished. */
  #sync(): Promise<void> {
    const fd = this.#fd;
    const wanted = this.#writes;
    if (fd === undefined || this.#durable >= wanted) return Promise.resolve();
    const running = this.#syncing;
    if (running !== undefined) {
      return this.#syncingUpTo >= wanted ? running : running.then(() => this.#sync());
    }
    const fileSynced = new Promise<void>((resolve, reject) => {
      fsync(fd, (error) => {
        if (error === null) resolve();
        else reject(error);
      });
    });
    // Both off the main thread, side by side: the records, and the name that leads to them.
    const nameSynced = this.#unsyncedName ? syncFolder(this.path) : undefined;
    this.#unsyncedName = false;
    const synced = (
      nameSynced === undefined ? fileSynced : Promise.all([fileSynced, nameSynced])
    ).then(
      () => {
        this.#durable = Math.max(this.#durable, wanted);
        this.#syncing = undefined;
      },
      (error: unknown) => {
        this.#failure ??= { error };
        this.#syncing = undefined;
        throw error;
      },
    );
    this.#syncing = synced;
    this.#syncingUpTo = wanted;
    return synced;
  }

  #closeFile(): void {
    const fd = this.#fd;
    if (fd === undefined) return;
    this.#fd = undefined;
    this.#unsyncedName = false;
    closeSync(fd);
  }

  /** Releases the file, the lock and the reads, and forgets every state of this opening. */
  #release(): void {
    this.#stopTimer();
    for (const reader of this.#readers) reader.return(undefined);
    this.#readers.clear();
    try {
      this.#closeFile();
    } finally {
      this.#lock?.release();
      this.#lock = undefined;
      this.#pending.clear();
      this.#validEnd = undefined;
      this.#writes = 0;
      this.#durable = 0;
      this.#failure = undefined;
    }
  }
}

function flushEveryOption(value: unknown): number {
  if (value === undefined) return DEFAULT_FLUSH_EVERY;
  if (typeof value !== "number") {
    throw new TypeError(`flushEvery must be a number, got ${show(value)}`);
  }
  if (!(value > 0)) throw new RangeError(`flushEvery must be greater than 0, got ${show(value)}`);
  return value;
}

/**
 * Makes a created or deleted file's name durable, off the main thread: `fsync` of its folder,
 * where that works. Never rejects: not every platform opens folders (Windows does not), and
 * there the file's own `fsync` is what there is.
 */
function syncFolder(path: string): Promise<void> {
  return new Promise((resolve) => {
    open(dirname(path), "r", (openError, fd) => {
      if (openError !== null) {
        resolve();
        return;
      }
      fsync(fd, () => {
        close(fd, () => {
          resolve();
        });
      });
    });
  });
}
