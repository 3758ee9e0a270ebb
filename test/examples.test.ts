import { execFile } from "node:child_process";
import { readdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";

// Every file in examples/ runs as a user would run it (`npx tsx examples/<name>.ts`; here
// `node --import tsx`, the same loader without npx's start-up), and its output is checked, so
// an example that stops working or stops saying what it claims fails the suite.

const root = fileURLToPath(new URL("..", import.meta.url));
const run = promisify(execFile);

/** What each example must print: lines in this order, others allowed in between. */
const expected: Record<string, (string | RegExp)[]> = {
  "basic-pipeline.ts": [
    "pipeline.run(10) = 22",
    "addOne.run(1) = 2",
    'words in "the quick brown fox" = 4',
    'caught StageExecutionError: Stage "broken" failed: boom at 1',
    "  stageName = broken",
    "  originalError is a RangeError: true",
    "  attempts = 1",
    "new Pipeline([]) throws RangeError: Pipeline requires at least one stage",
  ],
  "adaptive-concurrency.ts": [
    "batch: 2000 items done, 0 failed",
    /^limit found: \d+ \(the service takes 20\)$/,
    /^limit changes told to onChange: [1-9]\d*$/,
    /^onProgress reported limits from \d+ to \d+$/,
    /^429s: \d+\.\d% of \d+ attempts$/,
    "perKey: 2500 requests done",
    /^small host \(takes 5\): limit \d+$/,
    /^large host \(takes 20\): limit \d+$/,
    "the small host's limit is the lower: true",
  ],
  "batch-processing.ts": [
    "map results (input order): 1, 4, 9, 16, 25, 36, 49, 64",
    /^finish order: +3, 2, 1(, \d){5}$/,
    "at most 3 items ran at once (concurrency 3)",
    "item 0: fulfilled with 1",
    'item 1: rejected in stage "parse" (SyntaxError)',
    "item 2: fulfilled with 3",
    /^map rejected: stage "parse" failed with SyntaxError: /,
    "generator: 1000 items, sum of doubles = 1001000",
    "generator: at most 16 items taken ahead of those finished (concurrency 16)",
    "final progress: 4/4 done, 1 failed, 0 in flight",
  ],
  "checkpoint.ts": [
    /^first run: interrupted after \d+ calls$/,
    "recorded: 40 items, complete: false",
    "resumed: 40 restored",
    "second run: 60 calls, 100 prices",
    "only the unrecorded lines ran: true",
    "total: 75000",
    "third run: 0 calls, same results: true",
    "another pipeline: CheckpointMismatchError (stages)",
  ],
  "hooks-and-context.ts": [
    "run(1):",
    "  before addOne: input 1",
    "  after addOne: output 2",
    "  before checkPositive: input 2",
    "  after checkPositive: output 2",
    "  result 2",
    "run(-5):",
    "  before checkPositive: input -4",
    '  after checkPositive: failed (Stage "checkPositive" failed: -4 is not positive)',
    "async hook and throwing hook: result 42, audited double",
    "context run: hello, user #123",
    'context afterwards: {"trail":["login","greet"],"userId":123}',
    "no context given: hi, user #123",
    "map with a context template: acme/1, acme/2, acme/3",
    'template afterwards: {"tenant":"acme"}',
  ],
  "retry-and-timeout.ts": [
    "flaky stage:",
    "  flaky: attempt 1 failed (Error: HTTP 503 (call 1)), next in 20 ms",
    "  flaky: attempt 2 failed (Error: HTTP 503 (call 2)), next in 40 ms",
    "  result: page fetched after 3 calls",
    "slow stage (timeout 50 ms, 1 retry):",
    '  slow: attempt 1 failed (TimeoutError: Stage "slow" timed out after 50 ms), next in 0 ms',
    '  gave up after 2 attempts: Stage "slow" timed out after 50 ms',
    "sometimesSlow stage:",
    "  result: 40",
    "capped exponential backoff waits: 10, 20, 25, 25 ms",
    "shouldRetry: parse failed after 1 attempt (no retry)",
    'cancelled: rejected with "user left" in under 1 s',
    "  a StageExecutionError? false",
  ],
  "middlewares.ts": [
    "order:",
    "  outer → double(21)",
    "  inner → double(21)",
    "  inner ← double = 42",
    "  outer ← double = 42",
    "caching: results 9, 16, 9, 9, 16, computed 2 times",
    "logging:",
    '  [info] stage "parse" started',
    /^ {2}\[info\] stage "parse" succeeded in \d+\.\d ms$/,
    /^ {2}\[error\] stage "parse" failed in \d+\.\d ms: SyntaxError: .* \(attempt 1\)$/,
    "timing:",
    /^ {2}wait: \d+\.\d ms$/,
    /^ {2}compute: \d+\.\d ms$/,
    "retry:",
    "  retryMiddleware: unstable run 1 failed, next in 10 ms",
    "  retryMiddleware: unstable run 2 failed, next in 20 ms",
    "  result 7 after 3 attempts",
    'timeout: TimeoutError: Stage "hang" timed out after 100 ms',
  ],
  "typed-context.ts": [
    "receipt: o-1: 72.00 EUR",
    "audit: acme:validate, acme:price",
    "receipt: o-2: 10.00 USD",
    'failed: StageExecutionError: Stage "validate" failed: order o-3: amount must be positive',
    "class context: hello ada; [req-42] greeting ada",
  ],
  "flow-control.ts": [
    "rate limit (4 starts per 200 ms), concurrency 12:",
    "  started at once: 4, waiting: 8",
    "  attempt 1 failed (Error: HTTP 429), retry in 1000 ms",
    "  fetched 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11",
    "  13 attempts (the retry of item 3 counts too)",
    "  waiting now: 0",
    "circuit breaker (threshold 3, cooldown 300 ms), service down:",
    "  6 items: 3 failed, 3 refused",
    "  requests the server saw: 3",
    "  state: open",
    "  after the cooldown: 30, 31, 32; state closed",
    "  state changes: open → half-open → closed",
    "perKey: 12 items in input order: 40…51",
    "  at most 2 requests per host at once (concurrency 6, perKey 2)",
    "a batch through host b's 400 ms outage (whenOpen wait, per-host breaker and limit):",
    "  90 items: 90 fulfilled, 0 failed",
    "  b's circuit opened: true, now closed",
    "  at most 10 request starts to one host in any 100 ms: true",
    /^ {2}requests the server saw for host b: \d+$/,
  ],
  "opentelemetry.ts": [
    "first run: total 10",
    'second run: Stage "fetchPrice" failed: no price for unknown',
    "checkout [OK]",
    /^ {2}attributes: tenant\.id="acme" pipeline\.name="checkout" async_pipeline\.input\.type="string" async_pipeline\.output\.type="number"$/,
    "  pipeline.stage.parse [OK]",
    "  pipeline.stage.fetchPrice [OK]",
    /^ {4}event async_pipeline\.retry: async_pipeline\.stage\.name="fetchPrice" async_pipeline\.retry\.attempt=1 async_pipeline\.retry\.delay=10 .*"HTTP 503"$/,
    "  pipeline.stage.total [OK]",
    'checkout [ERROR "Stage "fetchPrice" failed: no price for unknown"]',
    "  pipeline.stage.parse [OK]",
    '  pipeline.stage.fetchPrice [ERROR "Stage "fetchPrice" failed: no price for unknown"]',
    /^ {4}event async_pipeline\.retry: .*async_pipeline\.retry\.attempt=2 /,
    /^ {4}event exception: exception\.type="StageExecutionError" /,
    "7 spans",
  ],
};

/** Checks that `lines` contains every expected line, in order. */
function expectLinesInOrder(lines: string[], wanted: (string | RegExp)[]): void {
  let from = 0;
  for (const line of wanted) {
    const index = lines.findIndex(
      (candidate, at) =>
        at >= from && (typeof line === "string" ? candidate === line : line.test(candidate)),
    );
    expect(
      index,
      `expected line ${String(line)} after line ${String(from)}`,
    ).toBeGreaterThanOrEqual(0);
    from = index + 1;
  }
}

describe("examples", () => {
  it("has an expectation for every example", () => {
    const files = readdirSync(new URL("../examples/", import.meta.url)).filter((file) =>
      file.endsWith(".ts"),
    );
    expect(files.sort()).toEqual(Object.keys(expected).sort());
  });

  it.concurrent.for(Object.entries(expected))(
    "%s runs and prints what it says",
    { timeout: 60_000 },
    async ([file, wanted]) => {
      const { stdout, stderr } = await run(
        process.execPath,
        ["--import", "tsx", `examples/${file}`],
        { cwd: root, timeout: 50_000 },
      );
      expect(stderr).toBe("");
      expectLinesInOrder(stdout.split("\n"), wanted);
    },
  );
});
