/**
 * What a worker knows of the batches whose jobs it ran: each one's meta record (read from
 * Redis once per run), whether the producer's pipeline is its own, whether the batch stopped,
 * and the signal its running items share.
 */
import { PipelineMismatchError } from "./errors.js";
import type { BatchKeys } from "./keys.js";
import { sameStages, type BatchMeta } from "./wire.js";

/** How many batches a worker remembers (the least recently used are forgotten first). */
const REMEMBERED = 1_000;

/** The reason an item's `call.signal` aborts with when its batch stops. */
function batchStopped(): Error {
  return new DOMException(
    "The batch was stopped: an item failed, or the producer stopped it",
    "AbortError",
  );
}

/** One run of one batch, as a worker knows it. */
export class KnownBatch {
  readonly keys: BatchKeys;
  readonly meta: BatchMeta;
  /** Why this worker must not run the batch's jobs, if its pipeline is not the producer's. */
  readonly mismatch: PipelineMismatchError | undefined;
  /** The stop-channel generation in which the stop flag was last checked in Redis. */
  checkedIn: number | undefined = undefined;
  #controller: AbortController | undefined = undefined;
  #stopped = false;

  constructor(
    keys: BatchKeys,
    meta: BatchMeta,
    worker: { stages: readonly string[]; version: string | undefined },
  ) {
    this.keys = keys;
    this.meta = meta;
    this.mismatch =
      sameStages(worker.stages, meta.stages) && worker.version === meta.version
        ? undefined
        : new PipelineMismatchError({ stages: meta.stages, version: meta.version }, worker);
  }

  /** True once the batch stopped: no item of it may start here. */
  get stopped(): boolean {
    return this.#stopped;
  }

  /** The signal the batch's running items share: it aborts when the batch stops. */
  get signal(): AbortSignal {
    this.#controller ??= new AbortController();
    return this.#controller.signal;
  }

  /** The batch stopped: nothing of it starts any more, and what runs is aborted. */
  stop(reason: unknown = batchStopped()): void {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#controller?.abort(reason);
  }
}

/** The batches a worker knows, by batch id. */
export class KnownBatches {
  readonly #batches = new Map<string, KnownBatch>();
  /** The batch used last (most jobs in a row are of one batch): no reordering for it. */
  #last: KnownBatch | undefined = undefined;
  #lastId = "";

  /** The batch, if known (and marks it recently used). */
  get(batchId: string): KnownBatch | undefined {
    if (batchId === this.#lastId) return this.#last;
    const batch = this.#batches.get(batchId);
    if (batch !== undefined) this.set(batchId, batch);
    return batch;
  }

  /** Remembers `batch` (a new run of a batch replaces the old one). */
  set(batchId: string, batch: KnownBatch): void {
    this.#batches.delete(batchId);
    this.#batches.set(batchId, batch);
    this.#last = batch;
    this.#lastId = batchId;
    if (this.#batches.size > REMEMBERED) {
      this.#batches.delete(this.#batches.keys().next().value as string);
    }
  }

  /** Every batch known: for a worker that closes and abandons what runs. */
  values(): IterableIterator<KnownBatch> {
    return this.#batches.values();
  }
}
