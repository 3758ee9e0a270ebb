import { nonNegativeInteger, optionalFunction, optionsObject, show } from "../internal/validate.js";
import type { OptionKeys } from "../internal/known-keys.js";
import { concurrencyOption } from "../internal/limits.js";
import { perKeyOptionHints } from "../internal/option-hints.js";
import { WAIT, type Admission, type Waiting } from "../internal/pool.js";
import { Queue } from "../internal/queue.js";
import type { AdaptiveConcurrency } from "./adaptive.js";

/**
 * The `perKey` batch option: at most `concurrency` items whose keys are equal run at once.
 *
 * @typeParam T - the item type
 * @example
 * ```ts
 * import type { PerKeyOptions } from "async-pipeline";
 *
 * const perHost: PerKeyOptions<URL> = { key: (url) => url.host, concurrency: 2 };
 * ```
 */
export interface PerKeyOptions<T = unknown> {
  /**
   * The item's key: items whose keys are equal (`SameValueZero`, as in a `Map`) share the
   * bound. Called once per item, when it is taken from the input. A throw fails that item as
   * a stage failure would (`map` rejects with the error, `mapSettled` records it).
   * @default no default: required
   * @example
   * ```ts
   * pipeline.map(urls, { perKey: { key: (url) => new URL(url).host, concurrency: 2 } });
   * ```
   */
  key: (item: T, index: number) => unknown;
  /**
   * How many items of one key may run at once: an integer ≥ 1 (or `Infinity`), within the
   * batch's overall `concurrency`; or `adaptiveConcurrency(...)`, one limit per key that each
   * key's items find (`onChange(limit, key)` names the key).
   * @default no default: required
   * @example
   * ```ts
   * pipeline.map(jobs, { concurrency: 32, perKey: { key: (job) => job.tenant, concurrency: 4 } });
   * pipeline.map(urls, {
   *   concurrency: 64,
   *   perKey: { key: (url) => new URL(url).host, concurrency: adaptiveConcurrency({ max: 16 }) },
   * });
   * ```
   */
  concurrency: number | AdaptiveConcurrency;
  /**
   * How many items may wait for a busy key at once, read ahead of the items that run: an
   * integer ≥ 0, independent of `concurrency`. While that many wait, no new item is taken from
   * the input until one of them starts. So at most `concurrency + maxWaiting` items are taken
   * and not finished, and memory stays bounded, also at `concurrency: Infinity` and on an
   * endless input; and input sorted by key (all of one host, then the next) does not hold the
   * other keys back as long as a run of one key is shorter than `maxWaiting`. With `0`, no item
   * is read past one whose key is busy: that item waits in the place of the one that would
   * have run. In `stream`, waiting items also count in the read-ahead window
   * (`concurrency + buffer` items taken and not yet read).
   * @default 1000
   * @example
   * ```ts
   * // Crawl a list sorted by host: read up to 10,000 items ahead to find other hosts' work.
   * pipeline.map(urls, { concurrency: 64, perKey: { key: (url) => new URL(url).host, concurrency: 2, maxWaiting: 10_000 } });
   * ```
   */
  maxWaiting?: number | undefined;
}

/** The default of {@link PerKeyOptions.maxWaiting}. */
export const DEFAULT_MAX_WAITING = 1_000;

/**
 * How many items may wait for their keys before the pool takes no more: `maxWaiting`, but at
 * least 1, since the pool cannot know an item's key before it takes it (with `maxWaiting: 0`
 * that one item waits in the place of a running one; see {@link KeyedAdmission.full}). A bound
 * of 0 would let the pool take nothing at all. For a fixed and an adaptive per-key limit alike.
 */
export function waitingBound(options: Pick<PerKeyOptions, "maxWaiting">): number {
  return Math.max(options.maxWaiting ?? DEFAULT_MAX_WAITING, 1);
}

interface KeyState<T> {
  running: number;
  waiting: Queue<Waiting<T>> | undefined;
}

/**
 * Per-key admission for the pool. `enter` admits an item when its key has a free place, or
 * queues it (per key, FIFO) so that the pool can go on to items of other keys; `leave` frees
 * a place and hands over the key's next waiting item. At most `perKey.maxWaiting` items wait at
 * once: the pool takes no new item while `full` (a hand-over makes room). A key's entry is
 * dropped as soon as nothing of that key runs or waits, so memory follows the items in flight,
 * not the keys ever seen.
 */
export class KeyedAdmission<T> implements Admission<T> {
  readonly #key: (item: T, index: number) => unknown;
  readonly #perKey: number;
  /** At least 1: see {@link KeyedAdmission.full}. */
  readonly #maxWaiting: number;
  readonly #keys = new Map<unknown, KeyState<T>>();
  #waiting = 0;

  /**
   * @param options - validated by {@link perKeyOption}; `maxWaiting` defaults to
   *   {@link DEFAULT_MAX_WAITING}
   */
  constructor(options: PerKeyOptions<T>) {
    this.#key = options.key;
    // A number: an adaptive limit per key has an admission of its own (adaptive-keys.ts).
    this.#perKey = options.concurrency as number;
    this.#maxWaiting = waitingBound(options);
  }

  /**
   * Whether as many items wait as allowed: take no new item until one is handed over.
   *
   * With `maxWaiting: 0` one item may still wait: the pool cannot know an item's key before it
   * takes it, and it takes items only while this is `false`. The worker that took that item
   * gives up its place (it takes nothing more while this is `true`), so the item waits in a
   * running item's place and the batch still holds at most `concurrency` items, as promised.
   */
  get full(): boolean {
    return this.#waiting >= this.#maxWaiting;
  }

  /**
   * The item's key when it may run now (give it back to {@link KeyedAdmission.leave} when it
   * finishes), or {@link WAIT} when it was queued. Throws what `key` throws.
   */
  enter(item: T, index: number): unknown {
    const key = this.#key(item, index);
    const state = this.#keys.get(key);
    if (state === undefined) {
      this.#keys.set(key, { running: 1, waiting: undefined });
      return key;
    }
    if (state.running < this.#perKey) {
      state.running++;
      return key;
    }
    (state.waiting ??= new Queue()).push({ item, index });
    this.#waiting++;
    return WAIT;
  }

  /**
   * An item of `key` finished. Returns the key's next waiting item, which takes its place
   * and should run now, or `undefined`.
   */
  leave(key: unknown): Waiting<T> | undefined {
    const state = this.#keys.get(key) as KeyState<T>;
    const next = state.waiting?.shift();
    if (next !== undefined) {
      this.#waiting--;
      return next;
    }
    state.running--;
    if (state.running === 0) this.#keys.delete(key);
    return undefined;
  }
}

/** The keys of {@link PerKeyOptions}; any other key is rejected. */
const perKeyOptionKeys = {
  key: true,
  concurrency: true,
  maxWaiting: true,
} as const satisfies OptionKeys<PerKeyOptions>;

/**
 * The `perKey` batch option, validated, with `maxWaiting` set; the messages name `perKey.key`,
 * `perKey.concurrency`, `perKey.maxWaiting`.
 */
export function perKeyOption(value: unknown): PerKeyOptions | undefined {
  if (value === undefined) return undefined;
  const options =
    optionsObject<Partial<PerKeyOptions>>("perKey", value, perKeyOptionKeys, perKeyOptionHints) ??
    {};
  const key = optionalFunction("perKey.key", options.key);
  if (key === undefined) {
    throw new TypeError(`perKey.key must be a function, got ${show(key)}`);
  }
  const concurrency = concurrencyOption(options.concurrency, "perKey.concurrency");
  return {
    key,
    concurrency: concurrency as number | AdaptiveConcurrency,
    maxWaiting:
      options.maxWaiting === undefined
        ? DEFAULT_MAX_WAITING
        : nonNegativeInteger("perKey.maxWaiting", options.maxWaiting),
  };
}
