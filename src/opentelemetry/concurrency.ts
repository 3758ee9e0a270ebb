import { trace, type Attributes } from "@opentelemetry/api";
import { CONCURRENCY_EVENT, CONCURRENCY_KEY, CONCURRENCY_LIMIT } from "./attributes.js";
import { quietly } from "./span.js";

/**
 * An `onChange` callback for `adaptiveConcurrency(...)` that records each change of the limit
 * on the active span: an `async_pipeline.concurrency.change` event with
 * `async_pipeline.concurrency.limit` (the new limit) and, under `perKey`,
 * `async_pipeline.concurrency.key` (the key, when it is a string, a number or a boolean). A
 * change of the batch's own limit (no key) also sets `async_pipeline.concurrency.limit` on the
 * span, so that the span ends with the last limit the batch found.
 *
 * The active span is the one active where the batch was started (a span you open around
 * `map`, or `tracedRun`'s): the limit changes as items finish, in the batch's own async
 * context. Without an active span it does nothing; it never throws. To log as well, call it
 * from your own callback.
 *
 * @param limit - the new limit, a whole number
 * @param key - the key under `perKey`, else `undefined`
 * @default no options
 * @example
 * ```ts
 * import { trace } from "@opentelemetry/api";
 * import { adaptiveConcurrency } from "async-pipeline";
 * import { recordConcurrencyChange } from "async-pipeline/opentelemetry";
 *
 * await trace.getTracer("app").startActiveSpan("import", async (span) => {
 *   await pipeline.map(rows, {
 *     concurrency: adaptiveConcurrency({ max: 256, onChange: recordConcurrencyChange }),
 *   });
 *   span.end(); // events: async_pipeline.concurrency.change { limit: 2 }, { limit: 3 }, …
 * });
 * ```
 */
export function recordConcurrencyChange(limit: number, key?: unknown): void {
  quietly(() => {
    const span = trace.getActiveSpan();
    if (span === undefined) return;
    const attributes: Attributes = { [CONCURRENCY_LIMIT]: limit };
    if (typeof key === "string" || typeof key === "number" || typeof key === "boolean") {
      attributes[CONCURRENCY_KEY] = key;
    }
    span.addEvent(CONCURRENCY_EVENT, attributes);
    if (key === undefined) span.setAttribute(CONCURRENCY_LIMIT, limit);
  });
}
