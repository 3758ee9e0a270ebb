import { trace } from "@opentelemetry/api";
import type { RetryEvent } from "../types.js";
import {
  ERROR_MESSAGE,
  ERROR_TYPE,
  RETRY_ATTEMPT,
  RETRY_DELAY,
  RETRY_EVENT,
  STAGE_NAME,
  errorMessage,
  errorType,
} from "./attributes.js";
import { quietly } from "./span.js";

/**
 * An `onRetry` callback that records each retry as an `async_pipeline.retry` event on the
 * active span: with {@link openTelemetryMiddleware} first in the list, that is the stage's
 * span. The event carries `async_pipeline.stage.name`, `async_pipeline.retry.attempt` (the
 * attempt that failed, from 1), `async_pipeline.retry.delay` (the wait before the next one, in
 * ms), `async_pipeline.error.type` and `async_pipeline.error.message`.
 *
 * Pass it as a stage's `onRetry` or a `retryMiddleware`'s `onRetry` (placed after the
 * OpenTelemetry middleware). Without an active span it does nothing. To log as well, call it
 * from your own callback.
 *
 * @param event - the frozen `{ stageName, error, attempt, delay }` the retry loop passes
 * @default no options
 * @example
 * ```ts
 * import { Pipeline, Stage } from "async-pipeline";
 * import { retryMiddleware } from "async-pipeline/middlewares";
 * import { openTelemetryMiddleware, recordRetry } from "async-pipeline/opentelemetry";
 *
 * const pipeline = new Pipeline(
 *   [new Stage("fetch", fetchJson, { retries: 3, retryDelay: 100, onRetry: recordRetry })],
 *   { middlewares: [openTelemetryMiddleware(), retryMiddleware({ retries: 2, onRetry: recordRetry })] },
 * );
 * ```
 */
export function recordRetry(event: RetryEvent): void {
  quietly(() => {
    trace.getActiveSpan()?.addEvent(RETRY_EVENT, {
      [STAGE_NAME]: event.stageName,
      [RETRY_ATTEMPT]: event.attempt,
      [RETRY_DELAY]: event.delay,
      [ERROR_TYPE]: errorType(event.error),
      [ERROR_MESSAGE]: errorMessage(event.error),
    });
  });
}
