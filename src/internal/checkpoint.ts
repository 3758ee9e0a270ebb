/**
 * The batch side of a checkpoint: {@link CheckpointJournal}. It knows the records
 * (`checkpoint-records.ts`) and the {@link CheckpointStore} interface, nothing of any store.
 */
import type { CheckpointStore } from "../types.js";
import { CheckpointCorruptError } from "../errors/CheckpointCorruptError.js";
import { CheckpointInUseError } from "../errors/CheckpointInUseError.js";
import { CheckpointMismatchError } from "../errors/CheckpointMismatchError.js";
import {
  APPEND_OUTPUT,
  checkHeader,
  COMPLETE,
  failureFromRecord,
  failureRecord,
  forEachValue,
  headerRecord,
  isItemKey,
  itemHash,
  readHeader,
  readRecord,
  type FailureRecord,
  type Identity,
  type ItemId,
  type OutputAppender,
  type ReadRecord,
} from "./checkpoint-records.js";
import { jsonProblem } from "./json.js";
import { isThenable, noop } from "./thenable.js";
import { show } from "./validate.js";

/** What the batch tells a {@link CheckpointJournal} about itself. */
export interface JournalOptions {
  /** The pipeline's stage names, in order: part of the checkpoint's identity. */
  readonly stages: readonly string[];
  /** The batch's `version` option: part of the checkpoint's identity. */
  readonly version: string | undefined;
  /**
   * The batch's `itemKey` (already checked to be a function), or `undefined` to identify items
   * by input position.
   */
  readonly itemKey: ((item: never, index: number) => unknown) | undefined;
  /** The batch's `retryFailed` (default `true`): whether recorded failures run again. */
  readonly retryFailed: boolean;
  /**
   * `false` (`map`, `mapSettled`): recorded outputs are kept from the first read of the
   * checkpoint, and restoring is synchronous. `true` (`stream`): the first read keeps only
   * which items are recorded; an output is fetched by a second read of the store, in step with
   * the input, when its item is taken, so the recorded outputs are never all in memory.
   */
  readonly lazyOutputs: boolean;
  /** The batch's signal: it cuts short `open`'s read of the input. */
  readonly signal?: AbortSignal | undefined;
}

/**
 * A recorded outcome that takes the place of running an item: `ok` with the recorded output,
 * or not with the recorded failure rebuilt (a `StageExecutionError` around the stage's error).
 */
export class Restored {
  constructor(
    /** Whether the item succeeded. */
    readonly ok: boolean,
    /** Its output, or its failure. */
    readonly outcome: unknown,
  ) {}
}

/**
 * What {@link CheckpointJournal.take} answers: a {@link Restored} outcome (or a promise of one,
 * for a lazy read from an asynchronous store) to settle the item with, without running it; or,
 * for an item to run, a ticket (a string or a number, never an object) to hand back to
 * {@link CheckpointJournal.record} when it settles.
 */
export type Taken = Restored | Promise<Restored> | ItemId;

/** The slot of an item with no record. */
const NONE = 0;
/** The slot of an item whose last record is an output. */
const OK = 1;
/** The slot of an item whose last record is a failure. */
const FAILED = 2;
/** The slot of a recorded item already restored (taken). */
const TAKEN = 3;

/** The stores a journal of this copy of the library has open: one batch per store at a time. */
const inUse = new WeakSet<CheckpointStore>();

/**
 * Marks `store` in use by one batch, or throws `CheckpointInUseError` when it is already; `end`
 * unmarks it.
 */
export function claimStore(store: CheckpointStore): { end(): void } {
  if (inUse.has(store)) {
    throw new CheckpointInUseError(
      undefined,
      undefined,
      "another batch of this process is using the same store (one batch per checkpoint at a time)",
    );
  }
  inUse.add(store);
  return { end: () => inUse.delete(store) };
}

/**
 * The batch side of a checkpoint: what one batch (`map`, `mapSettled` or `stream` with the
 * `checkpoint` option) asks of its store, and everything it decides from what is recorded. The
 * batch calls it at two points per item, plus once at each end:
 *
 * 1. `const input = await journal.open(items)`, before anything runs. It claims the store
 *    (`CheckpointInUseError` when another batch of this process uses the same store object),
 *    loads it (the store's own `CheckpointInUseError` and `CheckpointCorruptError` pass
 *    through), checks the header against the pipeline (`CheckpointMismatchError`), and, without
 *    `itemKey`, checks every recorded position of the input against its recorded hash
 *    (`CheckpointMismatchError`; for an input other than an array this reads the input up to
 *    the last recorded position). It resolves with the input the batch must read instead of
 *    `items`: `items` itself, or (an iterable read ahead) an iterable of the same kind that
 *    replays the positions read, with `undefined` in place of the recorded items, and then
 *    reads on. When `open` rejects it has closed the store: the batch rejects with that error
 *    and must not call anything else (`close` is then harmless). A fresh checkpoint gets its
 *    header here.
 * 2. `const taken = journal.take(item, index)`, when the batch takes an item from `input`, before
 *    any user code sees it (before a `perKey` key, hooks, stages). `typeof taken === "object"`:
 *    the item is recorded; it does not run, and the batch settles it with `taken.ok` and
 *    `taken.outcome` (await it first when it is a promise: a lazy fetch from an asynchronous
 *    store) as if it had run (results, order, progress, fail-fast of `map`). Otherwise the item
 *    runs, and `taken` is its ticket for `record`. Throws a `TypeError` for a duplicate or
 *    invalid `itemKey` (naming both indexes), for an item without `itemKey` that JSON cannot
 *    write, and whatever `itemKey` throws: the batch rejects with it (it is not the item's
 *    failure). A rejected lazy fetch (`CheckpointCorruptError`, a store failure) fails the
 *    batch too.
 * 3. `const failure = journal.record(index, ticket, ok, outcome)`, when an item that ran settles
 *    (not a restored one), with its output (`ok`) or its failure, before `onProgress` counts
 *    it: so that nothing reported done before a flush runs again. It appends the item's record.
 *    It returns `undefined`, or a `TypeError` when the output is not JSON-safe: the item then
 *    settles as that failure instead (it was recorded as such). After `close` it records
 *    nothing (the store is closed) and returns `undefined`. It throws when the store's
 *    `append` threw or an earlier asynchronous `append` rejected: the batch rejects with it.
 * 4. `await journal.close(completed)`, last, on every ending after `open` resolved (success,
 *    failure, abort, a stream left early), before the batch's promise (or the stream's
 *    `return()`) settles; never anything after it. `completed` is `true` when every item of the
 *    input was taken and settled (`map` and `mapSettled` resolving, a stream read to its end).
 *    It appends the completion marker (when completed and something changed), waits for the
 *    store's pending appends, flushes, and closes the store, whatever failed on the way. When
 *    completed and the store's `clearOnSuccess` is set, it clears the store instead of marking
 *    it, before the flush (which then has nothing to make durable: no `fsync` of a file about to
 *    be deleted). It rejects with the first failure (the batch then rejects with it, unless it
 *    already has another reason).
 *
 * `journal.restored` counts the items restored so far (for `onProgress`'s `restored`, and in
 * its `done`); `journal.restorable`, known once `open` resolved, counts the recorded items a
 * resumed batch restores when its input holds them (exact without `itemKey`).
 */
export class CheckpointJournal {
  readonly #store: CheckpointStore;
  /** The store, when it appends a success's record from its fields (see `APPEND_OUTPUT`). */
  readonly #outputs: OutputAppender | undefined;
  readonly #options: JournalOptions;
  readonly #identity: Identity;
  readonly #keyed: boolean;
  #claim: { end(): void } | undefined;
  #state: "new" | "open" | "closed" = "new";

  /** Per slot (a position, or a key's slot): NONE, OK, FAILED or TAKEN. */
  #status = new Uint8Array(16);
  /** Per position: the recorded item's hash. */
  #hashes = new Uint32Array(16);
  /**
   * Per slot: the recorded output or {@link FailureRecord} (`lazyOutputs: false`), or the
   * ordinal of the item's last record (`lazyOutputs: true`); `undefined` once restored or
   * when the item runs again.
   */
  readonly #values: unknown[] = [];
  /** Slots in use: 1 + the last recorded position, or the number of recorded keys. */
  #slotCount = 0;
  /** With `itemKey`: each recorded key's slot, and each key taken so far with its index. */
  readonly #slots = new Map<ItemId, number>();
  readonly #seen = new Map<ItemId, number>();

  /** Records loaded by `open` (the header included). */
  #loaded = 0;
  /** Whether the last record loaded is the completion marker. */
  #complete = false;
  #appended = 0;
  #restored = 0;
  #restorable = 0;
  #failure: { readonly error: unknown } | undefined;
  #appending = 0;
  #drained: (() => void) | undefined;

  /** `lazyOutputs`: the second read of the store, its position, and records read ahead. */
  #cursor: Iterator<unknown> | AsyncIterator<unknown> | undefined;
  #cursorAsync = false;
  #cursorAt = 0;
  readonly #ahead = new Map<number, ReadRecord>();
  #fetching: Promise<unknown> | undefined;

  constructor(store: CheckpointStore, options: JournalOptions) {
    this.#store = store;
    this.#outputs =
      typeof (store as Partial<OutputAppender>)[APPEND_OUTPUT] === "function"
        ? (store as CheckpointStore & OutputAppender)
        : undefined;
    this.#options = options;
    this.#keyed = options.itemKey !== undefined;
    this.#identity = this.#keyed ? "key" : "position";
  }

  /** Items restored so far. */
  get restored(): number {
    return this.#restored;
  }

  /** Recorded items a resumed batch restores when its input holds them (after `open`). */
  get restorable(): number {
    return this.#restorable;
  }

  /** Claims and loads the store, checks it and the input: see the class's description. */
  async open<T>(items: Iterable<T> | AsyncIterable<T>): Promise<Iterable<T> | AsyncIterable<T>> {
    if (this.#state !== "new") throw new Error("CheckpointJournal.open called twice");
    this.#state = "open";
    try {
      this.#claim = claimStore(this.#store);
      this.#throwIfAborted();
      await forEachValue(await this.#store.load(), this.#loadRecord);
      this.#countRestorable();
      if (this.#loaded === 0) {
        this.#append(headerRecord(this.#options.stages, this.#options.version, this.#identity));
      }
      return await this.#checkInput(items);
    } catch (error) {
      await this.#end(undefined).catch(noop);
      throw error;
    }
  }

  /** An item was taken: restore it, or run it with the ticket returned. See the class. */
  take(item: unknown, index: number): Taken {
    if (this.#keyed) {
      const key = this.#keyOf(item, index);
      const slot = this.#slots.get(key);
      return slot !== undefined && this.#restores(slot) ? this.#restore(slot) : key;
    }
    return index < this.#slotCount && this.#restores(index)
      ? this.#restore(index)
      : itemHash(item, index);
  }

  /** An item that ran settled: record it. See the class. */
  record(index: number, ticket: ItemId, ok: boolean, outcome: unknown): Error | undefined {
    // An item that settles after the batch ended (closed the journal) is not recorded.
    if (this.#state !== "open") return undefined;
    if (this.#failure !== undefined) throw this.#failure.error;
    let replacement: Error | undefined;
    if (ok && outcome !== undefined) {
      const problem = outputProblem(outcome);
      if (problem !== undefined) {
        replacement = new TypeError(
          `The output of the item at index ${String(index)} is not JSON-safe (${problem}): a checkpoint records outputs as JSON`,
        );
        ok = false;
        outcome = replacement;
      }
    }
    // One literal per shape, so that every record of a shape shares one hidden class.
    let record: object;
    if (this.#keyed) {
      if (!ok) record = { k: ticket, e: failureRecord(outcome) };
      else if (outcome === undefined) record = { k: ticket };
      else record = { k: ticket, o: outcome };
    } else if (!ok) record = { i: index, h: ticket, e: failureRecord(outcome) };
    else if (this.#outputs !== undefined) {
      // The same record, framed by the store from its fields.
      this.#outputs[APPEND_OUTPUT](index, ticket as number, outcome);
      this.#appended++;
      return replacement;
    } else if (outcome === undefined) record = { i: index, h: ticket };
    else record = { i: index, h: ticket, o: outcome };
    this.#append(record);
    return replacement;
  }

  /** The batch ended: mark, flush, clear, close. See the class. */
  async close(completed: boolean): Promise<void> {
    if (this.#state !== "open") return;
    let failure = this.#failure;
    try {
      // A checkpoint deleted at once needs neither its completion marker nor its last records
      // made durable: it is cleared first, and the flush after it has nothing left to write.
      const marking = completed && failure === undefined;
      const clearing = marking && this.#store.clearOnSuccess === true;
      if (marking && !clearing && (this.#appended > 0 || !this.#complete)) this.#append(COMPLETE);
      await this.#drain();
      failure ??= this.#failure;
      if (clearing && failure === undefined) await this.#store.clear();
      await this.#store.flush();
    } catch (error) {
      failure ??= { error };
    }
    await this.#end(failure);
  }

  /** Closes the cursor and the store, releases the claim; rejects with `failure` or the close's. */
  async #end(failure: { readonly error: unknown } | undefined): Promise<void> {
    this.#state = "closed";
    this.#values.length = 0;
    this.#ahead.clear();
    const cursor = this.#cursor;
    this.#cursor = undefined;
    try {
      await cursor?.return?.();
    } catch {
      // Closing a read is best effort; the store's close below releases it anyway.
    }
    if (this.#claim !== undefined) {
      try {
        await this.#store.close();
      } catch (error) {
        failure ??= { error };
      } finally {
        this.#claim.end();
        this.#claim = undefined;
      }
    }
    if (failure !== undefined) throw failure.error;
  }

  #throwIfAborted(): void {
    const { signal } = this.#options;
    if (signal?.aborted === true) throw signal.reason;
  }

  readonly #loadRecord = (value: unknown): void => {
    const ordinal = this.#loaded++;
    if (ordinal === 0) {
      const { stages, version } = this.#options;
      checkHeader(readHeader(value), stages, version, this.#identity);
      return;
    }
    const record = readRecord(value, ordinal, this.#identity);
    if (record.complete === true) {
      this.#complete = true;
      return;
    }
    this.#complete = false;
    let slot: number;
    if (this.#keyed) {
      const known = this.#slots.get(record.id);
      slot = known ?? this.#slotCount;
      if (known === undefined) this.#slots.set(record.id, slot);
    } else {
      slot = record.id as number;
    }
    this.#reserve(slot);
    if (slot >= this.#slotCount) this.#slotCount = slot + 1;
    this.#status[slot] = record.ok ? OK : FAILED;
    this.#hashes[slot] = record.hash;
    this.#values[slot] = this.#options.lazyOutputs ? ordinal : record.value;
  };

  /** Makes room in the slot arrays for `slot`. */
  #reserve(slot: number): void {
    if (slot < this.#status.length) return;
    let size = this.#status.length * 2;
    while (size <= slot) size *= 2;
    const status = new Uint8Array(size);
    status.set(this.#status);
    this.#status = status;
    if (!this.#keyed) {
      const hashes = new Uint32Array(size);
      hashes.set(this.#hashes);
      this.#hashes = hashes;
    }
  }

  /** Counts the restorable slots; forgets what the ones that run again recorded. */
  #countRestorable(): void {
    let count = 0;
    for (let slot = 0; slot < this.#slotCount; slot++) {
      if (this.#restores(slot)) count++;
      else this.#values[slot] = undefined;
    }
    this.#restorable = count;
  }

  /** Whether the item in `slot` is restored rather than run. */
  #restores(slot: number): boolean {
    const status = this.#status[slot];
    return status === OK || (status === FAILED && !this.#options.retryFailed);
  }

  #keyOf(item: unknown, index: number): ItemId {
    const key = (this.#options.itemKey as (item: unknown, index: number) => unknown)(item, index);
    if (!isItemKey(key)) {
      throw new TypeError(
        `itemKey must return a string or a finite number, got ${show(key)} for the item at index ${String(index)}`,
      );
    }
    const first = this.#seen.get(key);
    if (first !== undefined) {
      throw new TypeError(
        `itemKey returned ${JSON.stringify(key)} for the items at indexes ${String(first)} and ${String(index)}: keys must be unique within a batch`,
      );
    }
    this.#seen.set(key, index);
    return key;
  }

  #restore(slot: number): Restored | Promise<Restored> {
    const ok = this.#status[slot] === OK;
    this.#status[slot] = TAKEN;
    this.#restored++;
    const value = this.#values[slot];
    // A lazy slot keeps its ordinal until the second read delivers the record.
    if (!this.#options.lazyOutputs) {
      this.#values[slot] = undefined;
      return restoredOf(ok, value);
    }
    return this.#fetch(value as number, slot);
  }

  // ---- Checking the input (without itemKey) ----

  async #checkInput<T>(
    items: Iterable<T> | AsyncIterable<T>,
  ): Promise<Iterable<T> | AsyncIterable<T>> {
    if (this.#keyed || this.#slotCount === 0) return items;
    if (Array.isArray(items) && items[Symbol.iterator] === Array.prototype[Symbol.iterator]) {
      const array = items as readonly unknown[];
      for (let index = 0; index < this.#slotCount; index++) {
        if (this.#status[index] === NONE) continue;
        if (index >= array.length) throw this.#endedBefore(index);
        this.#checkItem(array[index], index);
      }
      return items as Iterable<T>;
    }
    return this.#readAhead(items);
  }

  /** Throws `CheckpointMismatchError` unless `item` has the hash recorded at `index`. */
  #checkItem(item: unknown, index: number): void {
    const hash = itemHash(item, index);
    const recorded = this.#hashes[index];
    if (hash !== recorded) throw new CheckpointMismatchError("input", recorded, hash, index);
  }

  /** The mismatch of an input that ended at `index`, before the next recorded position. */
  #endedBefore(index: number): CheckpointMismatchError {
    let at = index;
    while (this.#status[at] === NONE) at++;
    return new CheckpointMismatchError("input", this.#hashes[at], undefined, at);
  }

  /**
   * Reads `items` up to the last recorded position, checking each recorded item; keeps the
   * items that will run (not recorded, or failures to retry). Resolves with an iterable that
   * replays those positions (`undefined` for the restored ones), then reads on.
   */
  async #readAhead<T>(
    items: Iterable<T> | AsyncIterable<T>,
  ): Promise<Iterable<T> | AsyncIterable<T>> {
    const asyncFactory = (items as Partial<AsyncIterable<T>>)[Symbol.asyncIterator];
    const iterator: Iterator<T> | AsyncIterator<T> =
      typeof asyncFactory === "function"
        ? asyncFactory.call(items)
        : (items as Iterable<T>)[Symbol.iterator]();
    const sync = typeof asyncFactory !== "function";
    const kept = new Map<number, T>();
    try {
      for (let index = 0; index < this.#slotCount; index++) {
        const step: IteratorResult<T, unknown> = sync
          ? (iterator as Iterator<T>).next()
          : await (iterator as AsyncIterator<T>).next();
        if (!sync) this.#throwIfAborted();
        const { done, value } = step;
        if (done === true) throw this.#endedBefore(index);
        const status = this.#status[index];
        if (status !== NONE) this.#checkItem(value, index);
        if (!this.#restores(index)) kept.set(index, value);
      }
    } catch (error) {
      try {
        await iterator.return?.();
      } catch {
        // The mismatch (or the input's own failure) is what the batch reports.
      }
      throw error;
    }
    const replay = new Replay(iterator, kept, this.#slotCount);
    return sync ? replay.sync() : replay.async();
  }

  // ---- Appending ----

  #append(record: object): void {
    const result = this.#store.append(record);
    this.#appended++;
    if (isThenable(result)) {
      this.#appending++;
      result.then(this.#appendSettled, (error: unknown) => {
        this.#failure ??= { error };
        this.#appendSettled();
      });
    }
  }

  readonly #appendSettled = (): void => {
    if (--this.#appending === 0) this.#drained?.();
  };

  /** Resolves once every asynchronous `append` settled. */
  #drain(): Promise<void> | undefined {
    if (this.#appending === 0) return undefined;
    return new Promise<void>((resolve) => {
      this.#drained = resolve;
    });
  }

  // ---- Fetching recorded outputs (lazyOutputs) ----

  /** The restored outcome of `slot`, whose last record is at `ordinal`. */
  #fetch(ordinal: number, slot: number): Restored | Promise<Restored> {
    const ready = this.#takeAhead(ordinal, slot);
    if (ready !== undefined) return restoredFrom(ready);
    if (this.#cursor === undefined && this.#fetching === undefined) {
      const loaded = this.#store.load();
      if (isThenable(loaded)) {
        this.#fetching = Promise.resolve(loaded).then((records) => {
          this.#startCursor(records);
        });
      } else {
        this.#startCursor(loaded);
      }
    }
    if (this.#fetching === undefined && !this.#cursorAsync) {
      return restoredFrom(this.#advanceSync(ordinal, slot));
    }
    const fetched = (this.#fetching ?? Promise.resolve()).then(() =>
      this.#advanceAsync(ordinal, slot),
    );
    this.#fetching = fetched.then(noop, noop);
    return fetched.then(restoredFrom);
  }

  /** The record at `ordinal` (for `slot`) when it was read ahead, taken out of the read-ahead. */
  #takeAhead(ordinal: number, slot: number): ReadRecord | undefined {
    const ready = this.#ahead.get(ordinal);
    if (ready === undefined) return undefined;
    this.#ahead.delete(ordinal);
    this.#values[slot] = undefined;
    return ready;
  }

  #startCursor(records: Iterable<unknown> | AsyncIterable<unknown>): void {
    const asyncFactory = (records as Partial<AsyncIterable<unknown>>)[Symbol.asyncIterator];
    if (typeof asyncFactory === "function") {
      this.#cursorAsync = true;
      this.#cursor = asyncFactory.call(records);
    } else {
      this.#cursor = (records as Iterable<unknown>)[Symbol.iterator]();
    }
  }

  #advanceSync(ordinal: number, slot: number): ReadRecord {
    const cursor = this.#cursor as Iterator<unknown>;
    for (;;) {
      const found = this.#step(cursor.next(), ordinal, slot);
      if (found !== undefined) return found;
    }
  }

  async #advanceAsync(ordinal: number, slot: number): Promise<ReadRecord> {
    // An earlier fetch may have read past this one's record.
    const ready = this.#takeAhead(ordinal, slot);
    if (ready !== undefined) return ready;
    const cursor = this.#cursor as Iterator<unknown> | AsyncIterator<unknown>;
    for (;;) {
      const found = this.#step(await cursor.next(), ordinal, slot);
      if (found !== undefined) return found;
    }
  }

  /**
   * One record of the second read: the wanted one (at `ordinal`, for `slot`) is returned;
   * another is kept ahead when its item is still to be restored from it.
   */
  #step(step: IteratorResult<unknown>, ordinal: number, slot: number): ReadRecord | undefined {
    if (this.#state !== "open") throw new Error("the checkpoint was closed");
    const at = this.#cursorAt++;
    if (step.done === true || at > ordinal) {
      throw new CheckpointCorruptError(
        "the checkpoint changed between two reads (a record was missing on the second)",
        { record: ordinal },
      );
    }
    if (at === 0) return undefined; // the header, checked by the first read
    const record = readRecord(step.value, at, this.#identity);
    if (record.complete === true) return undefined;
    const recordSlot = this.#keyed ? this.#slots.get(record.id) : (record.id as number);
    if (at === ordinal && recordSlot !== slot) {
      throw new CheckpointCorruptError(
        "the checkpoint changed between two reads (another record at the same place)",
        { record: ordinal },
      );
    }
    // Not wanted: a record its item's later one replaced, or one of an item that runs again.
    if (recordSlot === undefined || this.#values[recordSlot] !== at) return undefined;
    if (at !== ordinal) {
      this.#ahead.set(at, record);
      return undefined;
    }
    this.#values[slot] = undefined;
    return record;
  }
}

/** The restored outcome of a recorded output (`ok`) or {@link FailureRecord}. */
function restoredOf(ok: boolean, value: unknown): Restored {
  return new Restored(ok, ok ? value : failureFromRecord(value as FailureRecord));
}

function restoredFrom(record: ReadRecord): Restored {
  const item = record as Extract<ReadRecord, { id: ItemId }>;
  return restoredOf(item.ok, item.value);
}

/** Where an output stops being JSON-safe; `undefined` when it is (the common cases first). */
function outputProblem(value: unknown): string | undefined {
  switch (typeof value) {
    case "string":
    case "boolean":
      return undefined;
    case "number":
      if (Number.isFinite(value)) return undefined;
      break;
    case "object":
      if (value === null) return undefined;
      break;
    default:
      break;
  }
  return jsonProblem(value, "output");
}

/**
 * The input of a batch whose first positions were read ahead to check them: replays those
 * positions (the kept items, `undefined` for the others), then reads on from the iterator.
 */
class Replay<T> {
  readonly #iterator: Iterator<T> | AsyncIterator<T>;
  readonly #kept: Map<number, T>;
  readonly #length: number;
  #at = 0;

  constructor(iterator: Iterator<T> | AsyncIterator<T>, kept: Map<number, T>, length: number) {
    this.#iterator = iterator;
    this.#kept = kept;
    this.#length = length;
  }

  /** The next replayed position, or `undefined` once they are all replayed. */
  #replayed(): IteratorResult<T> | undefined {
    if (this.#at >= this.#length) return undefined;
    const index = this.#at++;
    const value = this.#kept.get(index) as T;
    this.#kept.delete(index);
    return { done: false, value };
  }

  sync(): IterableIterator<T> {
    const iterator = this.#iterator as Iterator<T>;
    const replay: IterableIterator<T> = {
      next: () => this.#replayed() ?? iterator.next(),
      return: (value?: unknown) => {
        this.#kept.clear();
        return iterator.return?.(value) ?? { done: true, value: undefined };
      },
      [Symbol.iterator]: () => replay,
    };
    return replay;
  }

  async(): AsyncIterableIterator<T> {
    const iterator = this.#iterator as AsyncIterator<T>;
    const replay: AsyncIterableIterator<T> = {
      next: () => {
        const replayed = this.#replayed();
        return replayed === undefined ? iterator.next() : Promise.resolve(replayed);
      },
      return: (value?: unknown) => {
        this.#kept.clear();
        return (
          iterator.return?.(value) ?? Promise.resolve({ done: true as const, value: undefined })
        );
      },
      [Symbol.asyncIterator]: () => replay,
    };
    return replay;
  }
}
