/**
 * A worker's subscription to the queue's stop announcements, and when what it heard is enough
 * to start an item without asking Redis.
 *
 * A stop announced while the subscription is up reaches the worker; one announced while it was
 * down (before it was first set up, or while the connection was lost) does not. So the worker
 * notes, per batch, the {@link StopChannel.generation} in which it checked the batch's stop
 * flag in Redis: while that generation lasts, any later stop of the batch arrives as a message.
 */
import type { Redis } from "ioredis";
import { parseStopMessage } from "./wire.js";

export class StopChannel {
  /** Bumped whenever the subscription goes down: announcements may have been missed. */
  #generation = 0;
  /** True once the subscription of the current generation is set up in Redis. */
  #listening = false;
  /** Resolves once the first subscription is set up. */
  readonly listening: Promise<void>;

  /**
   * @param subscriber - a connection of its own (it enters subscriber mode)
   * @param channel - the queue's stop channel
   * @param onStop - called with the batch and run of each announcement
   * @param report - where a failed subscription is reported
   */
  constructor(
    subscriber: Redis,
    channel: string,
    onStop: (batchId: string, run: string) => void,
    report: (error: unknown) => void,
  ) {
    subscriber.on("message", (_channel: string, message: string) => {
      const { batchId, run } = parseStopMessage(message);
      onStop(batchId, run);
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

  /**
   * The current generation while the subscription is up, else `undefined`. Read it before
   * checking a batch in Redis: if it is still current when the answer comes, every later stop
   * of that batch reaches the worker as a message for as long as it stays current.
   */
  get generation(): number | undefined {
    return this.#listening ? this.#generation : undefined;
  }
}
