/**
 * The worker's result writes, one Redis command per batch for all the items that settled in
 * one turn of the event loop (a worker of concurrency 16 settles about ten per turn under
 * load), instead of one per item: a command costs the worker a socket write and a reply to
 * parse, and Redis a script call, whatever it carries.
 *
 * Order matters: an item's result must reach Redis before BullMQ completes (and removes) its
 * job, so that a job gone from Redis always has its result there. BullMQ completes a job on
 * the same connection once the processor's promise resolves, so each item's processor awaits
 * {@link ResultWriter.add}, which resolves only after the write that carries it was sent:
 * Redis runs the two in that order.
 */
import type { BatchKeys } from "./keys.js";
import type { Finished, WorkerScripts } from "./scripts.js";

/** A run of a batch, whose items one write carries. */
export interface WriteTarget {
  readonly keys: BatchKeys;
  readonly meta: { readonly run: string };
}

/** Items per command at most (Lua's `unpack` takes a few thousand values). */
const MOST = 1_000;

interface Group {
  readonly keys: BatchKeys;
  readonly run: string;
  stop: string;
  readonly items: Finished[];
}

export class ResultWriter {
  readonly #scripts: WorkerScripts;
  readonly #channel: string;
  readonly #report: (error: unknown) => void;
  /** Items waiting for the next flush, by run of a batch. */
  readonly #groups = new Map<WriteTarget, Group>();
  /** Resolves when the next flush has sent its writes; `undefined` when none is scheduled. */
  #sent: Promise<void> | undefined = undefined;
  #release: () => void = () => undefined;

  /**
   * @param scripts - the worker's scripts, on the connection BullMQ completes jobs on
   * @param channel - the queue's stop channel
   * @param report - where a failed write is reported
   */
  constructor(scripts: WorkerScripts, channel: string, report: (error: unknown) => void) {
    this.#scripts = scripts;
    this.#channel = channel;
    this.#report = report;
  }

  /**
   * Queues `item` of `target` (a run of a batch) for the next flush, with `stop` (an announce
   * message) when the batch must stop. Resolves once the write is sent.
   */
  add(target: WriteTarget, item: Finished, stop: string): Promise<void> {
    let group = this.#groups.get(target);
    if (group === undefined) {
      group = { keys: target.keys, run: target.meta.run, stop: "", items: [] };
      this.#groups.set(target, group);
    }
    group.items.push(item);
    if (stop !== "") group.stop = stop;
    if (this.#sent === undefined) {
      this.#sent = new Promise((resolve) => (this.#release = resolve));
      // After the microtasks of this turn: the items settling in them join this flush.
      process.nextTick(this.#flush);
    }
    return this.#sent;
  }

  readonly #flush = (): void => {
    for (const { keys, run, stop, items } of this.#groups.values()) {
      for (let start = 0; start < items.length; start += MOST) {
        const chunk =
          start === 0 && items.length <= MOST ? items : items.slice(start, start + MOST);
        // The stop goes with the last chunk, after every result of the flush.
        const last = start + MOST >= items.length;
        this.#scripts.finish(keys, this.#channel, run, last ? stop : "", chunk).catch(this.#report);
      }
    }
    this.#groups.clear();
    this.#sent = undefined;
    this.#release();
  };
}
