import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import {
  Pipeline,
  RateLimiter,
  Stage,
  StageExecutionError,
  TimeoutError,
  type StageCall,
  type StageOptions,
} from "../src/index.js";
import { observe, rejectionOf } from "./support/promises.js";
import { abortListeners } from "./support/signals.js";

beforeEach(() => {
  vi.useFakeTimers();
  vi.setSystemTime(0);
});

afterEach(() => {
  vi.useRealTimers();
});

/** A stage whose handler records when each call starts (ms of fake time) and what it got. */
function recording(options: StageOptions, name = "call") {
  const starts: number[] = [];
  const values: unknown[] = [];
  const stage = new Stage(
    name,
    async (value: unknown) => {
      starts.push(Date.now());
      values.push(value);
      return value;
    },
    options,
  );
  return { stage, starts, values };
}

describe("RateLimiter", () => {
  it("exposes limit, interval and waiting", () => {
    const limiter = new RateLimiter({ limit: 3, interval: 250 });
    expect(limiter.limit).toBe(3);
    expect(limiter.interval).toBe(250);
    expect(limiter.waiting).toBe(0);
  });

  it.each([
    [{ limit: 0, interval: 1 }, RangeError, "limit must be at least 1, got 0"],
    [{ limit: 1.5, interval: 1 }, RangeError, "limit must be an integer, got 1.5"],
    [{ limit: Number.NaN, interval: 1 }, RangeError, "limit must be a number, got NaN"],
    [{ limit: "2", interval: 1 }, TypeError, 'limit must be a number, got "2"'],
    [{ limit: 1, interval: 0 }, RangeError, "interval must be greater than 0, got 0"],
    [{ limit: 1, interval: Infinity }, RangeError, "interval must be a finite number"],
    [{ limit: 1 }, TypeError, "interval must be a number, got undefined"],
  ])("rejects %o at construction", (options, Kind, message) => {
    expect(() => new RateLimiter(options as never)).toThrow(Kind);
    expect(() => new RateLimiter(options as never)).toThrow(message);
  });

  it("rejects an unknown option key, in the limiter and in the stage option", () => {
    expect(() => new RateLimiter({ limit: 1, interval: 1, intervall: 2 } as never)).toThrow(
      new TypeError('unknown option "intervall" (did you mean "interval"?)'),
    );
    expect(
      () =>
        new Stage("s", (value: number) => value, {
          rateLimit: { limit: 1, interval: 1, perSecond: true } as never,
        }),
    ).toThrow(TypeError);
    expect(
      () => new Stage("s", (value: number) => value, { ratelimit: { limit: 1 } } as never),
    ).toThrow('unknown option "ratelimit" (did you mean "rateLimit"?)');
  });

  it("rejects a missing or non-object options argument", () => {
    expect(() => new RateLimiter(undefined as never)).toThrow(TypeError);
    expect(() => new RateLimiter(5 as never)).toThrow("options must be an object, got 5");
  });
});

describe("the rateLimit stage option", () => {
  it.each([
    [5, TypeError, "rateLimit must be a RateLimiter or { limit, interval }, got 5"],
    [null, TypeError, "rateLimit must be a RateLimiter or { limit, interval }, got null"],
    [{ limit: 0, interval: 10 }, RangeError, "rateLimit.limit must be at least 1, got 0"],
    [{ limit: 1, interval: -1 }, RangeError, "rateLimit.interval must be greater than 0, got -1"],
    [{ limit: 2 }, TypeError, "rateLimit.interval must be a number, got undefined"],
  ])("rejects %o at construction, naming the option", (rateLimit, Kind, message) => {
    const make = () => new Stage("s", (value: number) => value, { rateLimit: rateLimit as never });
    expect(make).toThrow(Kind);
    expect(make).toThrow(message);
  });

  it("starts attempts at exactly the times a sliding window allows", async () => {
    const { stage, starts } = recording({ rateLimit: { limit: 2, interval: 1_000 } });
    const results = new Pipeline([stage]).map([1, 2, 3, 4, 5], Infinity);
    await vi.advanceTimersByTimeAsync(5_000);
    await expect(results).resolves.toEqual([1, 2, 3, 4, 5]);
    expect(starts).toEqual([0, 0, 1_000, 1_000, 2_000]);
  });

  it("is a sliding window, not fixed buckets: a start at 900 ms holds a slot until 1900 ms", async () => {
    const { stage, starts } = recording({ rateLimit: { limit: 2, interval: 1_000 } });
    const first = stage.run("a");
    await vi.advanceTimersByTimeAsync(900);
    const second = stage.run("b");
    await vi.advanceTimersByTimeAsync(100);
    // Now 1000 ms: fixed one-second buckets would let both of these start at once.
    const third = stage.run("c");
    const fourth = stage.run("d");
    await vi.advanceTimersByTimeAsync(2_000);
    await Promise.all([first, second, third, fourth]);
    expect(starts).toEqual([0, 900, 1_000, 1_900]);
  });

  it("lets waiting attempts through in the order they asked (FIFO)", async () => {
    const limiter = new RateLimiter({ limit: 1, interval: 100 });
    const { stage, values, starts } = recording({ rateLimit: limiter });
    const runs = ["a", "b", "c", "d", "e"].map((value) => stage.run(value));
    expect(limiter.waiting).toBe(4);
    await vi.advanceTimersByTimeAsync(1_000);
    await Promise.all(runs);
    expect(values).toEqual(["a", "b", "c", "d", "e"]);
    expect(starts).toEqual([0, 100, 200, 300, 400]);
    expect(limiter.waiting).toBe(0);
  });

  it("counts retries: each attempt waits for its own turn", async () => {
    const starts: number[] = [];
    const stage = new Stage(
      "flaky",
      async (_value: number, _context, call) => {
        starts.push(Date.now());
        if (call.attempt < 3) throw new Error(`attempt ${String(call.attempt)} failed`);
        return call.attempt;
      },
      { retries: 2, rateLimit: { limit: 1, interval: 300 } },
    );
    const run = stage.run(0);
    await vi.advanceTimersByTimeAsync(1_000);
    await expect(run).resolves.toBe(3);
    expect(starts).toEqual([0, 300, 600]);
  });

  it("adds the retry delay and the limiter's wait, never less than either", async () => {
    const starts: number[] = [];
    const stage = new Stage(
      "flaky",
      async () => {
        starts.push(Date.now());
        if (starts.length < 3) throw new Error("again");
        return "ok";
      },
      { retries: 2, retryDelay: 50, rateLimit: { limit: 1, interval: 200 } },
    );
    const run = stage.run(0);
    await vi.advanceTimersByTimeAsync(1_000);
    await expect(run).resolves.toBe("ok");
    // Failure at 0, delay to 50, then the window holds the next start until 200.
    expect(starts).toEqual([0, 200, 400]);
  });

  it("is shared by every stage given the same limiter", async () => {
    const limiter = new RateLimiter({ limit: 2, interval: 1_000 });
    const a = recording({ rateLimit: limiter }, "a");
    const b = recording({ rateLimit: limiter }, "b");
    const runs = [a.stage.run(1), b.stage.run(2), a.stage.run(3), b.stage.run(4)];
    await vi.advanceTimersByTimeAsync(2_000);
    await Promise.all(runs);
    expect(a.starts).toEqual([0, 1_000]);
    expect(b.starts).toEqual([0, 1_000]);
  });

  it("is shared by two concurrent batches, and by the stages of two pipelines", async () => {
    const limiter = new RateLimiter({ limit: 3, interval: 1_000 });
    const seen: string[] = [];
    const starts: number[] = [];
    const stage = (name: string) =>
      new Stage(
        name,
        async (value: string) => {
          seen.push(value);
          starts.push(Date.now());
          return value;
        },
        { rateLimit: limiter },
      );
    const one = new Pipeline([stage("one")]);
    const two = new Pipeline([stage("two")]);
    const first = one.map(["a1", "a2", "a3", "a4"], 4);
    const second = two.map(["b1", "b2", "b3", "b4"], 4);
    await vi.advanceTimersByTimeAsync(3_000);
    await expect(first).resolves.toEqual(["a1", "a2", "a3", "a4"]);
    await expect(second).resolves.toEqual(["b1", "b2", "b3", "b4"]);
    expect(starts).toEqual([0, 0, 0, 1_000, 1_000, 1_000, 2_000, 2_000]);
    // The first batch took the free slots; then the waiters in the order they asked.
    expect(seen).toEqual(["a1", "a2", "a3", "a4", "b1", "b2", "b3", "b4"]);
  });

  it("starts the stage's timeout when the attempt starts, not while it waits", async () => {
    const limiter = new RateLimiter({ limit: 1, interval: 1_000 });
    const stage = new Stage(
      "slowish",
      async (value: number) => {
        await new Promise((resolve) => setTimeout(resolve, 400));
        return value;
      },
      { timeout: 500, rateLimit: limiter },
    );
    const first = observe(stage.run(1));
    const second = observe(stage.run(2));
    await vi.advanceTimersByTimeAsync(1_399);
    expect(first.status).toBe("fulfilled");
    expect(second.status).toBe("pending");
    await vi.advanceTimersByTimeAsync(1);
    // Waited 1000 ms for its turn, then ran 400 ms of its 500 ms timeout.
    expect(second.status).toBe("fulfilled");
    expect(second.value).toBe(2);
  });

  it("times out an attempt that started late exactly `timeout` after its start", async () => {
    const stage = new Stage("hang", () => new Promise<never>(() => {}), {
      timeout: 300,
      rateLimit: { limit: 1, interval: 1_000 },
    });
    const first = observe(stage.run(1));
    const second = observe(stage.run(2));
    await vi.advanceTimersByTimeAsync(1_299);
    expect(first.status).toBe("rejected");
    expect(second.status).toBe("pending");
    await vi.advanceTimersByTimeAsync(1);
    expect(second.status).toBe("rejected");
    expect((second.reason as StageExecutionError).originalError).toBeInstanceOf(TimeoutError);
  });

  it("ends a wait at once when the caller's signal aborts, without taking the slot", async () => {
    const limiter = new RateLimiter({ limit: 1, interval: 1_000 });
    const { stage, values, starts } = recording({ rateLimit: limiter });
    await stage.run("first");
    const controller = new AbortController();
    const reason = new Error("user left");
    const cancelled = observe(stage.run("cancelled", { signal: controller.signal }));
    await vi.advanceTimersByTimeAsync(100);
    expect(limiter.waiting).toBe(1);
    expect(abortListeners(controller.signal)).toBe(1);
    controller.abort(reason);
    await vi.advanceTimersByTimeAsync(0);
    expect(cancelled.status).toBe("rejected");
    expect(cancelled.reason).toBe(reason);
    expect(limiter.waiting).toBe(0);
    expect(abortListeners(controller.signal)).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
    // The cancelled attempt never took its slot: the next one starts when the first's expires.
    await vi.advanceTimersByTimeAsync(900);
    const next = stage.run("next");
    await vi.advanceTimersByTimeAsync(0);
    await next;
    expect(values).toEqual(["first", "next"]);
    expect(starts).toEqual([0, 1_000]);
  });

  it("gives back the slot of a waiter whose signal aborts between its grant and its start", async () => {
    const limiter = new RateLimiter({ limit: 2, interval: 100 });
    const controller = new AbortController();
    const reason = new Error("changed my mind");
    const starts: string[] = [];
    const stage = new Stage(
      "call",
      async (value: string) => {
        starts.push(value);
        // The first of the two let through together aborts the second before it starts.
        if (value === "c") controller.abort(reason);
        return value;
      },
      { rateLimit: limiter },
    );
    await Promise.all([stage.run("a"), stage.run("b")]);
    const c = observe(stage.run("c"));
    const d = observe(stage.run("d", { signal: controller.signal }));
    await vi.advanceTimersByTimeAsync(100);
    expect(c.status).toBe("fulfilled");
    expect(d.status).toBe("rejected");
    expect(d.reason).toBe(reason);
    // d's slot was given back: e starts at once.
    const e = observe(stage.run("e"));
    await vi.advanceTimersByTimeAsync(0);
    expect(e.status).toBe("fulfilled");
    expect(starts).toEqual(["a", "b", "c", "e"]);
  });

  it("keeps the others' turns when one waiter in the middle of the queue aborts", async () => {
    const limiter = new RateLimiter({ limit: 1, interval: 100 });
    const { stage, values, starts } = recording({ rateLimit: limiter });
    const controller = new AbortController();
    const a = stage.run("a");
    const b = stage.run("b");
    const c = rejectionOf(stage.run("c", { signal: controller.signal }));
    const d = stage.run("d");
    controller.abort(new Error("not c"));
    await expect(c).resolves.toEqual(new Error("not c"));
    expect(limiter.waiting).toBe(2);
    await vi.advanceTimersByTimeAsync(1_000);
    await Promise.all([a, b, d]);
    expect(values).toEqual(["a", "b", "d"]);
    expect(starts).toEqual([0, 100, 200]);
  });

  it("rejects at once, taking no slot, when the signal is already aborted and it would wait", async () => {
    const limiter = new RateLimiter({ limit: 1, interval: 1_000 });
    const { stage, values } = recording({ rateLimit: limiter });
    await stage.run("first");
    const reason = new Error("gone");
    await expect(stage.run("late", { signal: AbortSignal.abort(reason) })).rejects.toBe(reason);
    expect(limiter.waiting).toBe(0);
    expect(values).toEqual(["first"]);
    expect(vi.getTimerCount()).toBe(0);
  });

  it("cancels a batch whose items wait: rejects with the reason, leaves no timer", async () => {
    const limiter = new RateLimiter({ limit: 2, interval: 1_000 });
    const { stage, starts } = recording({ rateLimit: limiter });
    const controller = new AbortController();
    const batch = observe(
      new Pipeline([stage]).map([1, 2, 3, 4, 5, 6], 6, { signal: controller.signal }),
    );
    await vi.advanceTimersByTimeAsync(1_500);
    expect(starts).toEqual([0, 0, 1_000, 1_000]);
    controller.abort(new Error("stop"));
    await vi.advanceTimersByTimeAsync(0);
    expect(batch.status).toBe("rejected");
    expect(limiter.waiting).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
  });

  it("sets no timer while nothing waits, and leaves none behind after a batch", async () => {
    const limiter = new RateLimiter({ limit: 3, interval: 500 });
    const { stage } = recording({ rateLimit: limiter });
    const pipeline = new Pipeline([stage]);
    await pipeline.map([1, 2, 3], 3);
    expect(vi.getTimerCount()).toBe(0);
    const more = pipeline.map([4, 5, 6, 7, 8], 5);
    await vi.advanceTimersByTimeAsync(0);
    expect(vi.getTimerCount()).toBe(1); // one timer, however many wait
    expect(limiter.waiting).toBe(5);
    await vi.advanceTimersByTimeAsync(1_000);
    await expect(more).resolves.toEqual([4, 5, 6, 7, 8]);
    expect(vi.getTimerCount()).toBe(0);
    expect(limiter.waiting).toBe(0);
  });

  it("runs a synchronous handler synchronously while a slot is free", async () => {
    const stage = new Stage("sync", (value: number) => value * 2, {
      rateLimit: { limit: 1, interval: 1_000 },
    });
    const pipeline = new Pipeline([stage]);
    await expect(pipeline.run(2)).resolves.toBe(4);
    const late = pipeline.run(3);
    await vi.advanceTimersByTimeAsync(1_000);
    await expect(late).resolves.toBe(6);
  });

  it("is not stalled by a wall clock stepped back, nor released early by one stepped forward", async () => {
    const { stage, starts } = recording({ rateLimit: { limit: 1, interval: 100 } });
    const clock: number[] = [];
    const record = (run: Promise<unknown>) =>
      run.then(() => {
        clock.push(performance.now());
      });
    const first = record(stage.run("a"));
    const second = record(stage.run("b"));
    vi.setSystemTime(-3_600_000); // an hour back: Date.now() says the first start is in the future
    await vi.advanceTimersByTimeAsync(100);
    await Promise.all([first, second]);
    const third = observe(stage.run("c"));
    vi.setSystemTime(Date.now() + 7_200_000); // two hours forward
    await vi.advanceTimersByTimeAsync(99);
    expect(third.status).toBe("pending");
    await vi.advanceTimersByTimeAsync(1);
    expect(third.status).toBe("fulfilled");
    expect(clock).toEqual([0, 100]);
    expect(starts).toHaveLength(3);
  });

  it("serves an interval longer than the longest timer without starting early", async () => {
    const interval = 2 ** 31 + 10_000;
    const { stage, starts } = recording({ rateLimit: { limit: 1, interval } });
    void stage.run("a");
    const late = observe(stage.run("b"));
    await vi.advanceTimersByTimeAsync(interval - 1);
    expect(late.status).toBe("pending");
    await vi.advanceTimersByTimeAsync(1);
    expect(late.status).toBe("fulfilled");
    expect(starts).toEqual([0, interval]);
  });
});

describe("cost, call.charge and arrays of limiters, through a stage", () => {
  it("refunds through call.charge: the next attempt uses what was really spent", async () => {
    const tokens = new RateLimiter({
      limit: 10,
      interval: 1_000,
      cost: (text: string) => text.length,
    });
    const starts: [string, number][] = [];
    const stage = new Stage(
      "ask",
      async (text: string, _context, call) => {
        starts.push([text, Date.now()]);
        call.charge(tokens, 2); // estimated at its length, really 2
        return text;
      },
      { rateLimit: tokens },
    );
    await stage.run("12345678"); // takes 8, refunded to 2
    const next = observe(stage.run("12345678")); // 2 + 8 fits in 10: starts at once
    await vi.advanceTimersByTimeAsync(0);
    expect(next.status).toBe("fulfilled");
    expect(starts).toEqual([
      ["12345678", 0],
      ["12345678", 0],
    ]);
  });

  it("makes later attempts wait when call.charge says an attempt cost more", async () => {
    const limiter = new RateLimiter({ limit: 3, interval: 100 });
    const charged = new Stage(
      "big",
      (value: number, _context, call) => {
        call.charge(limiter, 3);
        return value;
      },
      { rateLimit: limiter },
    );
    const { stage, starts } = recording({ rateLimit: limiter });
    expect(await charged.run(1)).toBe(1);
    const later = stage.run("later");
    await vi.advanceTimersByTimeAsync(100);
    await later;
    expect(starts).toEqual([100]);
  });

  it("makes call.charge a TypeError for a stage without that limiter, failing the attempt", async () => {
    const limiter = new RateLimiter({ limit: 1, interval: 100 });
    const other = new RateLimiter({ limit: 1, interval: 100 });
    const charge = (target: RateLimiter) => (value: number, _context: unknown, call: StageCall) => {
      call.charge(target, 1);
      return value;
    };
    const unlimited = new Stage("free", charge(limiter));
    const wrong = new Stage("wrong", charge(other), { rateLimit: limiter });
    for (const stage of [unlimited, wrong]) {
      const error = await rejectionOf(stage.run(1));
      expect(error).toBeInstanceOf(StageExecutionError);
      expect((error as StageExecutionError).originalError).toBeInstanceOf(TypeError);
      expect((error as StageExecutionError).originalError).toHaveProperty(
        "message",
        expect.stringContaining("call.charge: this attempt did not use that limiter"),
      );
    }
  });

  it("starts an attempt once every limiter of an array grants it, counting it in each", async () => {
    const perSecond = new RateLimiter({ limit: 2, interval: 1_000 });
    const perTick = new RateLimiter({ limit: 1, interval: 100 });
    const { stage, starts } = recording({ rateLimit: [perSecond, perTick] });
    const alone = recording({ rateLimit: perTick }, "alone");
    const results = new Pipeline([stage]).map([1, 2, 3], Infinity);
    await vi.advanceTimersByTimeAsync(0);
    // The second waits for perTick, holding no place in perSecond meanwhile. A stage using
    // perTick alone queues behind the third (FIFO in each limiter, no overtaking): the third
    // is at perTick's front from 200 on, but perSecond has no room for it until 1,000.
    expect(perTick.waiting).toBe(2);
    const behind = alone.stage.run("alone");
    await vi.advanceTimersByTimeAsync(2_000);
    await expect(results).resolves.toEqual([1, 2, 3]);
    await behind;
    expect(starts).toEqual([0, 100, 1_000]);
    expect(alone.starts).toEqual([1_100]);
  });

  it("takes an empty array as no limit", async () => {
    const stage = new Stage("free", (value: number) => value, { rateLimit: [] });
    expect(stage.run(1)).toBeInstanceOf(Promise);
    await expect(stage.run(1)).resolves.toBe(1);
    expect(await new Pipeline([stage]).map([1, 2, 3], 3)).toEqual([1, 2, 3]);
  });

  it("rejects an array entry that is not a limiter, or a limiter given twice, naming the index", () => {
    const limiter = new RateLimiter({ limit: 1, interval: 100 });
    const make = (rateLimit: unknown) => () =>
      new Stage("s", (value: number) => value, { rateLimit: rateLimit as never });
    expect(make([limiter, { limit: 1, interval: 1 }])).toThrow(
      new TypeError("rateLimit[1] must be a RateLimiter, got an object"),
    );
    expect(make([limiter, limiter])).toThrow(
      /rateLimit\[1\] is the same limiter as rateLimit\[0\]/,
    );
  });

  it("fails the execution without retrying for a cost above the limit or a key that throws", async () => {
    const tooBig = new RateLimiter({
      limit: 5,
      interval: 100,
      cost: (text: string) => text.length,
    });
    const broken = new RateLimiter({
      limit: 5,
      interval: 100,
      key: (): string => {
        throw new Error("no host");
      },
    });
    const calls: string[] = [];
    for (const [rateLimit, retries] of [
      [tooBig, 0],
      [tooBig, 3],
      [broken, 3],
      [[tooBig, broken], 3],
    ] as const) {
      const stage = new Stage(
        "s",
        async (text: string) => {
          calls.push(text);
          return text;
        },
        { rateLimit, retries, retryDelay: 10 },
      );
      const error = (await rejectionOf(stage.run("far too long"))) as StageExecutionError;
      expect(error).toBeInstanceOf(StageExecutionError);
      expect(error.attempts).toBe(0);
      expect(error.originalError).toBeInstanceOf(Error);
    }
    expect(calls).toEqual([]);
    expect(vi.getTimerCount()).toBe(0);
  });

  it("fails a later attempt refused by its limiter with the attempts made before it", async () => {
    let refuse = false;
    const limiter = new RateLimiter({
      limit: 5,
      interval: 100,
      cost: () => (refuse ? 6 : 1),
    });
    const stage = new Stage(
      "s",
      (value: number) => {
        refuse = true;
        throw new Error(`failed ${String(value)}`);
      },
      { rateLimit: limiter, retries: 3 },
    );
    const error = (await rejectionOf(stage.run(1))) as StageExecutionError;
    expect(error.attempts).toBe(1);
    expect(error.originalError).toBeInstanceOf(RangeError);
  });
});

describe("the rateLimit stage option, in real time", () => {
  it("holds the limit where handlers start while the event loop is blocked (upper bound only)", async () => {
    vi.useRealTimers();
    const limit = 5;
    const interval = 100;
    const busy = (ms: number): void => {
      const until = performance.now() + ms;
      while (performance.now() < until) {
        // Blocks the event loop.
      }
    };
    const run = async (starts: number[]): Promise<void> => {
      const stage = new Stage(
        "busy",
        async (value: number) => {
          starts.push(performance.now());
          // Every third call blocks the event loop for 30 ms: the attempts let through with
          // it start late, together.
          if (value % 3 === 0) busy(30);
          await new Promise((resolve) => setTimeout(resolve, 1));
          return value;
        },
        { rateLimit: { limit, interval } },
      );
      const values = Array.from({ length: 30 }, (_, index) => index);
      await expect(new Pipeline([stage]).map(values, Infinity)).resolves.toEqual(values);
    };
    await run([]); // warm-up: the first calls of each function compile it
    const starts: number[] = [];
    await run(starts);
    starts.sort((a, b) => a - b);
    // No window of `interval` ms holds more than `limit` starts: the start `limit` places later
    // is at least `interval` later, less what may pass between the count and the handler's first
    // statement (a few calls, or a GC pause: 5 ms allowed). Counted when the waiters were let
    // through instead, the starts of one burst spread over 60 ms and the next burst comes on
    // time: gaps of 70 ms.
    for (let index = 0; index + limit < starts.length; index++) {
      const gap = (starts[index + limit] as number) - (starts[index] as number);
      expect(gap, `starts ${String(index)} and ${String(index + limit)}`).toBeGreaterThanOrEqual(
        interval - 5,
      );
    }
  });
});
