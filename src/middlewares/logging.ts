import { StageExecutionError } from "../errors/StageExecutionError.js";
import { callIgnoringErrors } from "../internal/thenable.js";
import type { OptionKeys } from "../internal/known-keys.js";
import {
  oneOf,
  optionalBoolean,
  optionalString,
  optionsObject,
  show,
} from "../internal/validate.js";
import type { Middleware } from "../middleware.js";
import { loggingOptionHints } from "../internal/option-hints.js";

/**
 * Where `loggingMiddleware` writes: any object with `info` and `error` methods, such as
 * `console`, a pino, winston or bunyan logger. With `level`, it also needs that method.
 *
 * Each method is called with the line and a {@link LogFields} object: `(message, fields)`, or
 * `(fields, message)` for a logger that takes its fields first (pino, bunyan: see
 * {@link LoggingOptions.order}).
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
  /** Receives the `started` and `succeeded in … ms` lines (unless `level` names another method). */
  info(message: string, ...details: unknown[]): unknown;
  /** Receives the `failed in … ms: …` line. */
  error(message: string, ...details: unknown[]): unknown;
}

/**
 * The structured details of one line of {@link loggingMiddleware}: a fresh object per line,
 * holding only the keys that are known for that line.
 *
 * @example
 * ```ts
 * // stage "fetch" failed in 5000.1 ms: Stage "fetch" failed: Stage "fetch" timed out after 5000 ms
 * const fields: LogFields = { stageName: "fetch", durationMs: 5000.1, attempt: 3, error };
 * ```
 */
export interface LogFields {
  /** The stage's name, on every line. */
  stageName: string;
  /** How long the stage (with the inner middlewares) took, in ms with one decimal; on the success and failure lines. */
  durationMs?: number;
  /**
   * The number of the stage's last attempt, on the failure line of a `StageExecutionError`
   * (its `attempts`). A middleware cannot see a successful stage's attempts.
   */
  attempt?: number;
  /** What the stage threw, on the failure line of a message-first logger (`console`, winston). */
  error?: unknown;
  /**
   * What the stage threw, on the failure line of a fields-first logger: pino's (and bunyan's)
   * error key, which their error serializer prints with its type, message and stack.
   */
  err?: unknown;
  /** With `includeValue`: the stage's input, on the start and failure lines. */
  value?: unknown;
  /** With `includeValue`: the stage's output, on the success line. */
  output?: unknown;
}

/**
 * Options of {@link loggingMiddleware}.
 *
 * @example
 * ```ts
 * loggingMiddleware({ logger: console, level: "debug", includeValue: true });
 * ```
 */
export interface LoggingOptions {
  /**
   * Receives one line when a stage starts, one when it succeeds (with its duration), and one
   * `error` line, with the error, when it fails.
   * @default console
   * @example
   * ```ts
   * loggingMiddleware({ logger: { info: (m) => lines.push(m), error: (m) => lines.push(m) } });
   * ```
   */
  logger?: Logger | undefined;
  /**
   * The logger method that receives the start and success lines: `"debug"`, `"info"`,
   * `"warn"`, or any other method the logger has (winston's `"verbose"`, pino's `"trace"`).
   * Failures always go to `error`. A logger without that method is a `TypeError`.
   * @default "info"
   * @example
   * ```ts
   * loggingMiddleware({ logger: pino(), level: "debug" });
   * ```
   */
  level?: string | undefined;
  /**
   * Also log the values: the stage's input (`value`) on the start and failure lines, its output
   * (`output`) on the success line. Off by default, as values may be large or private.
   * @default false
   * @example
   * ```ts
   * loggingMiddleware({ includeValue: true }); // stage "double" started { stageName: 'double', value: 2 }
   * ```
   */
  includeValue?: boolean | undefined;
  /**
   * How the logger takes its arguments. `"message-first"`: `(message, fields)`, the way
   * `console` and winston do (winston merges the fields into its log entry). `"fields-first"`:
   * `(fields, message)`, the way pino and bunyan do; the error is then under `err`, the key
   * their error serializers print. Detected when not given: `"fields-first"` for a pino logger
   * (or a child of one), `"message-first"` for any other; set it for bunyan or a wrapper.
   * @default "fields-first" for a pino logger, "message-first" otherwise
   * @example
   * ```ts
   * loggingMiddleware({ logger: bunyan.createLogger({ name: "jobs" }), order: "fields-first" });
   * ```
   */
  order?: "message-first" | "fields-first" | undefined;
}

/** The keys of {@link LoggingOptions}; any other key is rejected. */
const loggingOptionKeys = {
  logger: true,
  level: true,
  includeValue: true,
  order: true,
} as const satisfies OptionKeys<LoggingOptions>;

/** `logger.info`, `logger.error` or the method `level` names. */
type LogMethod = (...args: unknown[]) => unknown;

/** Public across pino versions (pino's own `symbols.js`); on every pino logger and child. */
const PINO_SERIALIZERS = Symbol.for("pino.serializers");

/**
 * Logs each stage's start, its success with the duration in ms, and its failure with the
 * error. A logger that throws (or an async logger that rejects) never changes the stage's
 * outcome.
 *
 * Lines look like `stage "fetch" started`, `stage "fetch" succeeded in 12.3 ms` and
 * `stage "fetch" failed in 5000.1 ms: Stage "fetch" failed: …`, each with a {@link LogFields}
 * object (`stageName`, `durationMs`, `attempt` where known, the error, and the values with
 * `includeValue`), passed the way the logger expects it (see {@link LoggingOptions.order}).
 *
 * Winston's JSON and simple formats print a nested `Error` as `{}`: the failure line carries
 * the error's message, and a format that copies `error.stack` into the entry prints the stack.
 *
 * @default logger: console, level: "info", includeValue: false, order: detected
 * @throws TypeError or RangeError for a bad option, when called
 * @example
 * ```ts
 * import { Pipeline, Stage } from "async-pipeline";
 * import { loggingMiddleware } from "async-pipeline/middlewares";
 *
 * const pipeline = new Pipeline([new Stage("double", (n: number) => n * 2)], {
 *   middlewares: [loggingMiddleware()],
 * });
 * await pipeline.run(2);
 * // stage "double" started { stageName: 'double' }
 * // stage "double" succeeded in 0.1 ms { stageName: 'double', durationMs: 0.1 }
 * ```
 */
export function loggingMiddleware(options: LoggingOptions = {}): Middleware<object> {
  optionsObject("options", options, loggingOptionKeys, loggingOptionHints);
  const logger = options.logger ?? console;
  const level = optionalString("level", options.level, "info");
  const includeValue = optionalBoolean("includeValue", options.includeValue, false);
  if (typeof logger.info !== "function" || typeof logger.error !== "function") {
    throw new TypeError("logger must have info and error methods");
  }
  const methods = logger as unknown as Record<string, LogMethod | undefined>;
  if (typeof methods[level] !== "function") {
    throw new TypeError(`level must name a method of the logger, got ${show(level)}`);
  }
  const fieldsFirst =
    oneOf(
      "order",
      options.order,
      ["message-first", "fields-first"],
      PINO_SERIALIZERS in logger ? "fields-first" : "message-first",
    ) === "fields-first";
  const errorKey = fieldsFirst ? "err" : "error";
  // Logging must never change the outcome of a stage: a throw, or an async logger's
  // rejection, is ignored.
  // Each method is looked up when a line is written, so that a spy or a level change made later
  // is seen; it is called on the logger, which pino and winston need.
  const write = (method: string, message: string, fields: LogFields): void => {
    callIgnoringErrors(() =>
      fieldsFirst
        ? (methods[method] as LogMethod)(fields, message)
        : (methods[method] as LogMethod)(message, fields),
    );
  };
  return async (next, stageName, value) => {
    const started: LogFields = { stageName };
    if (includeValue) started.value = value;
    write(level, `stage "${stageName}" started`, started);
    const start = performance.now();
    try {
      const output = await next(value);
      const durationMs = elapsed(start);
      const succeeded: LogFields = { stageName, durationMs };
      if (includeValue) succeeded.output = output;
      write(level, `stage "${stageName}" succeeded in ${durationMs.toFixed(1)} ms`, succeeded);
      return output;
    } catch (error) {
      const durationMs = elapsed(start);
      const failed: LogFields = { stageName, durationMs };
      let cause = error;
      if (error instanceof StageExecutionError) {
        failed.attempt = error.attempts;
        cause = error.originalError;
      }
      failed[errorKey] = error;
      if (includeValue) failed.value = value;
      const line = `stage "${stageName}" failed in ${durationMs.toFixed(1)} ms: ${describe(cause)}`;
      write("error", line, failed);
      throw error;
    }
  };
}

/** Milliseconds since `start`, with one decimal. */
function elapsed(start: number): number {
  return Math.round((performance.now() - start) * 10) / 10;
}

/**
 * `Name: message` for an `Error` (its name alone when the message is empty), the string form of
 * anything else; never throws, whatever was thrown.
 */
function describe(error: unknown): string {
  try {
    if (!(error instanceof Error)) return String(error);
    return error.message === "" ? error.name : `${error.name}: ${error.message}`;
  } catch {
    return "(an error that cannot be described)";
  }
}
