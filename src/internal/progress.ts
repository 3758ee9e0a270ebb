import type { Progress } from "../types.js";
import { callIgnoringErrors } from "./thenable.js";

type TurnHandle = { kind: "immediate"; id: unknown } | { kind: "timeout"; id: unknown };

/**
 * Calls `callback` on the next turn of the event loop: `setImmediate` where it exists (Node,
 * Bun, Deno), else `setTimeout(…, 0)`. Both looked up when used, so fake timers drive them.
 */
function nextTurn(callback: () => void): TurnHandle {
  const { setImmediate } = globalThis as { setImmediate?: (callback: () => void) => unknown };
  return typeof setImmediate === "function"
    ? { kind: "immediate", id: setImmediate(callback) }
    : { kind: "timeout", id: globalThis.setTimeout(callback, 0) };
}

function cancelTurn(handle: TurnHandle): void {
  if (handle.kind === "immediate") {
    (globalThis as { clearImmediate?: (id: unknown) => void }).clearImmediate?.(handle.id);
  } else {
    globalThis.clearTimeout(handle.id as ReturnType<typeof setTimeout>);
  }
}

/**
 * Counts settled items and reports a frozen {@link Progress} to the user's callback at most
 * once per event-loop turn, so a burst of items settling together costs one call. `flush`
 * reports a pending change at once and cancels the scheduled call: the pool calls it when it
 * ends, so the last report is out before the batch settles and no timer is left behind.
 */
export class ProgressReporter {
  readonly #callback: (progress: Progress) => unknown;
  readonly #total: number | undefined;
  readonly #inFlight: () => number;
  /** With a checkpoint: how many of the items done were restored rather than run. */
  readonly #restored: (() => number) | undefined;
  /** The batch's limit now. */
  readonly #concurrency: () => number;
  #done = 0;
  #failed = 0;
  #scheduled: TurnHandle | undefined;

  constructor(
    callback: (progress: Progress) => unknown,
    total: number | undefined,
    inFlight: () => number,
    restored: (() => number) | undefined,
    concurrency: () => number,
  ) {
    this.#callback = callback;
    this.#total = total;
    this.#inFlight = inFlight;
    this.#restored = restored;
    this.#concurrency = concurrency;
  }

  /** One item settled. */
  settled(ok: boolean): void {
    this.#done++;
    if (!ok) this.#failed++;
    this.#scheduled ??= nextTurn(this.#report);
  }

  /** Reports now if a report is pending. */
  flush(): void {
    if (this.#scheduled === undefined) return;
    cancelTurn(this.#scheduled);
    this.#report();
  }

  readonly #report = (): void => {
    this.#scheduled = undefined;
    const counts = {
      done: this.#done,
      failed: this.#failed,
      inFlight: this.#inFlight(),
      total: this.#total,
      concurrency: this.#concurrency(),
    };
    const restored = this.#restored;
    const progress: Progress = Object.freeze(
      restored === undefined ? counts : { ...counts, restored: restored() },
    );
    callIgnoringErrors(() => this.#callback(progress));
  };
}

/** The size of `items` when it is known without consuming it: an array's length, a `size`. */
export function knownSize(items: unknown): number | undefined {
  if (Array.isArray(items)) return items.length;
  if (ArrayBuffer.isView(items) && "length" in items && typeof items.length === "number") {
    return items.length;
  }
  if (items instanceof Set || items instanceof Map) return items.size;
  return undefined;
}
