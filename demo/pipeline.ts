import { Pipeline, Stage, type Middleware, type RetryEvent } from "async-pipeline";
import { timingMiddleware } from "async-pipeline/middlewares";
import { parseRecord, type OrderLine } from "./records.js";
import type { Quote } from "./server.js";

/** An answer from the quote service that is not a 2xx. */
export class HttpError extends Error {
  override name = "HttpError" as const;
  constructor(readonly status: number) {
    super(`HTTP ${String(status)}`);
  }
}

/** A quote in a currency the transform stage has no rate for. */
export class CurrencyError extends Error {
  override name = "CurrencyError" as const;
  constructor(readonly currency: string) {
    super(`no exchange rate for ${currency}`);
  }
}

/** An order line with its quote. */
export interface PricedLine extends OrderLine {
  unitPrice: number;
  currency: string;
}

/** What the job produces for each order line. */
export interface PricedOrder {
  id: string;
  sku: string;
  quantity: number;
  totalEur: number;
}

/** Euros per unit of each currency the job knows. */
const EUR_PER_UNIT: Readonly<Record<string, number>> = { EUR: 1, USD: 0.92, GBP: 1.17 };

export interface JobOptions {
  /** The quote service, `http://127.0.0.1:<port>`. */
  baseUrl: string;
  /** Told about every retry of the fetch stage. */
  onRetry: (event: RetryEvent) => void;
  /** Receives each priced order, in the order they finish. */
  collect: (order: PricedOrder) => void;
  /**
   * Middlewares around timingMiddleware (a worker process adds one that keeps the durations,
   * since each job's context is its own copy).
   */
  outer?: readonly Middleware<object>[];
}

/**
 * The batch job: parse an NDJSON line → fetch its quote over HTTP (timeout, retries with
 * exponential backoff and jitter, no retry for a 4xx) → convert to euros → collect. The
 * `timingMiddleware` records every stage's duration in `context.timings`.
 */
export function makePipeline({ baseUrl, onRetry, collect, outer = [] }: JobOptions) {
  return new Pipeline(
    [
      new Stage("parse", parseRecord),
      new Stage(
        "fetch",
        async (line: OrderLine, _context, call): Promise<PricedLine> => {
          // call.signal aborts when this attempt times out or the batch is cancelled: the
          // request is dropped then, not left running.
          const response = await fetch(`${baseUrl}/quotes/${encodeURIComponent(line.id)}`, {
            signal: call.signal,
          });
          if (!response.ok) {
            await response.body?.cancel();
            throw new HttpError(response.status);
          }
          const quote = (await response.json()) as Quote;
          return { ...line, unitPrice: quote.unitPrice, currency: quote.currency };
        },
        {
          timeout: 800,
          retries: 3,
          retryDelay: 100,
          backoff: "exponential",
          maxRetryDelay: 1_000,
          jitter: true,
          // A 4xx will not get better by asking again; a 5xx or a timeout might.
          shouldRetry: (error) => !(error instanceof HttpError && error.status < 500),
          onRetry,
        },
      ),
      new Stage("transform", (line: PricedLine): PricedOrder => {
        const rate = EUR_PER_UNIT[line.currency];
        if (rate === undefined) throw new CurrencyError(line.currency);
        const totalEur = Math.round(line.quantity * line.unitPrice * rate * 100) / 100;
        return { id: line.id, sku: line.sku, quantity: line.quantity, totalEur };
      }),
      new Stage("collect", (order: PricedOrder) => {
        collect(order);
        return order;
      }),
    ],
    { middlewares: [...outer, timingMiddleware()] },
  );
}
