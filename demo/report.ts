import { StageExecutionError, TimeoutError, type Progress } from "async-pipeline";
import { CurrencyError, HttpError } from "./pipeline.js";
import { InvalidRecordError } from "./records.js";
import type { ServerStats } from "./server.js";

/**
 * A short, stable description of what an attempt threw. By class here, and by `name` for an
 * error that came back from a worker process (rebuilt as a plain `Error` with the remote name).
 */
export function describeError(error: unknown): string {
  if (error instanceof TimeoutError) return `timed out (${String(error.timeout)} ms)`;
  if (error instanceof HttpError || error instanceof CurrencyError) return error.message;
  if (error instanceof InvalidRecordError) return "invalid record";
  if (error instanceof SyntaxError) return "not JSON";
  if (!(error instanceof Error)) return String(error);
  switch (error.name) {
    case "TimeoutError":
      return `timed out (${/after (\d+) ms/.exec(error.message)?.[1] ?? "?"} ms)`;
    case "HttpError":
    case "CurrencyError":
      return error.message;
    case "InvalidRecordError":
      return "invalid record";
    default:
      return `${error.name}: ${error.message}`;
  }
}

/** Why an item failed: the stage, what its last attempt threw, and how many attempts it took. */
export function failureReason(reason: unknown): string {
  if (!(reason instanceof StageExecutionError)) return describeError(reason);
  const attempts = reason.attempts > 1 ? ` after ${String(reason.attempts)} attempts` : "";
  return `${reason.stageName}: ${describeError(reason.originalError)}${attempts}`;
}

/** Counts by key, printed largest first. */
export class Tally {
  readonly #counts = new Map<string, number>();

  add(key: string, count = 1): void {
    this.#counts.set(key, (this.#counts.get(key) ?? 0) + count);
  }

  /** Replaces every count (with the totals worker processes keep in Redis). */
  replace(counts: Record<string, number>): void {
    this.#counts.clear();
    for (const [key, count] of Object.entries(counts)) this.#counts.set(key, count);
  }

  get total(): number {
    let total = 0;
    for (const count of this.#counts.values()) total += count;
    return total;
  }

  entries(): [string, number][] {
    return [...this.#counts].sort(([a, x], [b, y]) => y - x || a.localeCompare(b));
  }
}

/** The nearest-rank percentile `p` (0–100) of `values`. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[rank - 1] as number;
}

/** `1234` → `"1.2 s"` */
export const seconds = (ms: number): string => `${(ms / 1_000).toFixed(1)} s`;

/**
 * Shows progress: on a terminal, one line redrawn in place (on each update, at most every
 * 100 ms, and every second while nothing settles, so the clock keeps moving); elsewhere (a
 * pipe, a CI log), a plain line at every tenth of the way.
 */
export class ProgressLine {
  readonly #out: NodeJS.WriteStream;
  readonly #started: number;
  readonly #retries: () => number;
  readonly #ticker: NodeJS.Timeout | undefined;
  #last: Progress;
  #lastDraw = 0;
  #lastStep = 0;
  #drawn = false;

  constructor(out: NodeJS.WriteStream, total: number, retries: () => number) {
    this.#out = out;
    this.#started = performance.now();
    this.#retries = retries;
    this.#last = { done: 0, failed: 0, inFlight: 0, total };
    if (out.isTTY) {
      this.#ticker = setInterval(() => {
        this.#draw();
      }, 1_000);
    }
  }

  /** The latest progress reported. */
  get last(): Progress {
    return this.#last;
  }

  update(progress: Progress): void {
    this.#last = progress;
    const total = progress.total ?? 0;
    if (this.#out.isTTY) {
      if (performance.now() - this.#lastDraw >= 100 || progress.done === total) this.#draw();
      return;
    }
    const step = total === 0 ? 0 : Math.floor((progress.done / total) * 10);
    if (step <= this.#lastStep) return;
    this.#lastStep = step;
    this.#out.write(`progress: ${this.#text()}\n`);
  }

  /** Prints a line of its own above the progress line (redrawn after it). */
  note(line: string): void {
    if (this.#drawn) this.#out.write("\r\x1b[2K");
    this.#out.write(`${line}\n`);
    if (this.#drawn) this.#draw();
  }

  /** Stops redrawing and ends the line, so what follows starts on a line of its own. */
  end(): void {
    clearInterval(this.#ticker);
    if (this.#drawn) this.#out.write("\n");
    this.#drawn = false;
  }

  #draw(): void {
    this.#lastDraw = performance.now();
    const { done, total = 0 } = this.#last;
    const width = 24;
    const filled = total === 0 ? 0 : Math.floor((done / total) * width);
    const bar = `${"█".repeat(filled)}${"░".repeat(width - filled)}`;
    this.#out.write(`\r\x1b[2K${bar} ${this.#text()}`);
    this.#drawn = true;
  }

  #text(): string {
    const { done, failed, inFlight, total, restored } = this.#last;
    return (
      `${String(done)}/${String(total ?? "?")} done` +
      (restored === undefined || restored === 0 ? "" : ` (${String(restored)} restored)`) +
      `, ${String(failed)} failed, ` +
      `${String(inFlight)} in flight, retries: ${String(this.#retries())}, ` +
      seconds(performance.now() - this.#started)
    );
  }
}

/** The `p50`/`p95` table of the durations `timingMiddleware` collected. */
export function durationLines(
  timings: Record<string, number[]>,
  stages: readonly string[],
): string[] {
  const lines = [`stage durations (ms, timingMiddleware):`];
  lines.push(
    `  ${"stage".padEnd(10)} ${"runs".padStart(5)} ${"p50".padStart(8)} ${"p95".padStart(8)}`,
  );
  for (const stage of stages) {
    const values = timings[stage] ?? [];
    const cell = (p: number): string =>
      (values.length === 0 ? "-" : percentile(values, p).toFixed(1)).padStart(8);
    lines.push(
      `  ${stage.padEnd(10)} ${String(values.length).padStart(5)} ${cell(50)} ${cell(95)}`,
    );
  }
  return lines;
}

/** The counted lines of a tally, indented, or `none`. */
export function tallyLines(tally: Tally): string[] {
  const entries = tally.entries();
  if (entries.length === 0) return ["  none"];
  const width = Math.max(...entries.map(([key]) => key.length));
  return entries.map(([key, count]) => `  ${key.padEnd(width)} ${String(count).padStart(4)}`);
}

/** One line about what the quote server saw. */
export function serverLine(stats: ServerStats): string {
  const statuses =
    [...stats.statuses]
      .sort(([a], [b]) => a - b)
      .map(([status, count]) => `${String(status)} ×${String(count)}`)
      .join(", ") || "no answers";
  return (
    `quote server: ${String(stats.requests)} requests (${statuses}), ` +
    `${String(stats.unanswered)} never answered (the client gave up first)`
  );
}
