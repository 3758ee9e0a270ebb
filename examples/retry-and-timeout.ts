/**
 * Retry and timeout: a stage retries failed attempts with fixed or exponential backoff (capped,
 * optionally jittered); a timeout bounds each attempt and aborts `call.signal`; `shouldRetry`
 * skips errors that will not get better; an `AbortSignal` cancels everything, retry waits
 * included.
 *
 * Run: npx tsx examples/retry-and-timeout.ts
 */
import { Stage, StageExecutionError, TimeoutError, type RetryEvent } from "async-pipeline";
import { setTimeout as sleep } from "node:timers/promises";

const logRetry = ({ stageName, attempt, delay, error }: RetryEvent): void => {
  console.log(`  ${stageName}: attempt ${attempt} failed (${String(error)}), next in ${delay} ms`);
};

// 1. A flaky call that fails twice, then succeeds: 3 retries, exponential backoff (20, 40 ms).
let calls = 0;
const flaky = new Stage(
  "flaky",
  async (value: string) => {
    calls++;
    if (calls < 3) throw new Error(`HTTP 503 (call ${calls})`);
    return `${value} fetched`;
  },
  { retries: 3, retryDelay: 20, backoff: "exponential", onRetry: logRetry },
);
console.log("flaky stage:");
console.log(`  result: ${await flaky.run("page")} after ${calls} calls`);

// 2. Every attempt times out. The attempt's `call.signal` aborts with the TimeoutError, so
//    abortable work (fetch, timers, streams) stops too.
const slow = new Stage(
  "slow",
  async (value: number, _context, call) => {
    await sleep(10_000, undefined, { signal: call.signal });
    return value;
  },
  { timeout: 50, retries: 1, onRetry: logRetry },
);
console.log("slow stage (timeout 50 ms, 1 retry):");
try {
  await slow.run(1);
} catch (error) {
  if (error instanceof StageExecutionError && error.originalError instanceof TimeoutError) {
    console.log(`  gave up after ${error.attempts} attempts: ${error.originalError.message}`);
  }
}

// 3. A timeout is retried like any failure: a first attempt that hangs, a second that is fast.
const sometimesSlow = new Stage(
  "sometimesSlow",
  async (value: number, _context, call) => {
    // The first attempt hangs (until its timeout aborts call.signal); the next ones answer at once.
    if (call.attempt === 1) await sleep(10_000, undefined, { signal: call.signal });
    return value * 10;
  },
  { timeout: 50, retries: 2, onRetry: logRetry },
);
console.log("sometimesSlow stage:");
console.log(`  result: ${await sometimesSlow.run(4)}`);

// 4. Backoff with a cap: exponential waits of 10, 20, 40, 80 ms, capped at 25 ms.
const delays: number[] = [];
const capped = new Stage(
  "capped",
  (value: number): number => {
    throw new Error(`${value} always fails`);
  },
  {
    retries: 4,
    retryDelay: 10,
    backoff: "exponential",
    maxRetryDelay: 25,
    onRetry: ({ delay }) => {
      delays.push(delay);
    },
  },
);
await capped.run(1).catch(() => undefined);
console.log(`capped exponential backoff waits: ${delays.join(", ")} ms`);
// `jitter: true` would draw each wait uniformly from [0, that delay] ("full jitter").

// 5. shouldRetry: a bad payload will not get better, so do not retry it.
let parses = 0;
const parse = new Stage(
  "parse",
  (text: string) => {
    parses++;
    return JSON.parse(text) as unknown;
  },
  { retries: 5, shouldRetry: (error) => !(error instanceof SyntaxError) },
);
try {
  await parse.run("{ not json");
} catch (error) {
  if (error instanceof StageExecutionError) {
    console.log(`shouldRetry: ${error.stageName} failed after ${parses} attempt (no retry)`);
  }
}

// 6. Cancellation is not failure: the run rejects with the signal's reason itself, at once,
//    even in the middle of a 10 s retry wait.
const patient = new Stage(
  "patient",
  (value: number): number => {
    throw new Error(`${value}: service down`);
  },
  { retries: 10, retryDelay: 10_000 },
);
const controller = new AbortController();
setTimeout(() => {
  controller.abort(new Error("user left"));
}, 50);
const started = performance.now();
try {
  await patient.run(1, { signal: controller.signal });
} catch (error) {
  const waited = performance.now() - started < 1_000 ? "under 1 s" : "too long";
  console.log(`cancelled: rejected with "${(error as Error).message}" in ${waited}`);
  console.log(`  a StageExecutionError? ${error instanceof StageExecutionError}`);
}
