/**
 * The runtime smoke suite: the same checks of the built ESM package in Node, Bun, Deno and a
 * browser. Plain JavaScript that uses only what every one of them has (no `node:` module, no
 * `process`, no `Buffer`): the host imports `dist/index.js` and `dist/middlewares.js` its own
 * way and passes both modules to `runSmoke`.
 *
 * Real timers, with margins wide enough for a loaded machine; no check depends on the order in
 * which two timers fire.
 */

/** How long one check may take before it counts as hung. */
const CHECK_LIMIT_MS = 20_000;

/** Throws `message` unless `condition` holds. */
export function check(condition, message) {
  if (!condition) throw new Error(message);
}

/** Throws unless `actual` and `expected` have the same JSON form. */
export function same(actual, expected, what) {
  const got = JSON.stringify(actual);
  const want = JSON.stringify(expected);
  check(got === want, `${what}: expected ${want}, got ${got}`);
}

/** What `promise` rejects with; throws when it fulfils. */
async function rejection(promise, what) {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error(`${what}: expected a rejection, but it fulfilled`);
}

/** A promise that resolves after `ms`, or rejects with the signal's reason when it aborts. */
function sleep(ms, signal) {
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/** The checks, by name: each takes `{ core, middlewares }` and throws on a failed check. */
const checks = {
  async "run: stages in order, sync and async"({ core }) {
    const { Pipeline, Stage } = core;
    const pipeline = new Pipeline([
      new Stage("double", (n) => n * 2),
      new Stage("describe", async (n) => `value ${n}`),
    ]);
    same(await pipeline.run(21), "value 42", "run(21)");
  },

  async "run: hooks and a shared context"({ core }) {
    const { Pipeline, Stage } = core;
    const seen = [];
    const pipeline = new Pipeline(
      [
        new Stage("remember", (n, context) => {
          context.first = n;
          return n + 1;
        }),
        new Stage("recall", (n, context) => context.first + n),
      ],
      {
        beforeStage: (stageName) => seen.push(`before ${stageName}`),
        afterStage: (stageName, _input, output) => seen.push(`after ${stageName} ${output}`),
      },
    );
    const context = {};
    same(await pipeline.run(1, { context }), 3, "run(1)");
    same(context, { first: 1 }, "context");
    same(
      seen,
      ["before remember", "after remember 2", "before recall", "after recall 3"],
      "hook calls",
    );
  },

  async "map: results in input order, concurrency bounded"({ core }) {
    const { Pipeline, Stage } = core;
    let running = 0;
    let most = 0;
    const pipeline = new Pipeline([
      new Stage("square", async (n) => {
        running += 1;
        most = Math.max(most, running);
        // Later items finish sooner, so the results come back out of order.
        await sleep((10 - n) * 3);
        running -= 1;
        return n * n;
      }),
    ]);
    const items = [1, 2, 3, 4, 5, 6, 7, 8, 9];
    same(await pipeline.map(items, 3), [1, 4, 9, 16, 25, 36, 49, 64, 81], "map");
    check(most >= 1 && most <= 3, `at most 3 items at once, saw ${most}`);
  },

  async "map: fails fast with the item's StageExecutionError"({ core }) {
    const { Pipeline, Stage, StageExecutionError } = core;
    const pipeline = new Pipeline([
      new Stage("odd only", (n) => {
        if (n % 2 === 0) throw new RangeError(`even: ${n}`);
        return n;
      }),
    ]);
    const error = await rejection(pipeline.map([1, 3, 4, 5], 1), "map");
    check(error instanceof StageExecutionError, `a StageExecutionError, got ${error}`);
    same(error.stageName, "odd only", "stageName");
    check(error.originalError instanceof RangeError, "originalError is the RangeError");
  },

  async "map: onProgress, on the next turn of the event loop wherever that is"({ core }) {
    // The one place the core asks what its runtime has: setImmediate where it exists (Node,
    // Bun, Deno), else setTimeout (a browser).
    const { Pipeline, Stage } = core;
    const reports = [];
    const pipeline = new Pipeline([
      new Stage("check", async (n) => {
        await sleep(n);
        if (n === 3) throw new Error("three");
        return n;
      }),
    ]);
    const settled = await pipeline.mapSettled([1, 2, 3, 4, 5], {
      concurrency: 2,
      onProgress: (progress) => reports.push(progress),
    });
    same(settled.length, 5, "settled entries");
    check(reports.length >= 1, "at least one report");
    check(Object.isFrozen(reports[0]), "a frozen report");
    const last = reports.at(-1);
    same([last.done, last.failed, last.inFlight, last.total], [5, 1, 0, 5], "the last report");
  },

  async "mapSettled: every outcome, in input order"({ core }) {
    const { Pipeline, Stage, StageExecutionError } = core;
    const pipeline = new Pipeline([
      new Stage("parse", (text) => {
        const value = JSON.parse(text);
        return value.n;
      }),
    ]);
    const settled = await pipeline.mapSettled(['{"n":1}', "not json", '{"n":3}'], 2);
    same(
      settled.map((result) => result.status),
      ["fulfilled", "rejected", "fulfilled"],
      "statuses",
    );
    same([settled[0].value, settled[2].value], [1, 3], "values");
    const reason = settled[1].reason;
    check(reason instanceof StageExecutionError, `a StageExecutionError, got ${reason}`);
    check(reason.originalError instanceof SyntaxError, "originalError is the SyntaxError");
  },

  async "stream: an async iterable in, results out in order"({ core }) {
    const { Pipeline, Stage } = core;
    async function* numbers() {
      for (let n = 1; n <= 6; n++) {
        await sleep(1);
        yield n;
      }
    }
    const pipeline = new Pipeline([
      new Stage("triple", async (n) => {
        await sleep((7 - n) * 2);
        return n * 3;
      }),
    ]);
    const out = [];
    for await (const value of pipeline.stream(numbers(), { concurrency: 3 })) out.push(value);
    same(out, [3, 6, 9, 12, 15, 18], "ordered stream");

    const unordered = [];
    for await (const value of pipeline.stream([1, 2, 3, 4], { concurrency: 2, ordered: false })) {
      unordered.push(value);
    }
    same(
      unordered.sort((a, b) => a - b),
      [3, 6, 9, 12],
      "unordered stream (sorted)",
    );
  },

  async "stream: settled results and leaving early"({ core }) {
    const { Pipeline, Stage, StageExecutionError } = core;
    const pipeline = new Pipeline([
      new Stage("positive", (n) => {
        if (n < 0) throw new Error("negative");
        return n;
      }),
    ]);
    const settled = [];
    for await (const result of pipeline.stream([1, -1, 2], { settled: true })) {
      settled.push(result);
    }
    same(
      settled.map((result) => result.status),
      ["fulfilled", "rejected", "fulfilled"],
      "statuses",
    );
    check(settled[1].reason instanceof StageExecutionError, "the rejected reason");

    let taken = 0;
    function* forever() {
      for (let n = 0; ; n++) {
        taken += 1;
        yield n;
      }
    }
    const first = [];
    for await (const value of pipeline.stream(forever(), { concurrency: 2, buffer: 0 })) {
      first.push(value);
      if (first.length === 3) break;
    }
    same(first, [0, 1, 2], "first three");
    check(taken <= 6, `the input stops being read after the break, took ${taken}`);
  },

  async "timeouts: TimeoutError inside StageExecutionError, call.signal aborted"({ core }) {
    const { Stage, StageExecutionError, TimeoutError, PipelineError } = core;
    let aborted;
    const slow = new Stage(
      "slow",
      (_value, _context, call) =>
        new Promise((resolve) => {
          call.signal.addEventListener("abort", () => {
            aborted = call.signal.reason;
            resolve("too late");
          });
        }),
      { timeout: 50 },
    );
    const error = await rejection(slow.run(1), "slow.run");
    check(error instanceof StageExecutionError, `a StageExecutionError, got ${error}`);
    const timeout = error.originalError;
    check(timeout instanceof TimeoutError, `originalError is a TimeoutError, got ${timeout}`);
    check(timeout instanceof PipelineError && timeout instanceof Error, "TimeoutError's bases");
    same(
      [timeout.name, timeout.timeout, timeout.stageName],
      ["TimeoutError", 50, "slow"],
      "fields",
    );
    check(aborted === timeout, "call.signal aborted with the TimeoutError");

    const fast = new Stage("fast", async (n) => n + 1, { timeout: 10_000 });
    same(await fast.run(1), 2, "a stage that finishes within its timeout");
  },

  async "retries: attempts counted, backoff waits, last error kept"({ core }) {
    const { Stage, StageExecutionError } = core;
    const attempts = [];
    const flaky = new Stage(
      "flaky",
      (n, _context, call) => {
        attempts.push(call.attempt);
        if (call.attempt < 3) throw new Error(`attempt ${call.attempt} failed`);
        return n * 10;
      },
      { retries: 3, retryDelay: 5, backoff: "exponential" },
    );
    same(await flaky.run(4), 40, "flaky.run(4)");
    same(attempts, [1, 2, 3], "attempts");

    const retried = [];
    const broken = new Stage(
      "broken",
      (_value, _context, call) => {
        throw new TypeError(`no ${call.attempt}`);
      },
      { retries: 2, onRetry: ({ attempt }) => retried.push(attempt) },
    );
    const error = await rejection(broken.run(1), "broken.run");
    check(error instanceof StageExecutionError, `a StageExecutionError, got ${error}`);
    same([error.attempts, error.originalError.message], [3, "no 3"], "attempts and last error");
    same(retried, [1, 2], "onRetry calls");
  },

  async "abort: the caller's reason, not wrapped; no further attempt"({ core }) {
    const { Pipeline, Stage, StageExecutionError } = core;
    let calls = 0;
    let started;
    const handlerStarted = new Promise((resolve) => (started = resolve));
    const pipeline = new Pipeline([
      new Stage(
        "wait",
        (_value, _context, call) => {
          calls += 1;
          started();
          return sleep(60_000, call.signal);
        },
        { retries: 5 },
      ),
    ]);
    const controller = new AbortController();
    const reason = new Error("stop now");
    const run = pipeline.run(1, { signal: controller.signal });
    await handlerStarted;
    controller.abort(reason);
    const error = await rejection(run, "aborted run");
    check(error === reason, `rejects with the abort reason itself, got ${error}`);
    check(!(error instanceof StageExecutionError), "not wrapped");
    same(calls, 1, "handler calls");

    const already = AbortSignal.abort(new Error("before the start"));
    const early = await rejection(pipeline.map([1, 2, 3], { signal: already }), "map");
    same(early.message, "before the start", "a signal aborted before map");
    same(calls, 1, "nothing started");
  },

  async "abort: a batch stops and its items' signals abort"({ core }) {
    const { Pipeline, Stage } = core;
    const controller = new AbortController();
    const started = [];
    const aborted = [];
    let allStarted;
    let allAborted;
    const ready = new Promise((resolve) => (allStarted = resolve));
    const done = new Promise((resolve) => (allAborted = resolve));
    const pipeline = new Pipeline([
      new Stage("hang", async (value, _context, call) => {
        started.push(value);
        if (started.length === 2) allStarted();
        try {
          await sleep(60_000, call.signal);
        } finally {
          if (call.signal.aborted) aborted.push(value);
          if (aborted.length === 2) allAborted();
        }
      }),
    ]);
    const batch = pipeline.mapSettled([1, 2, 3, 4], 2, { signal: controller.signal });
    await ready;
    controller.abort("enough");
    same(await rejection(batch, "mapSettled"), "enough", "the batch's rejection");
    await done;
    same(started.sort(), [1, 2], "started items");
    same(aborted.sort(), [1, 2], "aborted items");
  },

  async "errors: instanceof and names across entry points"({ core, middlewares }) {
    const { Pipeline, Stage, PipelineError, StageExecutionError, TimeoutError } = core;
    const stageError = new StageExecutionError("s", new Error("inner"), 1);
    check(stageError instanceof PipelineError && stageError instanceof Error, "bases");
    same(
      [stageError.name, stageError.stageName, stageError.attempts, stageError.cause.message],
      ["StageExecutionError", "s", 1, "inner"],
      "StageExecutionError fields",
    );
    check(!(new Error("plain") instanceof PipelineError), "a plain Error is no PipelineError");
    check(!(new TimeoutError("x", 1) instanceof StageExecutionError), "siblings stay apart");

    // A TimeoutError built by the middlewares entry point is the core's TimeoutError.
    const pipeline = new Pipeline(
      [new Stage("hang", (_v, _c, call) => sleep(60_000, call.signal))],
      {
        middlewares: [middlewares.timeoutMiddleware({ timeout: 30 })],
      },
    );
    const error = await rejection(pipeline.run(1), "run with timeoutMiddleware");
    check(error instanceof TimeoutError, `a TimeoutError, got ${error}`);
    check(error instanceof PipelineError, "a PipelineError");
    same(error.timeout, 30, "timeout");
  },

  async "middlewares: logging, timing and retry"({ core, middlewares }) {
    const { Pipeline, Stage, StageExecutionError } = core;
    const { loggingMiddleware, timingMiddleware, retryMiddleware } = middlewares;
    const lines = [];
    const logger = {
      info: (message) => lines.push(`info ${message}`),
      error: (message) => lines.push(`error ${message}`),
    };
    let calls = 0;
    const pipeline = new Pipeline(
      [
        new Stage("add", (n) => n + 1),
        new Stage("flaky", (n) => {
          calls += 1;
          if (calls === 1) throw new Error("once");
          return n * 2;
        }),
      ],
      {
        middlewares: [
          timingMiddleware(),
          loggingMiddleware({ logger }),
          retryMiddleware({ retries: 1, retryDelay: 5 }),
        ],
      },
    );
    const context = {};
    same(await pipeline.run(1, { context }), 4, "run(1)");
    same(Object.keys(context.timings), ["add", "flaky"], "timed stages");
    check(
      context.timings.flaky.length === 1 && context.timings.flaky[0] >= 0,
      "one duration for flaky",
    );
    same(
      lines.map((line) => line.replace(/ in [\d.]+ ms.*/, "")),
      [
        'info stage "add" started',
        'info stage "add" succeeded',
        'info stage "flaky" started',
        'info stage "flaky" succeeded',
      ],
      "log lines",
    );

    const failing = new Pipeline([new Stage("fail", () => Promise.reject(new Error("no")))], {
      middlewares: [loggingMiddleware({ logger })],
    });
    check((await rejection(failing.run(0), "failing")) instanceof StageExecutionError, "error");
    check(lines.at(-1).startsWith('error stage "fail" failed in '), "the failure line");
  },
};

/** The names of every check, in the order `runSmoke` runs them. */
export const checkNames = Object.keys(checks);

/** Rejects after `ms` unless `promise` settles first; clears its timer either way. */
async function withinLimit(promise, ms) {
  let timer;
  const limit = new Promise((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`did not finish within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, limit]);
  } finally {
    clearTimeout(timer);
  }
}

/** Why a check failed, as text: its message and stack. */
function describe(error) {
  if (error instanceof Error) return `${error.message}\n${error.stack ?? ""}`;
  return String(error);
}

/**
 * Runs every check of `suite` (name → check), one after another, each given `argument` and
 * at most `CHECK_LIMIT_MS`. Resolves to one `{ name, ok, error? }` per check; never rejects.
 * The checkpoint suite (checkpoint.js) runs its checks through it too.
 */
export async function runChecks(suite, argument) {
  const results = [];
  for (const [name, run] of Object.entries(suite)) {
    try {
      await withinLimit(
        Promise.resolve().then(() => run(argument)),
        CHECK_LIMIT_MS,
      );
      results.push({ name, ok: true });
    } catch (error) {
      results.push({ name, ok: false, error: describe(error) });
    }
  }
  return results;
}

/**
 * Runs every check, one after another, against the two modules of the build.
 * Resolves to one `{ name, ok, error? }` per check; never rejects.
 */
export function runSmoke(core, middlewares) {
  return runChecks(checks, { core, middlewares });
}
