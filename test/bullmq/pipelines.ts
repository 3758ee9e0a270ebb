/**
 * The pipelines the BullMQ tests run, in worker processes and in the test process alike. Each
 * item is a small script for the `work` stage: what to do, and where to log what happened, so
 * a test can see which items started, where, and which were cancelled.
 */
import { Redis } from "ioredis";
import { Pipeline, Stage, type StageCall } from "../../src/index.js";

export interface Step {
  /** The item's id; the output is derived from it. */
  readonly id: number;
  /**
   * `ok`: finish after `ms`; `fail`: throw a RangeError after `ms`; `hang`: wait for
   * call.signal; `rich`: throw an error with fields of its own and a cause chain; `object`:
   * throw a plain object.
   */
  readonly action?: "ok" | "fail" | "hang" | "rich" | "object";
  readonly ms?: number;
}

export interface LogEntry {
  readonly event: "start" | "aborted" | "end" | "failed";
  readonly id: number;
  readonly worker: string;
  /** When it happened: ms since the epoch, from a monotonic clock (comparable across processes). */
  readonly at: number;
  /** The attempt (for `failed`). */
  readonly attempt?: number | undefined;
}

/** Appends log entries to the Redis list a job's context names (one connection per process). */
export class Log {
  readonly #redis: Redis;
  readonly #worker: string;

  constructor(url: string, worker: string) {
    this.#redis = new Redis(url, { maxRetriesPerRequest: null });
    this.#worker = worker;
  }

  async write(
    key: string | undefined,
    event: LogEntry["event"],
    id: number,
    attempt?: number,
  ): Promise<void> {
    if (key === undefined) return;
    const at = performance.timeOrigin + performance.now();
    const entry: LogEntry = { event, id, worker: this.#worker, at, attempt };
    await this.#redis.rpush(key, JSON.stringify(entry));
  }

  close(): void {
    this.#redis.disconnect();
  }
}

/** The context of the scripted pipeline: a tag for the output, and the key to log to. */
export interface ScriptContext {
  tag?: string;
  log?: string;
  /** Items that fail as `fail` does, whatever their action (a failure of one run only). */
  failIds?: number[];
}

/** Reads a log written by {@link Log}. */
export async function readLog(redis: Redis, key: string): Promise<LogEntry[]> {
  const lines = await redis.lrange(key, 0, -1);
  return lines.map((line) => JSON.parse(line) as LogEntry);
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(signal.reason as Error);
      return;
    }
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason as Error);
    };
    signal.addEventListener("abort", onAbort, { once: true });
  });
}

/** The scripted pipeline: `work` (logged, retried once) then `label`. */
export function scripted(log?: Log) {
  return new Pipeline([
    new Stage(
      "work",
      async (step: Step, context: ScriptContext, call: StageCall) => {
        if (call.attempt === 1) await log?.write(context.log, "start", step.id);
        try {
          if (step.action === "hang") await sleep(3_600_000, call.signal);
          else await sleep(step.ms ?? 0, call.signal);
          if (step.action === "rich") {
            const root = new TypeError("socket hang up", { cause: { errno: -104 } });
            throw Object.assign(new Error("upstream failed", { cause: root }), {
              code: "E_UPSTREAM",
              status: 503,
              details: { host: "quotes" },
            });
          }
          if (step.action === "object") throw { code: 42 } as unknown as Error;
          if (step.action === "fail" || context.failIds?.includes(step.id) === true) {
            void log?.write(context.log, "failed", step.id, call.attempt);
            throw new RangeError(`bad item ${String(step.id)}`);
          }
        } catch (error) {
          if (call.signal.aborted) await log?.write(context.log, "aborted", step.id);
          throw error;
        }
        await log?.write(context.log, "end", step.id);
        return step.id;
      },
      { retries: 1 },
    ),
    new Stage("label", (id: number, context: ScriptContext) => ({
      id,
      square: id * id,
      tag: context.tag ?? "none",
    })),
  ]);
}

/** A pure pipeline whose items finish out of order. */
export function arithmetic() {
  return new Pipeline([
    new Stage("parse", (line: string) => Number.parseInt(line, 10)),
    new Stage("square", async (value: number) => {
      await new Promise((resolve) => setTimeout(resolve, (value * 7) % 5));
      return value * value;
    }),
    new Stage("format", (value: number) => `#${String(value)}`),
  ]);
}

/** Same stage count as {@link arithmetic}, another name in the middle. */
export function renamed() {
  return new Pipeline([
    new Stage("parse", (line: string) => Number.parseInt(line, 10)),
    new Stage("cube", (value: number) => value * value * value),
    new Stage("format", (value: number) => `#${String(value)}`),
  ]);
}
