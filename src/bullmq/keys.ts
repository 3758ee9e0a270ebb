/**
 * The Redis keys of one queue and of each batch in it, under BullMQ's prefix. A batch's keys
 * all start with `<prefix>:<queueName>:pipeline:<batchId>:`; BullMQ's own job keys are
 * `<prefix>:<queueName>:<batchId>-<index>`.
 */

/** The BullMQ job id of an item: unique per batch and index, so a resumed batch reuses it. */
export function jobId(batchId: string, index: number): string {
  return `${batchId}-${String(index)}`;
}

const DIGITS = /^\d+$/;

/** The batch and index a job id names; `undefined` for an id that is not one of ours. */
export function parseJobId(id: string | undefined): { batchId: string; index: number } | undefined {
  const at = id?.lastIndexOf("-") ?? -1;
  if (id === undefined || at < 1) return undefined;
  const digits = id.slice(at + 1);
  if (!DIGITS.test(digits)) return undefined;
  const index = Number(digits);
  return Number.isSafeInteger(index) ? { batchId: id.slice(0, at), index } : undefined;
}

/** An id for a batch the caller did not name: 64 random bits, short (it is in every job id). */
export function randomBatchId(): string {
  let id = "";
  for (const byte of globalThis.crypto.getRandomValues(new Uint8Array(8))) {
    id += byte.toString(16).padStart(2, "0");
  }
  return id;
}

/** The keys of one batch. */
export interface BatchKeys {
  /**
   * Hash: what the workers need to run the batch's jobs (stage names, version, context
   * template, fail-fast), and the run's id. Present while the batch has not settled: a worker
   * writes nothing for a batch without it.
   */
  readonly meta: string;
  /** Hash: item index → its result record, as JSON. */
  readonly results: string;
  /** List: the index of each item a worker settled (or `c<index>`, cancelled), in order. */
  readonly done: string;
  /** Set while the batch is stopping or stopped: no job of it may start. */
  readonly stop: string;
  /** Bitmap: bit `index` set for a streamed result that was yielded and then deleted. */
  readonly yielded: string;
  /** The running producer's id, expiring `lockDuration` ms after its last renewal. */
  readonly hold: string;
}

/** The keys of one queue, and of the batches in it. */
export class Keys {
  readonly #base: string;

  constructor(prefix: string, queueName: string) {
    this.#base = `${prefix}:${queueName}`;
  }

  /**
   * The pub/sub channel on which stops are announced; message: `<batchId>:<run id>`.
   */
  get stopChannel(): string {
    return `${this.#base}:pipeline:stop`;
  }

  /** BullMQ's set of failed jobs of the queue. */
  get failed(): string {
    return `${this.#base}:failed`;
  }

  /** BullMQ's hash of one job. */
  job(batchId: string, index: number): string {
    return `${this.#base}:${jobId(batchId, index)}`;
  }

  /** The keys of batch `batchId`. */
  batch(batchId: string): BatchKeys {
    const base = `${this.#base}:pipeline:${batchId}`;
    return {
      meta: `${base}:meta`,
      results: `${base}:results`,
      done: `${base}:done`,
      stop: `${base}:stop`,
      yielded: `${base}:yielded`,
      hold: `${base}:hold`,
    };
  }
}
