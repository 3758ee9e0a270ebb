import {
  context as otelContext,
  trace,
  SpanStatusCode,
  type Attributes,
  type Span,
} from "@opentelemetry/api";
import {
  CANCELLED,
  CANCELLED_EVENT,
  CANCEL_REASON_MESSAGE,
  CANCEL_REASON_TYPE,
  ERROR,
  ERROR_MESSAGE,
  ERROR_TYPE,
  OUTPUT_TYPE,
  errorMessage,
  errorType,
  toException,
  traceAttributesOf,
  typeName,
} from "./attributes.js";

/**
 * Runs `run` with `span` as the active span, then records its outcome on the span and ends it:
 *
 * - success: `context.traceAttributes` read again (so a value the work set lands on its own
 *   span), `base` set again (so the library's attributes win over the user's), the output type,
 *   status OK;
 * - cancellation (`signal` aborted and the error is its very reason): `async_pipeline.cancelled`
 *   and a cancellation event, status left unset: cancelling is not failing;
 * - failure: the exception recorded, the error attributes, status ERROR with the message.
 *
 * Resolves or rejects exactly as `run` does, with the same value or error: a span method that
 * throws (a faulty custom tracer) is ignored.
 */
export async function runInSpan<T>(
  span: Span,
  base: Attributes,
  context: unknown,
  signal: AbortSignal | undefined,
  run: () => Promise<T>,
): Promise<T> {
  let output: T;
  try {
    output = await otelContext.with(trace.setSpan(otelContext.active(), span), run);
  } catch (error) {
    quietly(() => {
      recordError(span, base, context, signal, error);
    });
    quietly(() => {
      span.end();
    });
    throw error;
  }
  quietly(() => {
    span.setAttributes({ ...traceAttributesOf(context), ...base, [OUTPUT_TYPE]: typeName(output) });
    span.setStatus({ code: SpanStatusCode.OK });
  });
  quietly(() => {
    span.end();
  });
  return output;
}

function recordError(
  span: Span,
  base: Attributes,
  context: unknown,
  signal: AbortSignal | undefined,
  error: unknown,
): void {
  span.setAttributes({ ...traceAttributesOf(context), ...base });
  if (signal?.aborted === true && error === signal.reason) {
    span.setAttribute(CANCELLED, true);
    span.addEvent(CANCELLED_EVENT, {
      [CANCEL_REASON_TYPE]: errorType(error),
      [CANCEL_REASON_MESSAGE]: errorMessage(error),
    });
    return;
  }
  const message = errorMessage(error);
  span.recordException(toException(error));
  span.setAttributes({ [ERROR]: true, [ERROR_TYPE]: errorType(error), [ERROR_MESSAGE]: message });
  span.setStatus({ code: SpanStatusCode.ERROR, message });
}

/** Runs `record`, ignoring its failure: tracing never changes the outcome of the work. */
export function quietly(record: () => void): void {
  try {
    record();
  } catch {
    // A faulty tracer or span: the work's outcome stands.
  }
}
