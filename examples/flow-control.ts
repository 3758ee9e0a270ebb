/**
 * Flow control against a local flaky HTTP server: a rate limit on request starts, the server's
 * `Retry-After` honoured, a circuit breaker that stops calling a service that is down (and
 * closes again once it is back), a bound per host with `perKey`, and a batch that pauses
 * through one host's outage and finishes with every item (a `whenOpen: "wait"` breaker and a
 * rate limiter per host).
 *
 * Run: npx tsx examples/flow-control.ts
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import {
  BrokenCircuitError,
  CircuitBreaker,
  Pipeline,
  RateLimiter,
  Stage,
  StageExecutionError,
  parseRetryAfter,
} from "async-pipeline";

// The service: GET /items/<id> answers { id }. The first request for item 3 gets a 429 with
// `Retry-After: 1`; while `service.down`, every request gets a 503. GET /hosts/<host>/items/<id>
// is the same item on one of several hosts (for part 5): the host named by `outage.host` answers
// 503 for `outage.length` ms from its first request, and each host's request times are kept.
const service = { down: false, requests: 0, seen: new Set<string>() };
const outage = { host: "", length: 0, until: Infinity };
const arrivals = new Map<string, number[]>();
const server = createServer((request, response) => {
  service.requests++;
  const hosted = /^\/hosts\/(\w+)\/items\/(\d+)$/.exec(request.url ?? "");
  if (hosted !== null) {
    const [, host = "?", id = "?"] = hosted;
    const now = performance.now();
    if (host === outage.host && outage.until === Infinity) outage.until = now + outage.length;
    arrivals.set(host, [...(arrivals.get(host) ?? []), now]);
    if (host === outage.host && now < outage.until) response.writeHead(503).end();
    else
      response.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ id }));
    return;
  }
  const id = /^\/items\/(\d+)$/.exec(request.url ?? "")?.[1] ?? "?";
  if (service.down) {
    response.writeHead(503).end();
  } else if (id === "3" && !service.seen.has(id)) {
    service.seen.add(id);
    response.writeHead(429, { "retry-after": "1" }).end();
  } else {
    response.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ id }));
  }
});
await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
const base = `http://127.0.0.1:${String((server.address() as AddressInfo).port)}`;

/** What a failed request throws: the status and the server's Retry-After, if any. */
class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly retryAfter: string | null,
  ) {
    super(`HTTP ${String(status)}`);
  }
}

async function getItem(id: number, signal: AbortSignal, host?: string): Promise<string> {
  const path = host === undefined ? "" : `/hosts/${host}`;
  const response = await fetch(`${base}${path}/items/${String(id)}`, { signal });
  if (!response.ok) {
    await response.body?.cancel();
    throw new HttpError(response.status, response.headers.get("retry-after"));
  }
  return ((await response.json()) as { id: string }).id;
}

// The first fetch loads Node's HTTP client: done once here, so that it slows no measurement.
await getItem(0, new AbortController().signal);

// 1. At most 4 request starts in any 200 ms, whatever the concurrency; Retry-After honoured.
const limiter = new RateLimiter({ limit: 4, interval: 200 });
let attempts = 0;
const fetchItem = new Stage(
  "fetchItem",
  async (id: number, _context, call) => {
    attempts++;
    return getItem(id, call.signal);
  },
  {
    rateLimit: limiter,
    timeout: 2_000,
    retries: 2,
    retryDelay: 50,
    retryAfter: (error) =>
      error instanceof HttpError ? parseRetryAfter(error.retryAfter) : undefined,
    onRetry: ({ attempt, delay, error }) => {
      console.log(`  attempt ${attempt} failed (${String(error)}), retry in ${delay} ms`);
    },
  },
);
console.log("rate limit (4 starts per 200 ms), concurrency 12:");
const batch = new Pipeline([fetchItem]).map([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11], 12);
// The batch asked for 12 starts at once: 4 started, the others wait for their turn.
console.log(`  started at once: ${attempts}, waiting: ${limiter.waiting}`);
const ids = await batch;
console.log(`  fetched ${ids.join(", ")}`);
console.log(`  ${attempts} attempts (the retry of item 3 counts too)`);
console.log(`  waiting now: ${limiter.waiting}`);

// 2. The service goes down: after 3 failed executions the circuit opens, and the next items
//    fail at once with a BrokenCircuitError, without a request.
const states: string[] = [];
const breaker = new CircuitBreaker({
  threshold: 3,
  cooldown: 300,
  onStateChange: (state) => states.push(state),
});
const guarded = new Stage(
  "fetchGuarded",
  (id: number, _context, call) => getItem(id, call.signal),
  { circuitBreaker: breaker, timeout: 2_000 },
);
const pipeline = new Pipeline([guarded]);
service.down = true;
const before = service.requests;
const settled = await pipeline.mapSettled([20, 21, 22, 23, 24, 25], 1);
const refused = settled.filter(
  (entry) =>
    entry.status === "rejected" &&
    entry.reason instanceof StageExecutionError &&
    entry.reason.originalError instanceof BrokenCircuitError,
).length;
console.log("circuit breaker (threshold 3, cooldown 300 ms), service down:");
console.log(`  ${settled.length} items: ${settled.length - refused} failed, ${refused} refused`);
console.log(`  requests the server saw: ${service.requests - before}`);
console.log(`  state: ${breaker.state}`);

// 3. The service is back; after the cooldown one trial runs, succeeds, and closes the circuit.
service.down = false;
await new Promise((resolve) => setTimeout(resolve, 350));
const again = await pipeline.map([30, 31, 32], 1);
console.log(`  after the cooldown: ${again.join(", ")}; state ${breaker.state}`);
console.log(`  state changes: ${states.join(" → ")}`);

// 4. perKey: at most 2 requests per host at once, other hosts not held up.
const running = new Map<string, number>();
let most = 0;
const perHost = new Stage("perHost", async (job: { host: string; id: number }, _context, call) => {
  const now = (running.get(job.host) ?? 0) + 1;
  running.set(job.host, now);
  most = Math.max(most, now);
  try {
    return await getItem(job.id, call.signal);
  } finally {
    running.set(job.host, (running.get(job.host) ?? 1) - 1);
  }
});
const jobs = Array.from({ length: 12 }, (_, id) => ({ host: id < 8 ? "a" : "b", id: 40 + id }));
const fetched = await new Pipeline([perHost]).map(jobs, {
  concurrency: 6,
  perKey: { key: (job) => job.host, concurrency: 2 },
});
console.log(
  `perKey: ${fetched.length} items in input order: ${String(fetched[0])}…${String(fetched.at(-1))}`,
);
console.log(`  at most ${most} requests per host at once (concurrency 6, perKey 2)`);

// 5. A batch through an outage: host b is down for 400 ms from its first request. A breaker per host with
//    whenOpen "wait" pauses b's items instead of failing them (the failures that opened the
//    circuit, and those before, run again once it closes), a limiter per host keeps each host
//    at 10 request starts in any 100 ms, and the other hosts carry on meanwhile.
interface Job {
  host: string;
  id: number;
}
const hostStates: string[] = [];
const perHostCircuit = new CircuitBreaker({
  threshold: 3,
  cooldown: 150,
  whenOpen: "wait",
  maxWait: 60_000,
  key: (job: Job) => job.host,
  onStateChange: (state, host) => {
    if (host === "b") hostStates.push(state);
  },
});
const starts = new Map<string, number[]>(); // each host's request starts
const perHostRate = new RateLimiter({ limit: 10, interval: 100, key: (job: Job) => job.host });
const fetchHosted = new Stage(
  "fetchHosted",
  (job: Job, _context, call) => {
    starts.set(job.host, [...(starts.get(job.host) ?? []), performance.now()]);
    return getItem(job.id, call.signal, job.host);
  },
  {
    circuitBreaker: perHostCircuit,
    rateLimit: perHostRate,
    retries: 1,
    retryDelay: 20,
    timeout: 2_000,
  },
);
const hostJobs: Job[] = Array.from({ length: 90 }, (_, index) => ({
  host: ["a", "b", "c"][index % 3] as string,
  id: 100 + index,
}));
outage.host = "b";
outage.length = 400;
const outcome = await new Pipeline([fetchHosted]).mapSettled(hostJobs, {
  concurrency: 24,
  perKey: { key: (job) => job.host, concurrency: 8 },
});
const fulfilled = outcome.filter((entry) => entry.status === "fulfilled").length;
console.log("a batch through host b's 400 ms outage (whenOpen wait, per-host breaker and limit):");
console.log(
  `  ${outcome.length} items: ${fulfilled} fulfilled, ${outcome.length - fulfilled} failed`,
);
console.log(
  `  b's circuit opened: ${String(hostStates.includes("open"))}, now ${perHostCircuit.stateOf("b")}`,
);
// Measured where the requests start: no 100 ms holds more than 10 starts for one host. The
// handler reads the clock a moment after the limiter counted its start, and on a busy machine
// that moment can stretch (the process is descheduled in between): the check allows 10 ms for it.
const MEASURING_SLACK = 10;
let busiest = 0;
for (const times of starts.values()) {
  for (let first = 0; first < times.length; first++) {
    let last = first;
    while (
      last + 1 < times.length &&
      (times[last + 1] as number) - (times[first] as number) < 100 - MEASURING_SLACK
    ) {
      last++;
    }
    busiest = Math.max(busiest, last - first + 1);
  }
}
console.log(`  at most 10 request starts to one host in any 100 ms: ${String(busiest <= 10)}`);
console.log(`  requests the server saw for host b: ${String(arrivals.get("b")?.length)}`);

server.closeAllConnections();
await new Promise((resolve) => server.close(resolve));
