import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import {
  Pipeline,
  Stage,
  StageExecutionError,
  parseRetryAfter,
  type RetryEvent,
  type StageOptions,
} from "../src/index.js";
import { observe, rejectionOf } from "./support/promises.js";

/** An error as an HTTP client might throw it, carrying the server's Retry-After. */
class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly retryAfter: string | null,
  ) {
    super(`HTTP ${String(status)}`);
  }
}

/** A stage whose first `failures` attempts throw `errorFor(attempt)`; records start times. */
function failingThenOk(
  failures: number,
  errorFor: (attempt: number) => unknown,
  options: StageOptions,
) {
  const starts: number[] = [];
  const events: RetryEvent[] = [];
  const stage = new Stage(
    "fetch",
    async (_value: number, _context, call) => {
      starts.push(Date.now());
      if (call.attempt <= failures) throw errorFor(call.attempt);
      return `ok after ${String(call.attempt)}`;
    },
    {
      ...options,
      onRetry: (event) => {
        events.push(event);
      },
    },
  );
  return { stage, starts, events };
}

describe("parseRetryAfter", () => {
  const now = Date.UTC(2026, 11, 1, 12, 0, 0);

  it.each([
    ["0", 0],
    ["1", 1_000],
    ["120", 120_000],
    ["  30 ", 30_000],
    ["007", 7_000],
  ])("reads delay-seconds %j as %d ms", (value, ms) => {
    expect(parseRetryAfter(value, now)).toBe(ms);
  });

  it("reads an IMF-fixdate as the time until then", () => {
    expect(parseRetryAfter("Tue, 01 Dec 2026 12:00:30 GMT", now)).toBe(30_000);
    expect(parseRetryAfter(new Date(now + 90_000).toUTCString(), now)).toBe(90_000);
  });

  it("reads the obsolete RFC 850 and asctime date forms", () => {
    expect(parseRetryAfter("Tuesday, 01-Dec-26 12:01:00 GMT", now)).toBe(60_000);
    expect(parseRetryAfter("Tue Dec  1 12:00:05 2026", now)).toBe(5_000);
    // A two-digit year more than 50 years ahead is in the past century.
    expect(parseRetryAfter("Sunday, 06-Nov-94 08:49:37 GMT", now)).toBe(0);
    expect(parseRetryAfter("Sunday, 06-Nov-94 08:49:37 GMT", Date.UTC(1994, 10, 6, 8, 49, 0))).toBe(
      37_000,
    );
    expect(parseRetryAfter("Tue Dec 15 12:00:00 2026", now)).toBe(14 * 86_400_000);
  });

  it("gives 0 for a date in the past", () => {
    expect(parseRetryAfter("Sun, 06 Nov 1994 08:49:37 GMT", now)).toBe(0);
  });

  it("counts from Date.now() by default", () => {
    vi.useFakeTimers();
    try {
      vi.setSystemTime(now);
      expect(parseRetryAfter("Tue, 01 Dec 2026 12:00:10 GMT")).toBe(10_000);
    } finally {
      vi.useRealTimers();
    }
  });

  it("never returns more than 2^31 − 1 ms, nor Infinity, for an absurd header", () => {
    const cap = 2 ** 31 - 1;
    expect(parseRetryAfter("9".repeat(400), now)).toBe(cap);
    expect(Number("9".repeat(400)) * 1_000).toBe(Infinity); // what it used to return
    expect(parseRetryAfter("2147483", now)).toBe(2_147_483_000); // just under the cap: as it is
    expect(parseRetryAfter("2147484", now)).toBe(cap); // just over: the cap
    expect(parseRetryAfter("Fri, 31 Dec 9999 23:59:59 GMT", now)).toBe(cap);
    expect(parseRetryAfter("Friday, 31-Dec-99 23:59:59 GMT", Date.UTC(2060, 0, 1))).toBe(cap);
  });

  it.each([
    [null],
    [undefined],
    [""],
    ["soon"],
    ["-5"],
    ["1.5"],
    ["1e3"],
    ["0x10"],
    ["12 seconds"],
    ["Tue, 01 Dec 2026 12:00:30"], // no GMT
    ["Tue, 32 Dec 2026 12:00:30 GMT"],
    ["2026-12-01T12:00:30Z"], // ISO 8601 is not an HTTP date
    ["Funday, 01-Dec-26 12:01:00 GMT"],
  ])("returns undefined for %j", (value) => {
    expect(parseRetryAfter(value, now)).toBeUndefined();
  });
});

describe("the retryAfter stage option", () => {
  beforeEach(() => {
    vi.useFakeTimers();
    vi.setSystemTime(0);
  });

  afterEach(() => {
    vi.useRealTimers();
  });

  it("replaces the backoff with the wait it returns, and onRetry reports that wait", async () => {
    const { stage, starts, events } = failingThenOk(2, () => new HttpError(429, "3"), {
      retries: 3,
      retryDelay: 10,
      backoff: "exponential",
      retryAfter: (error) => parseRetryAfter((error as HttpError).retryAfter),
    });
    const run = stage.run(0);
    await vi.advanceTimersByTimeAsync(10_000);
    await expect(run).resolves.toBe("ok after 3");
    expect(starts).toEqual([0, 3_000, 6_000]);
    expect(events.map((event) => event.delay)).toEqual([3_000, 3_000]);
    expect(events.map((event) => event.attempt)).toEqual([1, 2]);
  });

  it("is told the failed attempt's error and number", async () => {
    const calls: [unknown, number][] = [];
    const errors = [new Error("one"), new Error("two")];
    const { stage } = failingThenOk(2, (attempt) => errors[attempt - 1], {
      retries: 2,
      retryAfter: (error, attempt) => {
        calls.push([error, attempt]);
        return 1;
      },
    });
    const run = stage.run(0);
    await vi.advanceTimersByTimeAsync(10);
    await run;
    expect(calls).toEqual([
      [errors[0], 1],
      [errors[1], 2],
    ]);
  });

  it("is capped by maxRetryDelay and never jittered", async () => {
    const random = vi.spyOn(Math, "random").mockReturnValue(0);
    try {
      const { stage, starts, events } = failingThenOk(1, () => new HttpError(503, "3600"), {
        retries: 1,
        retryDelay: 100,
        jitter: true,
        maxRetryDelay: 2_000,
        retryAfter: (error) => parseRetryAfter((error as HttpError).retryAfter),
      });
      const run = stage.run(0);
      await vi.advanceTimersByTimeAsync(2_000);
      await expect(run).resolves.toBe("ok after 2");
      expect(starts).toEqual([0, 2_000]);
      expect(events[0]?.delay).toBe(2_000);
    } finally {
      random.mockRestore();
    }
  });

  it("caps Infinity by maxRetryDelay when one is set", async () => {
    const { stage, starts, events } = failingThenOk(2, () => new Error("HTTP 503"), {
      retries: 2,
      maxRetryDelay: 5_000,
      retryAfter: () => Infinity,
    });
    const run = stage.run(0);
    await vi.advanceTimersByTimeAsync(10_000);
    await expect(run).resolves.toBe("ok after 3");
    expect(starts).toEqual([0, 5_000, 10_000]);
    expect(events.map((event) => event.delay)).toEqual([5_000, 5_000]);
  });

  it("passes an absurd Retry-After header through parseRetryAfter and maxRetryDelay as a wait", async () => {
    const { stage, starts } = failingThenOk(1, () => new HttpError(503, "9".repeat(400)), {
      retries: 1,
      maxRetryDelay: 60_000,
      retryAfter: (error) => parseRetryAfter((error as HttpError).retryAfter),
    });
    const run = stage.run(0);
    await vi.advanceTimersByTimeAsync(60_000);
    await expect(run).resolves.toBe("ok after 2");
    expect(starts).toEqual([0, 60_000]);
  });

  it("falls back to the usual backoff when it returns undefined", async () => {
    const { stage, starts, events } = failingThenOk(
      3,
      (attempt) => new HttpError(503, attempt === 2 ? "1" : null),
      {
        retries: 3,
        retryDelay: 100,
        backoff: "exponential",
        retryAfter: (error) => parseRetryAfter((error as HttpError).retryAfter),
      },
    );
    const run = stage.run(0);
    await vi.advanceTimersByTimeAsync(5_000);
    await expect(run).resolves.toBe("ok after 4");
    // Backoff 100, then the header's 1 s, then backoff again (failure 3: 400 ms).
    expect(events.map((event) => event.delay)).toEqual([100, 1_000, 400]);
    expect(starts).toEqual([0, 100, 1_100, 1_500]);
  });

  it("accepts 0: the next attempt starts without a timer", async () => {
    const { stage, starts } = failingThenOk(1, () => new Error("x"), {
      retries: 1,
      retryDelay: 1_000,
      retryAfter: () => 0,
    });
    await expect(stage.run(0)).resolves.toBe("ok after 2");
    expect(starts).toEqual([0, 0]);
    expect(vi.getTimerCount()).toBe(0);
  });

  it("is not consulted when the attempt will not be retried", async () => {
    const retryAfter = vi.fn(() => 1);
    const stage = new Stage(
      "fail",
      (): number => {
        throw new Error("no");
      },
      { retries: 2, shouldRetry: () => false, retryAfter },
    );
    await expect(stage.run(0)).rejects.toBeInstanceOf(StageExecutionError);
    const last = new Stage(
      "fail",
      (): number => {
        throw new Error("no");
      },
      { retries: 1, retryAfter },
    );
    const run = rejectionOf(last.run(0));
    await vi.advanceTimersByTimeAsync(1);
    await expect(run).resolves.toBeInstanceOf(StageExecutionError);
    expect(retryAfter).toHaveBeenCalledTimes(1); // after attempt 1 of `last`, not after its last
  });

  it.each([
    [-1, RangeError, "retryAfter must return a number ≥ 0 or undefined, got -1"],
    [Number.NaN, RangeError, "retryAfter must return a number ≥ 0 or undefined, got NaN"],
    [-Infinity, RangeError, "retryAfter must return a number ≥ 0 or undefined, got -Infinity"],
    [Infinity, RangeError, "retryAfter returned Infinity and there is no maxRetryDelay to cap it"],
    ["3", TypeError, 'retryAfter must return a number of ms or undefined, got "3"'],
    [null, TypeError, "retryAfter must return a number of ms or undefined, got null"],
    [Promise.resolve(5), TypeError, "got an object"],
  ])("fails the stage at once for a bad value %s, never a hang", async (bad, Kind, message) => {
    const attemptError = new Error("HTTP 429");
    const { stage, starts } = failingThenOk(5, () => attemptError, {
      retries: 5,
      retryAfter: () => bad as number,
    });
    const error = await rejectionOf(stage.run(0));
    expect(error).toBeInstanceOf(StageExecutionError);
    const failure = error as StageExecutionError;
    expect(failure.originalError).toBeInstanceOf(Kind);
    expect((failure.originalError as Error).message).toContain(message);
    expect((failure.originalError as Error).cause).toBe(attemptError);
    expect(failure.attempts).toBe(1);
    expect(starts).toEqual([0]);
    expect(vi.getTimerCount()).toBe(0);
  });

  it("fails the stage with a TypeError whose cause is what it threw", async () => {
    const thrown = new Error("header parser broke");
    const { stage } = failingThenOk(5, () => new Error("HTTP 503"), {
      retries: 5,
      retryAfter: () => {
        throw thrown;
      },
    });
    const error = (await rejectionOf(stage.run(0))) as StageExecutionError;
    expect(error.originalError).toBeInstanceOf(TypeError);
    expect((error.originalError as Error).message).toBe("retryAfter threw: header parser broke");
    expect((error.originalError as Error).cause).toBe(thrown);
  });

  it("describes a thrown non-error, even one that cannot be turned into a string", async () => {
    const { stage } = failingThenOk(5, () => new Error("x"), {
      retries: 5,
      retryAfter: () => {
        throw Object.create(null) as never;
      },
    });
    const error = (await rejectionOf(stage.run(0))) as StageExecutionError;
    expect((error.originalError as Error).message).toBe(
      "retryAfter threw: (a value that cannot be described)",
    );
    const other = failingThenOk(5, () => new Error("x"), {
      retries: 5,
      retryAfter: () => {
        throw "plain string" as never;
      },
    });
    const second = (await rejectionOf(other.stage.run(0))) as StageExecutionError;
    expect((second.originalError as Error).message).toBe("retryAfter threw: plain string");
  });

  it("leaves cancellation alone: an abort during the wait it chose rejects with the reason", async () => {
    const controller = new AbortController();
    const { stage, starts } = failingThenOk(1, () => new Error("x"), {
      retries: 1,
      retryAfter: () => 60_000,
    });
    const run = observe(stage.run(0, { signal: controller.signal }));
    await vi.advanceTimersByTimeAsync(1_000);
    const reason = new Error("stop");
    controller.abort(reason);
    await vi.advanceTimersByTimeAsync(0);
    expect(run.status).toBe("rejected");
    expect(run.reason).toBe(reason);
    expect(starts).toEqual([0]);
    expect(vi.getTimerCount()).toBe(0);
  });

  it("works inside a pipeline batch", async () => {
    let calls = 0;
    const stage = new Stage(
      "fetch",
      async (value: number) => {
        calls++;
        if (calls === 1) throw new HttpError(429, "2");
        return value;
      },
      { retries: 1, retryAfter: (error) => parseRetryAfter((error as HttpError).retryAfter) },
    );
    const batch = observe(new Pipeline([stage]).map([1, 2, 3], 1));
    await vi.advanceTimersByTimeAsync(1_999);
    expect(batch.status).toBe("pending");
    await vi.advanceTimersByTimeAsync(1);
    expect(batch.status).toBe("fulfilled");
    expect(batch.value).toEqual([1, 2, 3]);
  });

  it("works in retryMiddleware too, and fails it with the problem for a bad value", async () => {
    const { retryMiddleware } = await import("../src/middlewares/index.js");
    let calls = 0;
    const stage = new Stage("flaky", async (value: number) => {
      calls++;
      if (calls < 3) throw new HttpError(503, "2");
      return value;
    });
    const pipeline = new Pipeline([stage], {
      middlewares: [
        retryMiddleware({
          retries: 2,
          retryDelay: 10,
          retryAfter: (error) =>
            parseRetryAfter(((error as StageExecutionError).originalError as HttpError).retryAfter),
        }),
      ],
    });
    const run = observe(pipeline.run(7));
    await vi.advanceTimersByTimeAsync(3_999);
    expect(run.status).toBe("pending");
    await vi.advanceTimersByTimeAsync(1);
    expect(run.status).toBe("fulfilled");
    const bad = new Pipeline(
      [
        new Stage("down", (): number => {
          throw new Error("down");
        }),
      ],
      { middlewares: [retryMiddleware({ retries: 2, retryAfter: () => -5 })] },
    );
    const error = await rejectionOf(bad.run(1));
    expect(error).toBeInstanceOf(RangeError);
    expect((error as RangeError).cause).toBeInstanceOf(StageExecutionError);
  });

  it("must be a function", () => {
    expect(() => new Stage("s", (value: number) => value, { retryAfter: 5 as never })).toThrow(
      new TypeError("retryAfter must be a function, got 5"),
    );
  });
});
