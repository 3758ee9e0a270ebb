/**
 * The rate limiter's rules, tested on the class through the gate the stage's execution calls
 * (`src/internal/gates.ts`), with fake timers: vitest's drive `performance.now()`, the
 * limiter's clock, while `vi.setSystemTime` moves only `Date.now()` (a wall-clock step).
 */
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { RateLimiter } from "../src/index.js";
import { admitAttempt, type AttemptGate, type AttemptGrant } from "../src/internal/gates.js";
import { isThenable } from "../src/internal/thenable.js";
import { busiestWindow } from "./support/windows.js";
import { keyCount } from "../src/flow/rate-limiter.js";
import { SWEEP_FLOOR } from "../src/flow/keyed.js";
import { attemptGateOption } from "../src/flow/limiter-set.js";

beforeEach(() => {
  vi.useFakeTimers();
  vi.setSystemTime(0);
});

afterEach(() => {
  vi.useRealTimers();
});

/** One attempt asking a gate for its turn: when it was granted and started, and its receipt. */
interface Ask {
  grant: AttemptGrant | undefined;
  grantedAt: number | undefined;
  startedAt: number | undefined;
  receipt: unknown;
  error: unknown;
  /** Whether the grant came at once, without a promise. */
  readonly immediate: boolean;
}

interface AskOptions {
  value?: unknown;
  context?: unknown;
  signal?: AbortSignal;
  /** Start the attempt this many ms after the grant (a lagging event loop); `false`: never. */
  lag?: number | false;
}

/** Asks `gate` for a turn, and starts the attempt when granted (after `lag`, by default at once). */
function ask(gate: AttemptGate, options: AskOptions = {}): Ask {
  const { lag = 0 } = options;
  const answer = gate[admitAttempt](options.value, options.context, options.signal);
  const record: Ask = {
    grant: undefined,
    grantedAt: undefined,
    startedAt: undefined,
    receipt: undefined,
    error: undefined,
    immediate: !isThenable(answer),
  };
  const granted = (grant: AttemptGrant): void => {
    record.grant = grant;
    record.grantedAt = performance.now();
    if (lag === false) return;
    const start = (): void => {
      record.startedAt = performance.now();
      record.receipt = grant.start();
    };
    if (lag === 0) start();
    else setTimeout(start, lag);
  };
  if (isThenable(answer)) {
    answer.then(granted, (error: unknown) => {
      record.error = error;
    });
  } else {
    granted(answer);
  }
  return record;
}

const startTimes = (asks: readonly Ask[]): (number | undefined)[] =>
  asks.map((entry) => entry.startedAt);

describe("RateLimiter: the sliding window, counted at the start", () => {
  it("grants at once, without a promise, while the window has room", () => {
    const limiter = new RateLimiter({ limit: 2, interval: 1_000 });
    const first = ask(limiter);
    const second = ask(limiter);
    const third = ask(limiter);
    expect([first.immediate, second.immediate, third.immediate]).toEqual([true, true, false]);
    // The grant of a plain limiter is shared: it holds no state of one attempt.
    expect(first.grant).toBe(second.grant);
    expect(limiter.waiting).toBe(1);
  });

  it("lets attempts start at exactly the times a sliding window allows", async () => {
    const limiter = new RateLimiter({ limit: 2, interval: 1_000 });
    const asks = Array.from({ length: 5 }, () => ask(limiter));
    await vi.advanceTimersByTimeAsync(5_000);
    expect(startTimes(asks)).toEqual([0, 0, 1_000, 1_000, 2_000]);
    expect(limiter.waiting).toBe(0);
  });

  it("counts an attempt from its start, not from its grant", async () => {
    const limiter = new RateLimiter({ limit: 1, interval: 100 });
    const late = ask(limiter, { lag: 70 }); // granted at 0, starts at 70
    const next = ask(limiter);
    await vi.advanceTimersByTimeAsync(100);
    // A window counted from the grant would have let `next` start at 100.
    expect(next.startedAt).toBeUndefined();
    await vi.advanceTimersByTimeAsync(70);
    expect([late.grantedAt, late.startedAt]).toEqual([0, 70]);
    expect(next.startedAt).toBe(170);
  });

  it("holds a granted attempt's place until it starts: a reservation is taken", async () => {
    const limiter = new RateLimiter({ limit: 1, interval: 100 });
    const reserved = ask(limiter, { lag: false });
    const next = ask(limiter);
    await vi.advanceTimersByTimeAsync(1_000);
    // The window is empty, but the grant not started yet holds the only place.
    expect(next.grantedAt).toBeUndefined();
    expect(vi.getTimerCount()).toBe(0); // nothing a timer could change: the start will tell
    reserved.grant?.start();
    await vi.advanceTimersByTimeAsync(0);
    expect(next.grantedAt).toBeUndefined(); // stamped at 1000: next goes at 1100
    await vi.advanceTimersByTimeAsync(100);
    expect(next.startedAt).toBe(1_100);
  });

  it("gives a released grant's place to the next waiter at once", async () => {
    const limiter = new RateLimiter({ limit: 1, interval: 1_000 });
    const dropped = ask(limiter, { lag: false });
    const next = ask(limiter);
    await vi.advanceTimersByTimeAsync(10);
    dropped.grant?.release();
    await vi.advanceTimersByTimeAsync(0);
    expect(next.startedAt).toBe(10);
    expect(limiter.waiting).toBe(0);
  });

  it("keeps a burst of waiters released together but started late within the limit", async () => {
    // Attempts granted at a timer's tick that start up to 90 ms late (a busy event loop):
    // measured where they start, no window of 100 ms holds more than 3.
    const limiter = new RateLimiter({ limit: 3, interval: 100 });
    const asks = Array.from({ length: 12 }, (_, index) =>
      ask(limiter, { lag: index % 3 === 0 ? 90 : 1 }),
    );
    await vi.advanceTimersByTimeAsync(2_000);
    const starts = asks.map((entry) => ({ at: entry.startedAt as number, cost: 1 }));
    expect(starts.every((start) => start.at !== undefined)).toBe(true);
    expect(busiestWindow(starts, 100)).toBe(3);
  });

  it("remembers as many starts as the window holds, however many", async () => {
    const limiter = new RateLimiter({ limit: 30, interval: 100, cost: (n: number) => n });
    const early = Array.from({ length: 5 }, () => ask(limiter, { value: 1 }));
    await vi.advanceTimersByTimeAsync(100);
    // 5 entries gone; 30 more, in a ring that has to grow while its oldest is mid-way.
    const later = Array.from({ length: 30 }, () => ask(limiter, { value: 1 }));
    const waiting = ask(limiter, { value: 2 });
    expect(startTimes([...early, ...later])).toEqual([
      ...Array<number>(5).fill(0),
      ...Array<number>(30).fill(100),
    ]);
    const [first, second] = later as [Ask, Ask];
    first.grant?.charge(first.receipt, limiter, 0);
    await vi.advanceTimersByTimeAsync(0);
    expect(waiting.startedAt).toBeUndefined(); // 1 free, 2 asked
    second.grant?.charge(second.receipt, limiter, 0);
    await vi.advanceTimersByTimeAsync(0);
    expect(waiting.startedAt).toBe(100);
  });

  it("is FIFO: waiters go in the order they asked", async () => {
    const limiter = new RateLimiter({ limit: 1, interval: 100 });
    const order: string[] = [];
    const asks = ["a", "b", "c", "d"].map((name) => {
      const entry = ask(limiter);
      void Promise.resolve().then(() => order.push(name));
      return entry;
    });
    await vi.advanceTimersByTimeAsync(1_000);
    expect(startTimes(asks)).toEqual([0, 100, 200, 300]);
  });

  it("rejects a waiter with its signal's reason and takes nothing; the others keep their turns", async () => {
    const limiter = new RateLimiter({ limit: 1, interval: 100 });
    const controller = new AbortController();
    const reason = new Error("user left");
    const first = ask(limiter);
    const cancelled = ask(limiter, { signal: controller.signal });
    const third = ask(limiter);
    expect(limiter.waiting).toBe(2);
    controller.abort(reason);
    await vi.advanceTimersByTimeAsync(0);
    expect(cancelled.error).toBe(reason);
    expect(limiter.waiting).toBe(1);
    await vi.advanceTimersByTimeAsync(200);
    expect(startTimes([first, cancelled, third])).toEqual([0, undefined, 100]);
  });

  it("rejects at once when the signal has aborted and the attempt would wait", async () => {
    const limiter = new RateLimiter({ limit: 1, interval: 100 });
    ask(limiter);
    const reason = new Error("gone");
    const late = ask(limiter, { signal: AbortSignal.abort(reason) });
    await vi.advanceTimersByTimeAsync(0);
    expect(late.error).toBe(reason);
    expect(limiter.waiting).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
  });

  it("sets no timer while nothing waits, one while attempts wait, none once they are gone", async () => {
    const limiter = new RateLimiter({ limit: 2, interval: 500 });
    ask(limiter);
    ask(limiter);
    expect(vi.getTimerCount()).toBe(0);
    const waiting = Array.from({ length: 4 }, () => ask(limiter));
    expect(vi.getTimerCount()).toBe(1);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(startTimes(waiting)).toEqual([500, 500, 1_000, 1_000]);
    expect(vi.getTimerCount()).toBe(0);
    const controller = new AbortController();
    const aborted = ask(limiter, { signal: controller.signal });
    expect(vi.getTimerCount()).toBe(1);
    controller.abort(new Error("stop"));
    await vi.advanceTimersByTimeAsync(0);
    expect(aborted.error).toEqual(new Error("stop"));
    expect(vi.getTimerCount()).toBe(0);
  });

  it("is not stalled by a wall clock stepped back an hour, nor released early by one stepped forward", async () => {
    const limiter = new RateLimiter({ limit: 1, interval: 100 });
    ask(limiter);
    const second = ask(limiter);
    vi.setSystemTime(Date.now() - 3_600_000); // NTP, a restored VM: Date.now() goes back
    await vi.advanceTimersByTimeAsync(100);
    expect(second.startedAt).toBe(100);
    const third = ask(limiter);
    vi.setSystemTime(Date.now() + 3_600_000); // and forward
    await vi.advanceTimersByTimeAsync(99);
    expect(third.startedAt).toBeUndefined();
    await vi.advanceTimersByTimeAsync(1);
    expect(third.startedAt).toBe(200);
  });

  it("sets its timer again, rather than letting an attempt start early, when it fires early", async () => {
    const limiter = new RateLimiter({ limit: 1, interval: 100 });
    ask(limiter);
    const second = ask(limiter);
    // From now on the clock reads 5 ms behind the timers, as a real one may when a timer fires.
    const timerTime = performance.now.bind(performance);
    const now = vi.spyOn(performance, "now").mockImplementation(() => timerTime() - 5);
    try {
      await vi.advanceTimersByTimeAsync(104);
      expect(second.startedAt).toBeUndefined(); // the clock said 95 when the timer fired
      await vi.advanceTimersByTimeAsync(1);
      expect(second.startedAt).toBe(100); // the clock says 100: the window has passed
    } finally {
      now.mockRestore();
    }
  });
});

describe("RateLimiter: cost", () => {
  it("counts each attempt's cost against the limit", async () => {
    const limiter = new RateLimiter({ limit: 10, interval: 1_000, cost: (n: number) => n });
    const asks = [6, 4, 3, 7, 1].map((value) => ask(limiter, { value }));
    await vi.advanceTimersByTimeAsync(3_000);
    // 6 + 4 fill the window; 3 + 7 the next; 1 the one after (3 + 7 + 1 > 10).
    expect(startTimes(asks)).toEqual([0, 0, 1_000, 1_000, 2_000]);
  });

  it("does not let a small request overtake a large one that waits", async () => {
    const limiter = new RateLimiter({ limit: 10, interval: 1_000, cost: (n: number) => n });
    const large = ask(limiter, { value: 8 });
    const larger = ask(limiter, { value: 9 });
    const small = ask(limiter, { value: 1 }); // would fit now (8 + 1), but 9 asked first
    await vi.advanceTimersByTimeAsync(0);
    expect(small.startedAt).toBeUndefined();
    await vi.advanceTimersByTimeAsync(1_000);
    expect(startTimes([large, larger, small])).toEqual([0, 1_000, 1_000]);
  });

  it("sets the timer earlier when the front waiter leaves and the next one needs less", async () => {
    const limiter = new RateLimiter({ limit: 10, interval: 100, cost: (n: number) => n });
    ask(limiter, { value: 5 }); // at 0
    await vi.advanceTimersByTimeAsync(50);
    ask(limiter, { value: 5 }); // at 50: the window is full until 100, and half full until 150
    const controller = new AbortController();
    const large = ask(limiter, { value: 10, signal: controller.signal }); // due at 150
    const small = ask(limiter, { value: 5 }); // behind it
    await vi.advanceTimersByTimeAsync(10);
    controller.abort(new Error("gave up"));
    await vi.advanceTimersByTimeAsync(40);
    expect(large.error).toEqual(new Error("gave up"));
    expect(small.startedAt).toBe(100);
    expect(vi.getTimerCount()).toBe(0);
  });

  it("passes the value and the context to cost, and accepts fractions and 0", async () => {
    const seen: unknown[] = [];
    const limiter = new RateLimiter({
      limit: 1,
      interval: 100,
      cost: (value: number, context: { weight: number }) => {
        seen.push([value, context.weight]);
        return value * context.weight;
      },
    });
    const context = { weight: 0.25 };
    const asks = [1, 2, 1, 0].map((value) => ask(limiter, { value, context }));
    await vi.advanceTimersByTimeAsync(500);
    expect(seen).toEqual([
      [1, 0.25],
      [2, 0.25],
      [1, 0.25],
      [0, 0.25],
    ]);
    // 0.25 + 0.5 + 0.25 = 1; the free one still waits its turn behind them, then fits.
    expect(startTimes(asks)).toEqual([0, 0, 0, 0]);
  });

  it.each<[unknown, typeof Error, string]>([
    [11, RangeError, "cost 11 is above the limiter's limit of 10: the attempt could never start"],
    [-1, RangeError, "cost must return a finite number ≥ 0, got -1"],
    [Number.NaN, RangeError, "cost must return a finite number ≥ 0, got NaN"],
    [Infinity, RangeError, "cost must return a finite number ≥ 0, got Infinity"],
    ["3", TypeError, 'cost must return a number, got "3"'],
    [undefined, TypeError, "cost must return a number, got undefined"],
  ])("fails the attempt at once, taking nothing, for a cost of %s", (bad, Kind, message) => {
    const limiter = new RateLimiter({ limit: 10, interval: 100, cost: () => bad as number });
    expect(() => limiter[admitAttempt](1, {}, undefined)).toThrow(Kind);
    expect(() => limiter[admitAttempt](1, {}, undefined)).toThrow(message);
    expect(limiter.waiting).toBe(0);
  });

  it("fails the attempt with what cost throws", () => {
    const problem = new Error("cannot weigh");
    const limiter = new RateLimiter({
      limit: 10,
      interval: 100,
      cost: () => {
        throw problem;
      },
    });
    expect(() => limiter[admitAttempt](1, {}, undefined)).toThrow(problem);
  });
});

describe("RateLimiter: call.charge, through the grant", () => {
  const tokens = () => new RateLimiter({ limit: 10, interval: 1_000, cost: (n: number) => n });

  it("refunds: an attempt that cost less than estimated lets the next one start at once", async () => {
    const limiter = tokens();
    const first = ask(limiter, { value: 10 });
    const second = ask(limiter, { value: 6 });
    await vi.advanceTimersByTimeAsync(50);
    expect(second.startedAt).toBeUndefined();
    first.grant?.charge(first.receipt, limiter, 3); // it really cost 3
    await vi.advanceTimersByTimeAsync(0);
    expect(second.startedAt).toBe(50);
    const third = ask(limiter, { value: 2 }); // 3 + 6 + 2 > 10
    await vi.advanceTimersByTimeAsync(0);
    expect(third.startedAt).toBeUndefined();
  });

  it("charges more than estimated: later attempts wait until it leaves the window", async () => {
    const limiter = tokens();
    const first = ask(limiter, { value: 1 });
    first.grant?.charge(first.receipt, limiter, 10);
    const second = ask(limiter, { value: 1 });
    await vi.advanceTimersByTimeAsync(999);
    expect(second.startedAt).toBeUndefined();
    await vi.advanceTimersByTimeAsync(1);
    expect(second.startedAt).toBe(1_000);
  });

  it("charges an attempt that waited, and one of several in the window", async () => {
    const limiter = tokens();
    const asks = [4, 4, 4].map((value) => ask(limiter, { value }));
    await vi.advanceTimersByTimeAsync(1_000);
    expect(startTimes(asks)).toEqual([0, 0, 1_000]);
    const [, , waited] = asks as [Ask, Ask, Ask];
    waited.grant?.charge(waited.receipt, limiter, 0);
    const next = ask(limiter, { value: 10 });
    await vi.advanceTimersByTimeAsync(0);
    expect(next.startedAt).toBe(1_000);
  });

  it("does nothing once the attempt has left the window", async () => {
    const limiter = tokens();
    const first = ask(limiter, { value: 5 });
    await vi.advanceTimersByTimeAsync(1_000);
    const second = ask(limiter, { value: 10 });
    first.grant?.charge(first.receipt, limiter, 10);
    const third = ask(limiter, { value: 1 });
    await vi.advanceTimersByTimeAsync(0);
    expect([second.startedAt, third.startedAt]).toEqual([1_000, undefined]);
  });

  it("is a TypeError for a limiter the attempt did not use, a RangeError for a bad amount", () => {
    const limiter = tokens();
    const other = tokens();
    for (const value of [1, 3]) {
      // A plain grant (cost 1) and one with a cost of its own.
      const entry = ask(limiter, { value });
      expect(() => entry.grant?.charge(entry.receipt, other, 1)).toThrow(TypeError);
      expect(() => entry.grant?.charge(entry.receipt, other, 1)).toThrow(
        "call.charge: this attempt did not use that limiter",
      );
      expect(() => entry.grant?.charge(entry.receipt, limiter, -1)).toThrow(
        new RangeError("call.charge: actual must be a finite number ≥ 0, got -1"),
      );
      expect(() => entry.grant?.charge(entry.receipt, limiter, Infinity)).toThrow(RangeError);
      expect(() => entry.grant?.charge(entry.receipt, limiter, Number.NaN)).toThrow(RangeError);
      expect(() => entry.grant?.charge(entry.receipt, limiter, "2")).toThrow(
        new TypeError('call.charge: actual must be a number, got "2"'),
      );
    }
  });
});

describe("RateLimiter: key", () => {
  interface Request {
    readonly host: string;
  }
  const perHost = () =>
    new RateLimiter({ limit: 1, interval: 100, key: (request: Request) => request.host });

  it("gives each key a window and a queue of its own", async () => {
    const limiter = perHost();
    const a1 = ask(limiter, { value: { host: "a" } });
    const a2 = ask(limiter, { value: { host: "a" } });
    const b1 = ask(limiter, { value: { host: "b" } });
    const a3 = ask(limiter, { value: { host: "a" } });
    const b2 = ask(limiter, { value: { host: "b" } });
    expect(limiter.waiting).toBe(3);
    expect(limiter.waitingFor("a")).toBe(2);
    expect(limiter.waitingFor("b")).toBe(1);
    expect(limiter.waitingFor("c")).toBe(0);
    await vi.advanceTimersByTimeAsync(300);
    expect(startTimes([a1, a2, a3])).toEqual([0, 100, 200]);
    expect(startTimes([b1, b2])).toEqual([0, 100]);
    expect(limiter.waiting).toBe(0);
  });

  it("holds no key without a key option: every attempt shares one window", () => {
    const limiter = new RateLimiter({ limit: 1, interval: 100 });
    ask(limiter, { value: { host: "a" } });
    ask(limiter, { value: { host: "b" } });
    expect(limiter[keyCount]).toBe(0);
    expect(limiter.waitingFor("a")).toBe(1);
    expect(limiter.waitingFor("anything")).toBe(1);
  });

  it("compares keys as a Map does, and reads the context", async () => {
    const limiter = new RateLimiter({
      limit: 1,
      interval: 100,
      key: (value: number, context: { keys: unknown[] }) => context.keys[value],
    });
    const context = { keys: [Number.NaN, Number.NaN, 0, -0, {}, {}] };
    const asks = [0, 1, 2, 3, 4, 5].map((value) => ask(limiter, { value, context }));
    await vi.advanceTimersByTimeAsync(100);
    // NaN with NaN, 0 with -0; two objects are two keys.
    expect(startTimes(asks)).toEqual([0, 100, 0, 100, 0, 0]);
  });

  it("throws what key throws, taking nothing", () => {
    const problem = new TypeError("no host");
    const limiter = new RateLimiter({
      limit: 1,
      interval: 100,
      key: () => {
        throw problem;
      },
    });
    expect(() => limiter[admitAttempt](1, {}, undefined)).toThrow(problem);
    expect(limiter.waiting).toBe(0);
  });

  it("drops idle keys: tens of thousands of hosts seen once each do not stay in memory", async () => {
    const limiter = new RateLimiter({
      limit: 1,
      interval: 10,
      key: (request: Request) => request.host,
    });
    let most = 0;
    for (let index = 0; index < 20_000; index++) {
      ask(limiter, { value: { host: `host-${String(index)}` } });
      most = Math.max(most, limiter[keyCount]);
      // 100 new hosts per ms: the windows of the last 10 ms (1,000 hosts) are busy.
      if (index % 100 === 99) await vi.advanceTimersByTimeAsync(1);
    }
    // About three times the busy windows at most (SWEEP_FLOOR for a few), however many keys came
    // and went: 20,000 here.
    expect(most).toBeLessThanOrEqual(3 * 1_000 + SWEEP_FLOOR);
    expect(vi.getTimerCount()).toBe(0);
  }, 30_000);

  it("keeps a key's window while a start of the last interval, a reservation or a waiter is in it", async () => {
    const limiter = perHost();
    ask(limiter, { value: { host: "busy" } });
    const reserved = ask(limiter, { value: { host: "reserved" }, lag: false });
    ask(limiter, { value: { host: "busy" } }); // waits
    await vi.advanceTimersByTimeAsync(50);
    for (let index = 0; index < 50; index++)
      ask(limiter, { value: { host: `other-${String(index)}` } });
    await vi.advanceTimersByTimeAsync(100);
    for (let index = 0; index < 200; index++)
      ask(limiter, { value: { host: `more-${String(index)}` } });
    // "busy" (started at 100, within the interval) and "reserved" are still known: their next
    // attempts wait.
    const busy = ask(limiter, { value: { host: "busy" } });
    const again = ask(limiter, { value: { host: "reserved" } });
    expect([busy.immediate, again.immediate]).toEqual([false, false]);
    reserved.grant?.release();
    await vi.advanceTimersByTimeAsync(0);
    expect(again.startedAt).toBe(150);
  });
});

describe("rateLimit as an array of limiters", () => {
  const gate = (...limiters: RateLimiter[]): AttemptGate =>
    attemptGateOption(limiters) as AttemptGate;

  it("is the limiter itself for one, no limit for none", () => {
    const limiter = new RateLimiter({ limit: 1, interval: 100 });
    expect(attemptGateOption([limiter])).toBe(limiter);
    expect(attemptGateOption([])).toBeUndefined();
    expect(attemptGateOption(undefined)).toBeUndefined();
    expect(attemptGateOption(limiter)).toBe(limiter);
    expect(attemptGateOption({ limit: 1, interval: 1 })).toBeInstanceOf(RateLimiter);
  });

  it.each<[unknown, string]>([
    [[{ limit: 1, interval: 1 }], "rateLimit[0] must be a RateLimiter, got an object"],
    [[5], "rateLimit[0] must be a RateLimiter, got 5"],
    [
      Object.assign([new RateLimiter({ limit: 1, interval: 1 })], { length: 2 }),
      "rateLimit[1] must be a RateLimiter, got a hole",
    ],
  ])("rejects %o, naming the index", (value, message) => {
    expect(() => attemptGateOption(value)).toThrow(new TypeError(message));
  });

  it("rejects a limiter given twice (it would wait for itself)", () => {
    const limiter = new RateLimiter({ limit: 1, interval: 1 });
    const other = new RateLimiter({ limit: 1, interval: 1 });
    expect(() => attemptGateOption([limiter, other, limiter])).toThrow(
      new TypeError("rateLimit[2] is the same limiter as rateLimit[0]: give each limiter once"),
    );
  });

  it("starts an attempt once every limiter has room, taking its place in all at once", async () => {
    const perSecond = new RateLimiter({ limit: 3, interval: 1_000 });
    const perTenth = new RateLimiter({ limit: 1, interval: 100 });
    const both = gate(perSecond, perTenth);
    const asks = Array.from({ length: 5 }, () => ask(both));
    await vi.advanceTimersByTimeAsync(3_000);
    // 1 per 100 ms, and 3 per second.
    expect(startTimes(asks)).toEqual([0, 100, 200, 1_000, 1_100]);
    expect([perSecond.waiting, perTenth.waiting]).toEqual([0, 0]);
  });

  it("holds no place in one limiter while it waits for another", async () => {
    const requests = new RateLimiter({ limit: 2, interval: 1_000 });
    const tokens = new RateLimiter({ limit: 10, interval: 1_000, cost: (n: number) => n });
    const both = gate(requests, tokens);
    const big = ask(both, { value: 10 });
    const controller = new AbortController();
    // Room in `requests`, none in `tokens`: it waits in both queues, holding nothing.
    const waiting = ask(both, { value: 5, signal: controller.signal });
    expect([big.immediate, waiting.immediate]).toEqual([true, false]);
    expect([requests.waiting, tokens.waiting]).toEqual([1, 1]);
    await vi.advanceTimersByTimeAsync(500);
    controller.abort(new Error("no"));
    await vi.advanceTimersByTimeAsync(0);
    expect(waiting.error).toEqual(new Error("no"));
    // Had it taken its place in `requests` while waiting, `requests` would be full until 1000.
    const alone = ask(requests);
    expect(alone.immediate).toBe(true);
    expect(alone.startedAt).toBe(500);
  });

  it("makes a later attempt through one of the limiters wait behind it (FIFO in each)", async () => {
    const requests = new RateLimiter({ limit: 2, interval: 1_000 });
    const tokens = new RateLimiter({ limit: 10, interval: 1_000, cost: (n: number) => n });
    const both = gate(requests, tokens);
    ask(both, { value: 10 });
    const waiting = ask(both, { value: 5 });
    const alone = ask(requests); // `requests` has room, but `waiting` asked first
    await vi.advanceTimersByTimeAsync(999);
    expect(startTimes([waiting, alone])).toEqual([undefined, undefined]);
    await vi.advanceTimersByTimeAsync(1);
    expect(startTimes([waiting, alone])).toEqual([1_000, 1_000]);
  });

  it("waits in each limiter's queue in order, with no deadlock between arrays in both orders", async () => {
    const a = new RateLimiter({ limit: 1, interval: 100 });
    const b = new RateLimiter({ limit: 1, interval: 100 });
    const ab = gate(a, b);
    const ba = gate(b, a);
    const asks = [ab, ba, a, ab, b, ba].map((entry) => ask(entry));
    await vi.advanceTimersByTimeAsync(1_000);
    expect(startTimes(asks)).toEqual([0, 100, 200, 300, 400, 500]);
  });

  it("leaves every queue when its signal aborts, and leaves no timer behind", async () => {
    const a = new RateLimiter({ limit: 1, interval: 100 });
    const b = new RateLimiter({ limit: 1, interval: 500 });
    const both = gate(a, b);
    ask(both);
    const controller = new AbortController();
    const waiting = ask(both, { signal: controller.signal });
    expect([a.waiting, b.waiting]).toEqual([1, 1]);
    expect(vi.getTimerCount()).toBe(1); // b's: a has room, b has none
    controller.abort(new Error("stop"));
    await vi.advanceTimersByTimeAsync(0);
    expect(waiting.error).toEqual(new Error("stop"));
    expect([a.waiting, b.waiting]).toEqual([0, 0]);
    expect(vi.getTimerCount()).toBe(0);
  });

  it("charges each limiter by name, and refuses one it does not hold", async () => {
    const requests = new RateLimiter({ limit: 5, interval: 1_000 });
    const tokens = new RateLimiter({ limit: 10, interval: 1_000, cost: (n: number) => n });
    const both = gate(requests, tokens);
    const first = ask(both, { value: 10 });
    const second = ask(both, { value: 4 });
    first.grant?.charge(first.receipt, tokens, 6);
    await vi.advanceTimersByTimeAsync(0);
    expect(second.startedAt).toBe(0);
    expect(() =>
      first.grant?.charge(first.receipt, new RateLimiter({ limit: 1, interval: 1 }), 1),
    ).toThrow(TypeError);
    expect(() => first.grant?.charge(first.receipt, tokens, -2)).toThrow(RangeError);
  });

  it("releases a grant in every limiter", async () => {
    const a = new RateLimiter({ limit: 1, interval: 1_000 });
    const b = new RateLimiter({ limit: 1, interval: 1_000 });
    const dropped = ask(gate(a, b), { lag: false });
    const onA = ask(a);
    const onB = ask(b);
    dropped.grant?.release();
    await vi.advanceTimersByTimeAsync(0);
    expect(startTimes([onA, onB])).toEqual([0, 0]);
  });

  it("fails at once for a cost above one limiter's limit, or a key that throws, queueing nothing", () => {
    const small = new RateLimiter({ limit: 3, interval: 100, cost: (n: number) => n });
    const plain = new RateLimiter({ limit: 3, interval: 100 });
    expect(() => gate(plain, small)[admitAttempt](4, {}, undefined)).toThrow(RangeError);
    const keyed = new RateLimiter({
      limit: 3,
      interval: 100,
      key: () => {
        throw new Error("no key");
      },
    });
    expect(() => gate(plain, keyed)[admitAttempt](1, {}, undefined)).toThrow("no key");
    expect([plain.waiting, small.waiting]).toEqual([0, 0]);
  });

  it("works with limiters made by another copy of the package", async () => {
    vi.resetModules();
    const copy = await import("../src/index.js");
    const theirs = new copy.RateLimiter({ limit: 1, interval: 100 });
    const ours = new RateLimiter({ limit: 2, interval: 100 });
    expect(theirs).not.toBeInstanceOf(RateLimiter);
    const both = gate(ours, theirs);
    const asks = [ask(both), ask(both), ask(theirs)];
    await vi.advanceTimersByTimeAsync(300);
    expect(startTimes(asks)).toEqual([0, 100, 200]);
  });
});

describe("RateLimiter options", () => {
  it.each<[unknown, typeof Error, string]>([
    [{ limit: 1, interval: 1, cost: 2 }, TypeError, "cost must be a function, got 2"],
    [{ limit: 1, interval: 1, key: "host" }, TypeError, 'key must be a function, got "host"'],
    [
      { limit: 1, interval: 1, costs: () => 1 },
      TypeError,
      'unknown option "costs" (did you mean "cost"?)',
    ],
  ])("rejects %o at construction", (options, Kind, message) => {
    expect(() => new RateLimiter(options as never)).toThrow(Kind);
    expect(() => new RateLimiter(options as never)).toThrow(message);
  });

  it("names the stage option in its messages", () => {
    expect(() => attemptGateOption({ limit: 1, interval: 1, key: 3 })).toThrow(
      new TypeError("rateLimit.key must be a function, got 3"),
    );
    expect(() => attemptGateOption({ limit: 1, interval: 1, cost: null })).toThrow(
      new TypeError("rateLimit.cost must be a function, got null"),
    );
  });
});
