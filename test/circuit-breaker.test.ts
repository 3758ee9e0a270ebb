import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import {
  BrokenCircuitError,
  CircuitBreaker,
  Pipeline,
  PipelineError,
  RateLimiter,
  Stage,
  StageExecutionError,
  TimeoutError,
  type CircuitState,
  type StageOptions,
} from "../src/index.js";
import { never, observe, rejectionOf } from "./support/promises.js";

beforeEach(() => {
  vi.useFakeTimers();
  vi.setSystemTime(0);
});

afterEach(() => {
  vi.useRealTimers();
});

/** A stage whose handler fails while `service.up` is false, counting its calls. */
function serviceStage(options: StageOptions, name = "call") {
  const service = { up: false, calls: 0 };
  const stage = new Stage(
    name,
    async (value: number) => {
      service.calls++;
      if (!service.up) throw new Error(`down (call ${String(service.calls)})`);
      return value;
    },
    options,
  );
  return { stage, service };
}

function refusal(error: unknown): BrokenCircuitError {
  expect(error).toBeInstanceOf(StageExecutionError);
  const failure = error as StageExecutionError;
  expect(failure.attempts).toBe(0);
  expect(failure.originalError).toBeInstanceOf(BrokenCircuitError);
  return failure.originalError as BrokenCircuitError;
}

function changesOf(): { states: CircuitState[]; onStateChange: (state: CircuitState) => void } {
  const states: CircuitState[] = [];
  return {
    states,
    onStateChange: (state) => {
      states.push(state);
    },
  };
}

describe("CircuitBreaker", () => {
  it("starts closed and exposes threshold and cooldown", () => {
    const breaker = new CircuitBreaker({ threshold: 3, cooldown: 500 });
    expect(breaker.state).toBe("closed");
    expect(breaker.threshold).toBe(3);
    expect(breaker.cooldown).toBe(500);
  });

  it.each([
    [{ threshold: 0, cooldown: 1 }, RangeError, "threshold must be at least 1, got 0"],
    [{ threshold: 2.5, cooldown: 1 }, RangeError, "threshold must be an integer, got 2.5"],
    [{ threshold: "3", cooldown: 1 }, TypeError, 'threshold must be a number, got "3"'],
    [{ threshold: 1, cooldown: 0 }, RangeError, "cooldown must be greater than 0, got 0"],
    [{ threshold: 1, cooldown: Number.NaN }, RangeError, "cooldown must be a number, got NaN"],
    [{ threshold: 1 }, TypeError, "cooldown must be a number, got undefined"],
    [
      { threshold: 1, cooldown: 1, onStateChange: "log" },
      TypeError,
      'onStateChange must be a function, got "log"',
    ],
  ])("rejects %o at construction", (options, Kind, message) => {
    expect(() => new CircuitBreaker(options as never)).toThrow(Kind);
    expect(() => new CircuitBreaker(options as never)).toThrow(message);
  });

  it("rejects an unknown option key", () => {
    expect(() => new CircuitBreaker({ threshold: 1, cooldown: 1, cooldownMs: 5 } as never)).toThrow(
      new TypeError('unknown option "cooldownMs" (did you mean "cooldown"?)'),
    );
    expect(() => new Stage("s", (value: number) => value, { circuitbreaker: 1 } as never)).toThrow(
      'unknown option "circuitbreaker" (did you mean "circuitBreaker"?)',
    );
  });

  it("rejects a missing options argument", () => {
    expect(() => new CircuitBreaker(undefined as never)).toThrow(
      new TypeError("options must be an object, got undefined"),
    );
  });

  it("is rejected as a stage option when it is not a CircuitBreaker", () => {
    for (const bad of [{ threshold: 1, cooldown: 1 }, 5, null]) {
      expect(
        () => new Stage("s", (value: number) => value, { circuitBreaker: bad as never }),
      ).toThrow(TypeError);
    }
    expect(() => new Stage("s", (value: number) => value, { circuitBreaker: {} as never })).toThrow(
      "circuitBreaker must be a CircuitBreaker, got an object",
    );
  });
});

describe("the circuitBreaker stage option", () => {
  it("opens after `threshold` consecutive failed executions, then fails fast without calling the handler", async () => {
    const { states, onStateChange } = changesOf();
    const breaker = new CircuitBreaker({ threshold: 3, cooldown: 1_000, onStateChange });
    const { stage, service } = serviceStage({ circuitBreaker: breaker });
    const failures: unknown[] = [];
    for (let index = 0; index < 3; index++) failures.push(await rejectionOf(stage.run(index)));
    expect(breaker.state).toBe("open");
    expect(states).toEqual(["open"]);
    expect(service.calls).toBe(3);

    const error = await rejectionOf(stage.run(9));
    const broken = refusal(error);
    expect(service.calls).toBe(3);
    expect(broken.name).toBe("BrokenCircuitError");
    expect(broken.stageName).toBe("call");
    expect(broken).toBeInstanceOf(PipelineError);
    expect(broken.message).toBe('Circuit is open: stage "call" was not run');
    // Its cause says why: the failure that opened the circuit.
    expect(broken.cause).toBe(failures[2]);
    expect((error as Error).message).toBe(
      'Stage "call" failed: Circuit is open: stage "call" was not run',
    );
  });

  it("counts executions, not attempts: a retried execution that fails counts once", async () => {
    const breaker = new CircuitBreaker({ threshold: 2, cooldown: 1_000 });
    const { stage, service } = serviceStage({ circuitBreaker: breaker, retries: 2 });
    const first = await rejectionOf(stage.run(1));
    expect((first as StageExecutionError).attempts).toBe(3);
    expect(service.calls).toBe(3);
    expect(breaker.state).toBe("closed");
    await rejectionOf(stage.run(2));
    expect(breaker.state).toBe("open");
    expect(service.calls).toBe(6);
  });

  it("counts an execution whose retry succeeded as a success, which resets the count", async () => {
    const breaker = new CircuitBreaker({ threshold: 2, cooldown: 1_000 });
    // One entry per call: whether that attempt succeeds.
    const script = [false, false, false, true, false, false, false, false];
    let calls = 0;
    const stage = new Stage(
      "sometimes",
      async (_value: number, _context, call) => {
        if (script[calls++] !== true) throw new Error("flaky");
        return call.attempt;
      },
      { circuitBreaker: breaker, retries: 1 },
    );
    await rejectionOf(stage.run(0)); // both attempts fail: one failed execution
    await expect(stage.run(0)).resolves.toBe(2); // its retry succeeds: a success, count reset
    await rejectionOf(stage.run(0)); // one failure since the success
    expect(breaker.state).toBe("closed");
    await rejectionOf(stage.run(0)); // two in a row
    expect(breaker.state).toBe("open");
    expect(calls).toBe(8);
  });

  it("needs the failures to be consecutive", async () => {
    const breaker = new CircuitBreaker({ threshold: 2, cooldown: 1_000 });
    const { stage, service } = serviceStage({ circuitBreaker: breaker });
    await rejectionOf(stage.run(1));
    service.up = true;
    await stage.run(2);
    service.up = false;
    await rejectionOf(stage.run(3));
    expect(breaker.state).toBe("closed");
    await rejectionOf(stage.run(4));
    expect(breaker.state).toBe("open");
  });

  it("counts a timed-out execution as a failure", async () => {
    const breaker = new CircuitBreaker({ threshold: 1, cooldown: 1_000 });
    const stage = new Stage("hang", () => never<number>(), {
      timeout: 100,
      circuitBreaker: breaker,
    });
    const run = rejectionOf(stage.run(0));
    await vi.advanceTimersByTimeAsync(100);
    expect(((await run) as StageExecutionError).originalError).toBeInstanceOf(TimeoutError);
    expect(breaker.state).toBe("open");
  });

  it("after the cooldown runs one trial while others fail fast; the trial's success closes it", async () => {
    const { states, onStateChange } = changesOf();
    const breaker = new CircuitBreaker({ threshold: 1, cooldown: 1_000, onStateChange });
    let release: () => void = () => undefined;
    const service = { up: false, calls: 0 };
    const stage = new Stage(
      "call",
      async (value: number) => {
        service.calls++;
        if (!service.up) throw new Error("down");
        await new Promise<void>((resolve) => {
          release = resolve;
        });
        return value;
      },
      { circuitBreaker: breaker },
    );
    await rejectionOf(stage.run(0));
    expect(breaker.state).toBe("open");
    await vi.advanceTimersByTimeAsync(999);
    refusal(await rejectionOf(stage.run(1)));
    expect(breaker.state).toBe("open");
    await vi.advanceTimersByTimeAsync(1);

    service.up = true;
    const trial = observe(stage.run(2));
    expect(breaker.state).toBe("half-open");
    // While the trial runs, every other execution fails fast.
    refusal(await rejectionOf(stage.run(3)));
    refusal(await rejectionOf(stage.run(4)));
    expect(service.calls).toBe(2);
    release();
    await vi.advanceTimersByTimeAsync(0);
    expect(trial.status).toBe("fulfilled");
    expect(breaker.state).toBe("closed");
    expect(states).toEqual(["open", "half-open", "closed"]);
    const after = observe(stage.run(5));
    await vi.advanceTimersByTimeAsync(0);
    release();
    await vi.advanceTimersByTimeAsync(0);
    expect(after.status).toBe("fulfilled");
    expect(service.calls).toBe(3);
  });

  it("opens again for a whole new cooldown when the trial fails", async () => {
    const { states, onStateChange } = changesOf();
    const breaker = new CircuitBreaker({ threshold: 2, cooldown: 1_000, onStateChange });
    const { stage, service } = serviceStage({ circuitBreaker: breaker });
    await rejectionOf(stage.run(0));
    await rejectionOf(stage.run(0));
    await vi.advanceTimersByTimeAsync(1_500);
    const trialError = await rejectionOf(stage.run(1));
    expect((trialError as StageExecutionError).originalError).toBeInstanceOf(Error);
    expect(breaker.state).toBe("open");
    expect(service.calls).toBe(3);
    // One failure is enough in half-open; the new cooldown counts from the trial's failure.
    await vi.advanceTimersByTimeAsync(999);
    refusal(await rejectionOf(stage.run(2)));
    await vi.advanceTimersByTimeAsync(1);
    service.up = true;
    await expect(stage.run(3)).resolves.toBe(3);
    expect(states).toEqual(["open", "half-open", "open", "half-open", "closed"]);
  });

  it("counts a cancelled execution neither way, while closed", async () => {
    const breaker = new CircuitBreaker({ threshold: 1, cooldown: 1_000 });
    const stage = new Stage("hang", () => never<number>(), { circuitBreaker: breaker });
    const controller = new AbortController();
    const run = rejectionOf(stage.run(0, { signal: controller.signal }));
    controller.abort(new Error("user left"));
    await expect(run).resolves.toEqual(new Error("user left"));
    expect(breaker.state).toBe("closed");
  });

  it("counts a cancelled execution neither way, when a success had been counted before it", async () => {
    const breaker = new CircuitBreaker({ threshold: 2, cooldown: 1_000 });
    const { stage } = serviceStage({ circuitBreaker: breaker });
    await rejectionOf(stage.run(0)); // one failure counted
    const controller = new AbortController();
    const cancelled = rejectionOf(stage.run(1, { signal: controller.signal }));
    controller.abort(new Error("stop"));
    await cancelled;
    expect(breaker.state).toBe("closed"); // the cancellation was not the second failure
    await rejectionOf(stage.run(2));
    expect(breaker.state).toBe("open");
  });

  it("lets the next execution be the trial when the trial is cancelled", async () => {
    const { states, onStateChange } = changesOf();
    const breaker = new CircuitBreaker({ threshold: 1, cooldown: 100, onStateChange });
    let mode: "fail" | "hang" | "ok" = "fail";
    const stage = new Stage(
      "call",
      async (value: number) => {
        if (mode === "fail") throw new Error("down");
        if (mode === "hang") return never<number>();
        return value;
      },
      { circuitBreaker: breaker },
    );
    await rejectionOf(stage.run(0));
    await vi.advanceTimersByTimeAsync(100);
    mode = "hang";
    const controller = new AbortController();
    const trial = rejectionOf(stage.run(1, { signal: controller.signal }));
    expect(breaker.state).toBe("half-open");
    controller.abort(new Error("stop"));
    await trial;
    expect(breaker.state).toBe("half-open");
    mode = "ok";
    await expect(stage.run(2)).resolves.toBe(2);
    expect(breaker.state).toBe("closed");
    expect(states).toEqual(["open", "half-open", "closed"]);
  });

  it("ignores the results of executions that began before the circuit opened", async () => {
    const breaker = new CircuitBreaker({ threshold: 1, cooldown: 1_000 });
    const pending: { resolve: (value: number) => void; reject: (error: Error) => void }[] = [];
    const stage = new Stage(
      "call",
      (): Promise<number> =>
        new Promise<number>((resolve, reject) => {
          pending.push({ resolve, reject });
        }),
      { circuitBreaker: breaker },
    );
    const slow = stage.run(1);
    const failing = rejectionOf(stage.run(2));
    pending[1]?.reject(new Error("down"));
    await failing;
    expect(breaker.state).toBe("open");
    pending[0]?.resolve(1); // a success from before the circuit opened does not close it
    await expect(slow).resolves.toBe(1);
    expect(breaker.state).toBe("open");
  });

  it("ignores the results of executions from an earlier closed period", async () => {
    const breaker = new CircuitBreaker({ threshold: 1, cooldown: 100 });
    const pending: ((error: Error) => void)[] = [];
    let hang = true;
    const stage = new Stage(
      "call",
      (value: number) =>
        hang
          ? new Promise<number>((_resolve, reject) => {
              pending.push(reject);
            })
          : Promise.resolve(value),
      { circuitBreaker: breaker },
    );
    const old = rejectionOf(stage.run(1)); // begins while closed, period 1
    hang = false;
    const opener = new Stage(
      "opener",
      (): number => {
        throw new Error("x");
      },
      { circuitBreaker: breaker },
    );
    await rejectionOf(opener.run(0));
    await vi.advanceTimersByTimeAsync(100);
    await stage.run(2); // the trial closes the circuit: period 2
    expect(breaker.state).toBe("closed");
    pending[0]?.(new Error("late failure from period 1"));
    await old;
    expect(breaker.state).toBe("closed");
  });

  it("ignores onStateChange's failures, thrown or rejected", async () => {
    const breaker = new CircuitBreaker({
      threshold: 1,
      cooldown: 100,
      onStateChange: (state) => {
        if (state === "open") throw new Error("logger down");
        return Promise.reject(new Error("async logger down"));
      },
    });
    const { stage, service } = serviceStage({ circuitBreaker: breaker });
    await rejectionOf(stage.run(0));
    expect(breaker.state).toBe("open");
    await vi.advanceTimersByTimeAsync(100);
    service.up = true;
    await expect(stage.run(1)).resolves.toBe(1);
    expect(breaker.state).toBe("closed");
  });

  it("is shared by the stages of two pipelines: they count together and open together", async () => {
    const breaker = new CircuitBreaker({ threshold: 2, cooldown: 1_000 });
    const a = serviceStage({ circuitBreaker: breaker }, "a");
    const b = serviceStage({ circuitBreaker: breaker }, "b");
    const one = new Pipeline([a.stage]);
    const two = new Pipeline([b.stage]);
    await rejectionOf(one.run(1));
    await rejectionOf(two.run(1));
    expect(breaker.state).toBe("open");
    const refused = refusal(await rejectionOf(one.run(2)));
    expect(refused.stageName).toBe("a");
    expect(refusal(await rejectionOf(two.run(2))).stageName).toBe("b");
    expect(a.service.calls + b.service.calls).toBe(2);
  });

  it("fails the rest of a batch fast once it opens, and mapSettled records each refusal", async () => {
    const breaker = new CircuitBreaker({ threshold: 2, cooldown: 60_000 });
    const { stage, service } = serviceStage({ circuitBreaker: breaker });
    const settled = await new Pipeline([stage]).mapSettled([1, 2, 3, 4, 5], 1);
    expect(service.calls).toBe(2);
    expect(settled.map((entry) => entry.status)).toEqual(Array(5).fill("rejected"));
    for (const entry of settled.slice(2)) {
      refusal((entry as PromiseRejectedResult).reason);
    }
    // The two that ran failed once each, wrapped once.
    for (const entry of settled.slice(0, 2)) {
      const reason = (entry as PromiseRejectedResult).reason as StageExecutionError;
      expect(reason.attempts).toBe(1);
      expect(reason.originalError).not.toBeInstanceOf(StageExecutionError);
      expect((reason.originalError as Error).message).toMatch(/^down/);
    }
  });

  it("counts an item stopped by a failing batch (fail-fast) neither way", async () => {
    const breaker = new CircuitBreaker({ threshold: 1, cooldown: 60_000 });
    const hanging = new Stage("hang", () => never<number>(), { circuitBreaker: breaker });
    const failing = new Stage("check", (value: number): number => {
      if (value === 2) throw new Error("bad item");
      return value;
    });
    const pipeline = new Pipeline([failing, hanging]);
    const error = await rejectionOf(pipeline.map([1, 2], 2));
    expect((error as StageExecutionError).stageName).toBe("check");
    await vi.advanceTimersByTimeAsync(0);
    expect(breaker.state).toBe("closed");
  });

  it("runs a synchronous handler synchronously inside a pipeline, and counts its failure", async () => {
    const breaker = new CircuitBreaker({ threshold: 1, cooldown: 100 });
    let fail = false;
    const stage = new Stage(
      "sync",
      (value: number) => {
        if (fail) throw new Error("sync failure");
        return value + 1;
      },
      { circuitBreaker: breaker },
    );
    const pipeline = new Pipeline([stage, new Stage("double", (value: number) => value * 2)]);
    await expect(pipeline.run(1)).resolves.toBe(4);
    fail = true;
    const error = await rejectionOf(pipeline.run(1));
    expect((error as StageExecutionError).originalError).toEqual(new Error("sync failure"));
    expect(breaker.state).toBe("open");
    refusal(await rejectionOf(pipeline.run(1)));
  });

  it("works behind hooks and middleware, and after another stage", async () => {
    const breaker = new CircuitBreaker({ threshold: 1, cooldown: 100 });
    const { stage, service } = serviceStage({ circuitBreaker: breaker, retries: 1 });
    const seen: unknown[] = [];
    const pipeline = new Pipeline([new Stage("first", async (value: number) => value), stage], {
      afterStage: (_name, _input, _output, error) => {
        seen.push(error);
      },
      middlewares: [(next, _name, value) => next(value)],
    });
    const first = await rejectionOf(pipeline.run(1));
    expect((first as StageExecutionError).attempts).toBe(2);
    const second = await rejectionOf(pipeline.run(1));
    refusal(second);
    expect(service.calls).toBe(2);
    expect(seen.at(-1)).toBe(second);
    const plain = new Pipeline([new Stage("first", async (value: number) => value), stage]);
    refusal(await rejectionOf(plain.run(1)));
  });

  it("takes no rate-limit slot for an execution it refuses", async () => {
    const breaker = new CircuitBreaker({ threshold: 1, cooldown: 10_000 });
    const limiter = new RateLimiter({ limit: 1, interval: 1_000 });
    const { stage, service } = serviceStage({ circuitBreaker: breaker, rateLimit: limiter });
    await rejectionOf(stage.run(0)); // takes the slot, opens the circuit
    const refused = observe(stage.run(1));
    await vi.advanceTimersByTimeAsync(0);
    expect(refused.status).toBe("rejected");
    refusal(refused.reason);
    expect(limiter.waiting).toBe(0);
    expect(service.calls).toBe(1);
    expect(vi.getTimerCount()).toBe(0);
  });

  it("works with a breaker and an error class from another copy of the library", async () => {
    vi.resetModules();
    const copy = await import("../src/index.js");
    expect(copy.CircuitBreaker).not.toBe(CircuitBreaker);
    const breaker = new copy.CircuitBreaker({ threshold: 1, cooldown: 1_000 });
    const limiter = new copy.RateLimiter({ limit: 5, interval: 1_000 });
    const { stage } = serviceStage({ circuitBreaker: breaker, rateLimit: limiter });
    await rejectionOf(stage.run(0));
    expect(breaker.state).toBe("open");
    const broken = refusal(await rejectionOf(stage.run(1)));
    expect(broken).toBeInstanceOf(copy.BrokenCircuitError);
    expect(new copy.BrokenCircuitError("elsewhere")).toBeInstanceOf(BrokenCircuitError);
    expect(new copy.BrokenCircuitError("elsewhere").cause).toBeUndefined();
  });
});

describe('whenOpen: "wait" in a batch', () => {
  interface Outage {
    readonly count?: number;
    readonly concurrency?: number;
    /** When the service is down, in ms from the start: a call begun then fails. */
    readonly from?: number;
    readonly to?: number;
    /** Each call's duration. */
    readonly latency?: number;
    /** Items that fail whatever the service does (a bad input, say). */
    readonly poison?: ReadonlySet<number>;
    readonly retries?: number;
  }

  /**
   * A batch through a stage whose service is down from `from` to `to`: each call takes
   * `latency` ms, and fails when it began during the outage. Returns each item's outcome and
   * when it settled (ms from the start), and the calls the service saw.
   */
  async function outage(breaker: CircuitBreaker, options: Outage = {}) {
    const {
      count = 1_000,
      concurrency = 20,
      from = 200,
      to = 2_200,
      latency = 20,
      poison = new Set<number>(),
      retries = 1,
    } = options;
    let calls = 0;
    let callsWhileDown = 0;
    const stage = new Stage(
      "call",
      (value: number) =>
        new Promise<number>((resolve, reject) => {
          calls++;
          const at = performance.now();
          const down = at >= from && at < to;
          if (down) callsWhileDown++;
          setTimeout(() => {
            if (down) reject(new Error("HTTP 503"));
            else if (poison.has(value)) reject(new Error(`no item ${String(value)}`));
            else resolve(value);
          }, latency);
        }),
      { circuitBreaker: breaker, retries, retryDelay: 100 },
    );
    const items = Array.from({ length: count }, (_, index) => index);
    const settledAt = new Map<number, number>();
    const run = new Pipeline([stage]).stream(items, {
      concurrency,
      settled: true,
      ordered: false,
    });
    const entries = new Map<number, PromiseSettledResult<number>>();
    const done = observe(
      (async () => {
        let index = 0;
        for await (const entry of run) {
          // Unordered: which item each entry is comes from its value or its reason.
          const item =
            entry.status === "fulfilled"
              ? entry.value
              : Number(/item (\d+)/.exec(String(entry.reason))?.[1] ?? -++index);
          entries.set(item, entry);
          settledAt.set(item, performance.now());
        }
      })(),
    );
    let finishedAt = 0;
    while (done.status === "pending") {
      await vi.advanceTimersByTimeAsync(10);
      finishedAt = performance.now();
    }
    expect(done.status).toBe("fulfilled");
    const failed = [...entries].filter(([, entry]) => entry.status === "rejected");
    return { failed, entries, settledAt, calls, callsWhileDown, finishedAt };
  }

  it("pauses a 10,000-item mapSettled through a 30 s outage: every item succeeds (retries 1, concurrency 32, threshold 5)", async () => {
    const { states, onStateChange } = changesOf();
    const breaker = new CircuitBreaker({
      threshold: 5,
      cooldown: 1_000,
      whenOpen: "wait",
      onStateChange,
    });
    const stage = new Stage(
      "call",
      (value: number) =>
        new Promise<number>((resolve, reject) => {
          const at = performance.now();
          setTimeout(() => {
            if (at >= 1_000 && at < 31_000) reject(new Error("HTTP 503"));
            else resolve(value);
          }, 20);
        }),
      { circuitBreaker: breaker, retries: 1 },
    );
    const items = Array.from({ length: 10_000 }, (_, index) => index);
    const settled = observe(new Pipeline([stage]).mapSettled(items, 32));
    while (settled.status === "pending") await vi.advanceTimersByTimeAsync(100);
    const entries = settled.value as PromiseSettledResult<number>[];
    expect(entries.filter((entry) => entry.status === "rejected")).toEqual([]);
    expect(entries.map((entry) => (entry as PromiseFulfilledResult<number>).value)).toEqual(items);
    // 10,000 items, 32 at a time, 20 ms each: 6.25 s of work, and the 30 s pause.
    expect(performance.now()).toBeGreaterThan(36_000);
    expect(performance.now()).toBeLessThan(38_500);
    expect(states.at(-1)).toBe("closed");
    expect(vi.getTimerCount()).toBe(0);
  });

  it("pauses through an outage: the failures before the streak reached threshold are held, and run again", async () => {
    const { states, onStateChange } = changesOf();
    const breaker = new CircuitBreaker({
      threshold: 5,
      cooldown: 500,
      whenOpen: "wait",
      onStateChange,
    });
    const { failed, entries, calls, callsWhileDown, finishedAt } = await outage(breaker);
    expect(failed).toEqual([]);
    expect(entries.size).toBe(1_000);
    // Paused, not drained: while it was down, the service saw the attempts in flight when the
    // outage began (20 and their retries) and one trial per cooldown: about 45 calls, where a
    // batch without a breaker would have made some 500 (20 at a time, 140 ms per failed item,
    // for 2 s).
    expect(callsWhileDown).toBeLessThan(60);
    expect(calls).toBeLessThan(1_000 + 60);
    expect(states.at(-1)).toBe("closed");
    expect(states.filter((state) => state === "half-open").length).toBeGreaterThan(1);
    // 1,000 items at 20 at once, 20 ms each: 1 s of work, plus the 2 s outage and a cooldown.
    expect(finishedAt).toBeGreaterThan(3_000);
    expect(finishedAt).toBeLessThan(4_000);
    expect(vi.getTimerCount()).toBe(0);
  });

  it("fails an item that fails while the service is healthy, as soon as another execution succeeds", async () => {
    const breaker = new CircuitBreaker({ threshold: 5, cooldown: 500, whenOpen: "wait" });
    const { failed, entries, settledAt } = await outage(breaker, {
      count: 200,
      concurrency: 8,
      from: Infinity,
      poison: new Set([50]),
    });
    expect(failed.map(([item]) => item)).toEqual([50]);
    const reason = (entries.get(50) as PromiseRejectedResult).reason as StageExecutionError;
    expect(reason.attempts).toBe(2);
    expect((reason.originalError as Error).message).toBe("no item 50");
    // Item 50 starts at 120 ms (the seventh round of 8), fails at 140, retries at 240 and
    // fails at 260: held until the next success, at most one call (20 ms) later.
    expect(settledAt.get(50)).toBeGreaterThanOrEqual(260);
    expect(settledAt.get(50)).toBeLessThanOrEqual(280);
    expect(breaker.state).toBe("closed");
  });

  it("does not hold a lone failing execution: nothing else could open the circuit", async () => {
    const breaker = new CircuitBreaker({ threshold: 5, cooldown: 500, whenOpen: "wait" });
    const stage = new Stage(
      "call",
      async (value: number) => {
        await new Promise((resolve) => setTimeout(resolve, 20));
        throw new Error(`no item ${String(value)}`);
      },
      { circuitBreaker: breaker, retries: 1, retryDelay: 100 },
    );
    const run = observe(stage.run(1));
    await vi.advanceTimersByTimeAsync(140); // fails at 20, retries at 120, fails at 140
    expect(run.status).toBe("rejected");
    expect((run.reason as StageExecutionError).attempts).toBe(2);
    // One at a time, each failure stands when it comes: three more take 3 × 140 ms.
    const settled = observe(new Pipeline([stage]).mapSettled([2, 3, 4], 1));
    await vi.advanceTimersByTimeAsync(3 * 140);
    expect(settled.status).toBe("fulfilled");
    expect((settled.value ?? []).map((entry) => entry.status)).toEqual(
      Array<string>(3).fill("rejected"),
    );
    expect(breaker.state).toBe("closed"); // four failures in a row: one short of threshold
    expect(vi.getTimerCount()).toBe(0);
  });

  it("fails the failures that come while nothing else runs, below a concurrency of threshold", async () => {
    const breaker = new CircuitBreaker({ threshold: 5, cooldown: 500, whenOpen: "wait" });
    const { failed, entries } = await outage(breaker, { concurrency: 2 });
    // Two at a time: once both have failed, nothing runs that could open the circuit, so
    // they stand; the next two add to the streak and stand too, and the fifth failure opens
    // it. So the first threshold − 1 failures stand, as with whenOpen "fail", and no more.
    expect(failed).toHaveLength(4);
    expect(entries.size).toBe(1_000);
  });

  it("fails no item of an outage with threshold 1: the first failure opens the circuit", async () => {
    const breaker = new CircuitBreaker({ threshold: 1, cooldown: 500, whenOpen: "wait" });
    const { failed } = await outage(breaker);
    expect(failed).toEqual([]);
  });

  it('drains the batch with whenOpen "fail", for comparison', async () => {
    const breaker = new CircuitBreaker({ threshold: 5, cooldown: 500 });
    const { failed } = await outage(breaker);
    expect(failed.length).toBeGreaterThan(500);
    const refused = failed.filter(
      ([, entry]) =>
        ((entry as PromiseRejectedResult).reason as StageExecutionError).originalError instanceof
        BrokenCircuitError,
    );
    expect(refused.length).toBeGreaterThan(500);
  });
});
