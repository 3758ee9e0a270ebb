import { callIgnoringErrors } from "../internal/thenable.js";
import type { OptionKeys } from "../internal/known-keys.js";
import { optionsObject } from "../internal/validate.js";
import type { Middleware } from "../middleware.js";

/**
 * Where `loggingMiddleware` writes: any object with `info` and `error` methods, such as
 * `console`, a pino or winston logger.
 *
 * @example
 * ```ts
 * import pino from "pino";
 * import { loggingMiddleware } from "async-pipeline/middlewares";
 *
 * loggingMiddleware({ logger: pino() });
 * ```
 */
export interface Logger {
  /** Receives the `started` and `succeeded in … ms` lines. */
  info(message: string, ...details: unknown[]): unknown;
  /** Receives the `failed in … ms` line, then the error. */
  error(message: string, ...details: unknown[]): unknown;
}

/**
 * Options of {@link loggingMiddleware}.
 *
 * @example
 * ```ts
 * loggingMiddleware({ logger: console });
 * ```
 */
export interface LoggingOptions {
  /**
   * Receives one `info` line when a stage starts and when it succeeds (with its duration), and
   * one `error` line, with the error, when it fails.
   * @default console
   * @example
   * ```ts
   * loggingMiddleware({ logger: { info: (m) => lines.push(m), error: (m) => lines.push(m) } });
   * ```
   */
  logger?: Logger | undefined;
}

/** The keys of {@link LoggingOptions}; any other key is rejected. */
const loggingOptionKeys = { logger: true } as const satisfies OptionKeys<LoggingOptions>;

/**
 * Logs each stage's start, its success with the duration in ms, and its failure with the
 * error. A logger that throws never changes the stage's outcome.
 *
 * Lines look like `stage "fetch" started`, `stage "fetch" succeeded in 12.3 ms` and
 * `stage "fetch" failed in 5000.1 ms` (followed by the error).
 *
 * @default logger: console
 * @example
 * ```ts
 * import { Pipeline, Stage } from "async-pipeline";
 * import { loggingMiddleware } from "async-pipeline/middlewares";
 *
 * const pipeline = new Pipeline([new Stage("double", (n: number) => n * 2)], {
 *   middlewares: [loggingMiddleware()],
 * });
 * await pipeline.run(2); // logs: stage "double" started / stage "double" succeeded in 0.1 ms
 * ```
 */
export function loggingMiddleware(options: LoggingOptions = {}): Middleware<object> {
  optionsObject("options", options, loggingOptionKeys);
  const logger = options.logger ?? console;
  if (typeof logger.info !== "function" || typeof logger.error !== "function") {
    throw new TypeError("logger must have info and error methods");
  }
  // Logging must never change the outcome of a stage: a throw, or an async logger's
  // rejection, is ignored.
  const write = (level: "info" | "error", message: string, ...details: unknown[]): void => {
    callIgnoringErrors(() => logger[level](message, ...details));
  };
  return async (next, stageName, value) => {
    write("info", `stage "${stageName}" started`);
    const started = performance.now();
    try {
      const output = await next(value);
      write("info", `stage "${stageName}" succeeded in ${elapsed(started)} ms`);
      return output;
    } catch (error) {
      write("error", `stage "${stageName}" failed in ${elapsed(started)} ms`, error);
      throw error;
    }
  };
}

function elapsed(started: number): string {
  return (performance.now() - started).toFixed(1);
}
