/**
 * How a worker reports the errors BullMQ and Redis raise while it runs (a lost connection, a
 * failed lock renewal): to its `onError`, each distinct error at most once per
 * {@link REPEAT_MS}, so that an unreachable Redis (one error per connection and reconnection
 * attempt) does not flood the log. The default `onError` prints one line per error, no stack.
 */
import { now } from "../internal/clock.js";

/** How long a repeat of an error reported is held back, in ms. */
export const REPEAT_MS = 10_000;

/** What makes two errors the same for {@link ErrorReporter}: their class, code and message. */
function identity(error: unknown): string {
  if (!(error instanceof Error)) return `value:${String(error)}`;
  const code = (error as { code?: unknown }).code;
  return `${error.name}:${typeof code === "string" ? code : ""}:${error.message}`;
}

/** The default `onError`: one line on stderr, naming the queue. */
export function printError(queueName: string): (error: unknown) => void {
  return (error) => {
    const text = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    console.error(`async-pipeline/bullmq worker (queue "${queueName}"): ${text}`);
  };
}

/** Passes errors on to `onError`, a repeat of one within {@link REPEAT_MS} only as a count. */
export class ErrorReporter {
  readonly #onError: (error: unknown) => unknown;
  /** When each error was last passed on, and how many repeats were held back since. */
  readonly #seen = new Map<string, { at: number; held: number }>();

  constructor(onError: (error: unknown) => unknown) {
    this.#onError = onError;
  }

  /** Reports `error` (bound: pass it as a listener). */
  readonly report = (error: unknown): void => {
    const key = identity(error);
    const seen = this.#seen.get(key);
    const at = now();
    if (seen !== undefined && at - seen.at < REPEAT_MS) {
      seen.held++;
      return;
    }
    if (seen !== undefined && seen.held > 0 && error instanceof Error) {
      error.message += ` (and ${String(seen.held)} more like it in the last ${String(Math.round((at - seen.at) / 1000))} s)`;
    }
    this.#seen.delete(key);
    this.#seen.set(key, { at, held: 0 });
    // A few distinct errors at most are ever live; forget the oldest beyond that.
    if (this.#seen.size > 100) this.#seen.delete(this.#seen.keys().next().value as string);
    try {
      const result = this.#onError(error);
      if (result instanceof Promise) result.catch(() => undefined);
    } catch {
      // Documented as ignored.
    }
  };
}
