import { createServer, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { between, unit } from "./random.js";

/** What the quote service answers for one record, decided by the seed alone. */
export type Behaviour =
  | "ok"
  | "missing" // 404 every time: not worth retrying
  | "broken" // 500 every time: retried, never succeeds
  | "stuck" // never answers in time: every attempt times out
  | "flaky" // 503 on the first request or two, then fine
  | "slowOnce" // the first request hangs, the next is fine
  | "oddCurrency"; // answers, in a currency the transform stage cannot convert

/** The body of a successful answer. */
export interface Quote {
  id: string;
  unitPrice: number;
  currency: string;
}

/** What the server saw, for the summary. */
export interface ServerStats {
  requests: number;
  /** Answers sent, by HTTP status. */
  statuses: Map<number, number>;
  /** Requests never answered: the client gave up first (a timeout, a cancelled batch). */
  unanswered: number;
}

/** A running quote server. */
export interface QuoteServer {
  /** `http://127.0.0.1:<port>` */
  readonly url: string;
  readonly stats: ServerStats;
  /** Stops answering, drops every connection and pending answer, and closes the port. */
  close(): Promise<void>;
}

/** How long a hanging request hangs: far past the client's per-attempt timeout. */
const HANG_MS = 5_000;

export function behaviourOf(seed: number, id: string): Behaviour {
  const draw = unit(seed, `${id}:behaviour`);
  if (draw < 0.03) return "missing";
  if (draw < 0.05) return "broken";
  if (draw < 0.07) return "stuck";
  if (draw < 0.15) return "flaky";
  if (draw < 0.2) return "slowOnce";
  if (draw < 0.23) return "oddCurrency";
  return "ok";
}

/** The answer to the `request`-th request (from 1) for record `id`. */
function answer(
  seed: number,
  id: string,
  request: number,
): { delay: number; status: number; body: unknown } {
  const delay = between(seed, `${id}:${String(request)}:latency`, 100, 300);
  const currencies = ["EUR", "USD", "GBP"];
  const quote: Quote = {
    id,
    unitPrice: between(seed, `${id}:price`, 100, 9_999) / 100,
    currency: currencies[between(seed, `${id}:currency`, 0, 2)] ?? "EUR",
  };
  switch (behaviourOf(seed, id)) {
    case "missing":
      return { delay, status: 404, body: { error: `no quote for ${id}` } };
    case "broken":
      return { delay, status: 500, body: { error: "internal error" } };
    case "stuck":
      return { delay: HANG_MS, status: 200, body: quote };
    case "flaky": {
      const failures = unit(seed, `${id}:failures`) < 0.5 ? 1 : 2;
      return request <= failures
        ? { delay, status: 503, body: { error: "overloaded, try again" } }
        : { delay, status: 200, body: quote };
    }
    case "slowOnce":
      return { delay: request === 1 ? HANG_MS : delay, status: 200, body: quote };
    case "oddCurrency":
      return { delay, status: 200, body: { ...quote, currency: "XYZ" } };
    case "ok":
      return { delay, status: 200, body: quote };
  }
}

/**
 * Starts the quote service on 127.0.0.1, on a random free port: `GET /quotes/<id>` answers
 * slowly (100–300 ms) and fails some requests, the same way for the same seed.
 */
export async function startServer(seed: number): Promise<QuoteServer> {
  const stats: ServerStats = { requests: 0, statuses: new Map(), unanswered: 0 };
  const requestsById = new Map<string, number>();
  // Requests waiting for their answer, and the timer that will send it.
  const pending = new Map<ServerResponse, NodeJS.Timeout>();
  const drop = (response: ServerResponse): void => {
    const timer = pending.get(response);
    if (timer === undefined) return;
    clearTimeout(timer);
    pending.delete(response);
    stats.unanswered++;
  };

  const send = (response: ServerResponse, status: number, body: unknown): void => {
    stats.statuses.set(status, (stats.statuses.get(status) ?? 0) + 1);
    response.writeHead(status, { "content-type": "application/json" });
    response.end(JSON.stringify(body));
  };

  const server = createServer((request, response) => {
    const id = /^\/quotes\/([\w-]+)$/.exec(request.url ?? "")?.[1];
    if (request.method !== "GET" || id === undefined) {
      send(response, 404, { error: "not found" });
      return;
    }
    stats.requests++;
    const count = (requestsById.get(id) ?? 0) + 1;
    requestsById.set(id, count);
    const { delay, status, body } = answer(seed, id, count);
    const timer = setTimeout(() => {
      pending.delete(response);
      send(response, status, body);
    }, delay);
    pending.set(response, timer);
    // The client went away first: its timeout fired, or the batch was cancelled.
    response.on("close", () => {
      drop(response);
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", resolve);
  });
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${String(port)}`,
    stats,
    close: async () => {
      for (const response of [...pending.keys()]) drop(response);
      const closed = new Promise<void>((resolve) => {
        server.close(() => {
          resolve();
        });
      });
      server.closeAllConnections();
      await closed;
    },
  };
}
