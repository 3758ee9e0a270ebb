/**
 * What a worker knows of stopped batches from the producers' pub/sub announcements, and when
 * that knowledge is complete enough to start an item without asking Redis.
 *
 * A stop announced while the subscription is up reaches the worker; one announced while it was
 * down (before it was first set up, or while the connection was lost) does not. So a batch is
 * `covered` once the worker has checked its stop flag in Redis with the subscription up, and
 * stays covered until the connection drops: from then on, a stop of it arrives as a message.
 */
import type { Redis } from "ioredis";

/** How many batch ids each of the two memories keeps (the oldest are forgotten first). */
const REMEMBERED = 1_000;

export class StopNotices {
  /** Bumped whenever the subscription goes down: announcements may have been missed. */
  #generation = 0;
  /** True once the subscription of the current generation is set up in Redis. */
  #listening = false;
  /** Batches whose stop flag was checked in Redis during a generation, by generation. */
  readonly #checked = new Map<string, number>();
  /** Batches announced stopped. */
  readonly #stopped = new Set<string>();
  /** Resolves once the first subscription is set up. */
  readonly listening: Promise<void>;

  /**
   * @param subscriber - a connection of its own (it enters subscriber mode)
   * @param channel - the queue's stop channel
   * @param onStop - called with the batch id of each announcement
   * @param report - where a failed subscription is reported
   */
  constructor(
    subscriber: Redis,
    channel: string,
    onStop: (batchId: string) => void,
    report: (error: unknown) => void,
  ) {
    subscriber.on("message", (_channel: string, batchId: string) => {
      remember(this.#stopped, batchId);
      onStop(batchId);
    });
    subscriber.on("close", () => {
      this.#generation++;
      this.#listening = false;
    });
    let listening: () => void = () => undefined;
    this.listening = new Promise((resolve) => (listening = resolve));
    // On every (re)connection: listening once Redis has answered the subscription.
    subscriber.on("ready", () => {
      const generation = this.#generation;
      subscriber.subscribe(channel).then(() => {
        if (generation !== this.#generation) return;
        this.#listening = true;
        listening();
      }, report);
    });
    // A connection copied from a `lazyConnect` one would otherwise wait for a first command.
    if (subscriber.status === "wait") subscriber.connect().catch(() => undefined);
  }

  /** True when any stop of `batchId` since it was last checked in Redis has reached us. */
  covers(batchId: string): boolean {
    return this.#listening && this.#checked.get(batchId) === this.#generation;
  }

  /** True when `batchId` was announced stopped. */
  stopped(batchId: string): boolean {
    return this.#stopped.has(batchId);
  }

  /** Call before checking a batch's stop flag in Redis; pass the result to {@link checked}. */
  mark(): number | undefined {
    return this.#listening ? this.#generation : undefined;
  }

  /** The check of `batchId` that began at `mark` has come back: the batch is covered. */
  checked(batchId: string, mark: number | undefined): void {
    if (mark === undefined || mark !== this.#generation || !this.#listening) return;
    this.#checked.delete(batchId);
    this.#checked.set(batchId, mark);
    if (this.#checked.size > REMEMBERED) this.#checked.delete(first(this.#checked.keys()));
  }
}

function remember(set: Set<string>, value: string): void {
  set.add(value);
  if (set.size > REMEMBERED) set.delete(first(set.values()));
}

function first(values: IterableIterator<string>): string {
  return values.next().value as string;
}
