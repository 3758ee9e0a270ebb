/**
 * Adaptive concurrency against services whose capacity the batch is not told: the limit a
 * batch finds with `adaptiveConcurrency()`, how it is reported (`onChange`, `onProgress`'s
 * `concurrency`), and one limit per host with `perKey.concurrency`. The services are
 * stand-ins in this process (no network): each takes so many requests at once, answers 429
 * past that, and slows down as it fills.
 *
 * Run: npx tsx examples/adaptive-concurrency.ts
 */
import { setTimeout as sleep } from "node:timers/promises";
import { adaptiveConcurrency, Pipeline, Stage } from "async-pipeline";

/** What a 429 throws: an error with a `status`, which the controller counts as an overload. */
class TooManyRequests extends Error {
  readonly status = 429;
}

/** A service that takes `capacity` requests at once: 10 ms idle, twice as slow when full. */
function service(capacity: number) {
  const stats = { inFlight: 0, attempts: 0, rejected: 0 };
  const call = async (id: number): Promise<number> => {
    stats.attempts++;
    if (stats.inFlight >= capacity) {
      stats.rejected++;
      await sleep(2);
      throw new TooManyRequests(`busy (${String(capacity)} at once)`);
    }
    stats.inFlight++;
    try {
      await sleep(10 * (1 + (stats.inFlight / capacity) ** 2));
      return id;
    } finally {
      stats.inFlight--;
    }
  };
  return { call, stats };
}

/** Retries as a stage calling a real API would have them: a 429 is retried with backoff. */
const retries = {
  retries: 10,
  retryDelay: 10,
  backoff: "exponential",
  maxRetryDelay: 200,
} as const;
const percent = (part: number, whole: number): string => `${((100 * part) / whole).toFixed(1)}%`;

// 1. One service that takes 20 at once; the batch starts at 1 and finds the limit itself.
const api = service(20);
const changes: number[] = [];
const limit = adaptiveConcurrency({ max: 200, onChange: (now) => changes.push(now) });
const reported = new Set<number>();
const ids = Array.from({ length: 2_000 }, (_, index) => index);
const settled = await new Pipeline([new Stage("call", api.call, retries)]).mapSettled(ids, {
  concurrency: limit,
  onProgress: ({ concurrency }) => {
    if (concurrency !== undefined) reported.add(concurrency);
  },
});
const failed = settled.filter((entry) => entry.status === "rejected").length;
console.log(`batch: ${String(settled.length - failed)} items done, ${String(failed)} failed`);
console.log(`limit found: ${String(limit.limit)} (the service takes 20)`);
console.log(`limit changes told to onChange: ${String(changes.length)}`);
console.log(
  `onProgress reported limits from ${String(Math.min(...reported))} to ${String(Math.max(...reported))}`,
);
console.log(
  `429s: ${percent(api.stats.rejected, api.stats.attempts)} of ${String(api.stats.attempts)} attempts`,
);

// 2. Two hosts behind one stage, one limit each: a small one (5 at once) and a larger one (20).
const hosts = { small: service(5), large: service(20) };
const perHost = adaptiveConcurrency({ max: 100 });
const requests = Array.from({ length: 2_500 }, (_, index) => ({
  host: index % 5 === 0 ? ("small" as const) : ("large" as const),
  id: index,
}));
const fetchOne = new Stage(
  "fetch",
  (request: (typeof requests)[number]) => hosts[request.host].call(request.id),
  retries,
);
const fetched = await new Pipeline([fetchOne]).map(requests, {
  concurrency: 100,
  perKey: { key: (request) => request.host, concurrency: perHost },
});
console.log(`perKey: ${String(fetched.length)} requests done`);
console.log(`small host (takes 5): limit ${String(perHost.limitFor("small"))}`);
console.log(`large host (takes 20): limit ${String(perHost.limitFor("large"))}`);
console.log(
  `the small host's limit is the lower: ${String(perHost.limitFor("small") < perHost.limitFor("large"))}`,
);
