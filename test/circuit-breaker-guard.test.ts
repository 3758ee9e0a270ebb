/**
 * The circuit breaker's rules, tested on the class through the guard the stage's execution
 * calls (`src/internal/gates.ts`), with fake timers: vitest's drive `performance.now()`, the
 * breaker's clock, while `vi.setSystemTime` moves only `Date.now()` (a wall-clock step).
 */
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { BrokenCircuitError, CircuitBreaker, type CircuitState } from "../src/index.js";
import { circuitCount, executionGuardOption } from "../src/flow/circuit-breaker.js";
import { SWEEP_FLOOR } from "../src/flow/keyed.js";
import { guardExecution } from "../src/internal/gates.js";
import { isThenable } from "../src/internal/thenable.js";
import { observe } from "./support/promises.js";
import { flush } from "./support/time.js";

beforeEach(() => {
  vi.useFakeTimers();
  vi.setSystemTime(0);
});

afterEach(() => {
  vi.useRealTimers();
});

/**
 * What the stage's `refuse` does: wraps why the execution did not run (a refusal, or what `key`
 * threw), as `StageExecutionError` with 0 attempts.
 */
class Refused extends Error {
  constructor(readonly reason: unknown) {
    super(reason instanceof Error ? reason.message : String(reason));
  }

  get broken(): BrokenCircuitError {
    expect(this.reason).toBeInstanceOf(BrokenCircuitError);
    return this.reason as BrokenCircuitError;
  }
}
const refuse = (error: unknown): Refused => new Refused(error);

/**
 * A service that is up or down, answering after `latency` ms (0: synchronously); records the
 * time of each call and the value it was called for.
 */
function service(latency = 10) {
  const state = { up: true, calls: [] as [number, unknown][] };
  const call = (value: unknown): unknown => {
    state.calls.push([performance.now(), value]);
    const up = state.up;
    if (latency === 0) {
      if (!up) throw new Error(`down (${String(value)})`);
      return value;
    }
    return new Promise((resolve, reject) => {
      setTimeout(() => {
        if (up) resolve(value);
        else reject(new Error(`down (${String(value)})`));
      }, latency);
    });
  };
  return { state, call };
}

interface Execution {
  readonly settled: ReturnType<typeof observe<unknown>>;
  /** Whether `guard` answered synchronously (no promise). */
  readonly sync: boolean;
  readonly value: unknown;
}

/** One execution through `breaker`: `run` called for `value` (possibly several times). */
function execute(
  breaker: CircuitBreaker,
  run: (value: unknown) => unknown,
  value: unknown,
  options: { signal?: AbortSignal; context?: unknown } = {},
): Execution {
  let answer: unknown;
  try {
    answer = breaker[guardExecution](
      "call",
      value,
      options.context ?? {},
      options.signal,
      refuse,
      () => run(value),
    );
  } catch (error) {
    return { settled: observe(Promise.reject(error)), sync: true, value };
  }
  return {
    settled: observe(Promise.resolve(answer)),
    sync: !isThenable(answer),
    value,
  };
}

function changesOf(): {
  states: [CircuitState, unknown][];
  onStateChange: (state: CircuitState, key: unknown) => void;
} {
  const states: [CircuitState, unknown][] = [];
  return {
    states,
    onStateChange: (state, key) => {
      states.push([state, key]);
    },
  };
}

const stateNames = (states: [CircuitState, unknown][]): CircuitState[] =>
  states.map(([state]) => state);

describe("CircuitBreaker: one trial at a time, monotonic time", () => {
  it("lets no second trial through when onStateChange starts an execution on half-open", async () => {
    const { state: svc, call } = service();
    let listenerRun: Execution | undefined;
    const breaker: CircuitBreaker = new CircuitBreaker({
      threshold: 1,
      cooldown: 100,
      onStateChange: (state) => {
        // A health check started from inside the change.
        if (state === "half-open") listenerRun = execute(breaker, call, "health check");
      },
    });
    svc.up = false;
    execute(breaker, call, "opener");
    await vi.advanceTimersByTimeAsync(10);
    expect(breaker.state).toBe("open");
    await vi.advanceTimersByTimeAsync(100);
    svc.up = true;
    const trial = execute(breaker, call, "trial");
    expect(breaker.state).toBe("half-open");
    await vi.advanceTimersByTimeAsync(0);
    // The listener's execution was refused: the trial was already running.
    expect(listenerRun?.settled.status).toBe("rejected");
    expect(listenerRun?.settled.reason).toBeInstanceOf(Refused);
    await vi.advanceTimersByTimeAsync(10);
    expect(trial.settled.status).toBe("fulfilled");
    expect(breaker.state).toBe("closed");
    expect(svc.calls.map(([, value]) => value)).toEqual(["opener", "trial"]);
  });

  it("in wait mode, queues the listener's execution behind the trial instead", async () => {
    const { state: svc, call } = service();
    let listenerRun: Execution | undefined;
    const breaker: CircuitBreaker = new CircuitBreaker({
      threshold: 1,
      cooldown: 100,
      whenOpen: "wait",
      onStateChange: (state) => {
        if (state === "half-open") listenerRun = execute(breaker, call, "health check");
      },
    });
    svc.up = false;
    const opener = execute(breaker, call, "opener"); // fails, opens, waits, and is the trial
    await vi.advanceTimersByTimeAsync(10);
    svc.up = true;
    await vi.advanceTimersByTimeAsync(100);
    expect(breaker.state).toBe("half-open");
    expect(svc.calls.map(([, value]) => value)).toEqual(["opener", "opener"]);
    await vi.advanceTimersByTimeAsync(20);
    expect(breaker.state).toBe("closed");
    expect(opener.settled.status).toBe("fulfilled");
    expect(listenerRun?.settled.status).toBe("fulfilled");
    expect(svc.calls.map(([, value]) => value)).toEqual(["opener", "opener", "health check"]);
  });

  it("does not keep a circuit open for an hour when the wall clock steps back an hour", async () => {
    const { state: svc, call } = service(0);
    const breaker = new CircuitBreaker({ threshold: 1, cooldown: 1_000 });
    svc.up = false;
    execute(breaker, call, 1);
    expect(breaker.state).toBe("open");
    vi.setSystemTime(Date.now() - 3_600_000);
    await vi.advanceTimersByTimeAsync(999);
    expect(execute(breaker, call, 2).settled.status).toBe("pending"); // refusal: settles later
    await vi.advanceTimersByTimeAsync(1);
    svc.up = true;
    const trial = execute(breaker, call, 3);
    expect(trial.sync).toBe(true);
    expect(breaker.state).toBe("closed");
  });

  it("lets no trial through early when the wall clock steps forward", async () => {
    const { state: svc, call } = service(0);
    const breaker = new CircuitBreaker({ threshold: 1, cooldown: 1_000 });
    svc.up = false;
    execute(breaker, call, 1);
    vi.setSystemTime(Date.now() + 3_600_000);
    await vi.advanceTimersByTimeAsync(500);
    svc.up = true;
    const early = execute(breaker, call, 2);
    await vi.advanceTimersByTimeAsync(0);
    expect(early.settled.reason).toBeInstanceOf(Refused);
    expect(breaker.state).toBe("open");
    expect(svc.calls).toHaveLength(1);
  });

  it("throws what refuse returns, a BrokenCircuitError whose cause opened the circuit", () => {
    const { state: svc, call } = service(0);
    const breaker = new CircuitBreaker({ threshold: 2, cooldown: 1_000 });
    svc.up = false;
    const failures = [execute(breaker, call, 1), execute(breaker, call, 2)].map(
      (entry) => entry.settled,
    );
    let thrown: unknown;
    try {
      breaker[guardExecution]("fetch", 3, {}, undefined, refuse, () => call(3));
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(Refused);
    const broken = (thrown as Refused).broken;
    expect(broken.stageName).toBe("fetch");
    expect(broken.waited).toBe(0);
    expect(broken.cause).toEqual(new Error("down (2)"));
    expect(failures.map((entry) => entry.status)).toEqual(["pending", "pending"]);
  });
});

describe('CircuitBreaker whenOpen: "wait"', () => {
  const waiting = (options: Partial<ConstructorParameters<typeof CircuitBreaker>[0]> = {}) =>
    new CircuitBreaker({ threshold: 2, cooldown: 1_000, whenOpen: "wait", ...options });

  it("costs nothing while closed: a synchronous execution is answered synchronously", () => {
    const { call } = service(0);
    const breaker = waiting();
    const run = execute(breaker, call, 1);
    expect(run.sync).toBe(true);
    expect(vi.getTimerCount()).toBe(0);
  });

  it("pauses instead of draining: every execution of an outage succeeds once it ends", async () => {
    const { states, onStateChange } = changesOf();
    const { state: svc, call } = service();
    const breaker = waiting({ onStateChange });
    svc.up = false;
    const runs = Array.from({ length: 6 }, (_, index) => execute(breaker, call, index));
    await vi.advanceTimersByTimeAsync(10);
    // Two failures opened it: the first was held while the others ran, the second opened it,
    // the other four failed while it was open. All six wait.
    expect(breaker.state).toBe("open");
    const late = execute(breaker, call, "late"); // arrives while open: waits too
    expect(vi.getTimerCount()).toBe(1); // the cooldown's
    await vi.advanceTimersByTimeAsync(999);
    expect(breaker.state).toBe("open");
    await vi.advanceTimersByTimeAsync(1);
    // The cooldown is over: the first waiter is the trial; the service is still down.
    expect(breaker.state).toBe("half-open");
    await vi.advanceTimersByTimeAsync(10);
    expect(breaker.state).toBe("open");
    svc.up = true;
    await vi.advanceTimersByTimeAsync(1_000); // the next trial
    await vi.advanceTimersByTimeAsync(20); // it succeeds, and every waiter runs
    expect(breaker.state).toBe("closed");
    // Every execution ran again. The held one was at the front of the queue, so the first
    // trial (it failed, and went last); the opener was the second, which closed the circuit.
    const all = [...runs, late];
    expect(all.map((run) => run.settled.status)).toEqual(Array<string>(7).fill("fulfilled"));
    expect(all.map((run) => run.settled.value)).toEqual([0, 1, 2, 3, 4, 5, "late"]);
    expect(svc.calls.slice(6, 8).map(([, value]) => value)).toEqual([0, 1]);
    expect(stateNames(states)).toEqual(["open", "half-open", "open", "half-open", "closed"]);
    expect(vi.getTimerCount()).toBe(0);
  });

  it("makes the trials in the order the executions began to wait, a failed trial going last", async () => {
    const { state: svc, call } = service();
    const breaker = waiting({ threshold: 1 });
    svc.up = false;
    const first = execute(breaker, call, "a"); // opens it, waits
    await vi.advanceTimersByTimeAsync(10);
    execute(breaker, call, "b");
    execute(breaker, call, "c");
    await vi.advanceTimersByTimeAsync(1_000); // trial "a" (at 1010) fails at 1020
    await vi.advanceTimersByTimeAsync(1_010); // trial "b" at 2020
    await vi.advanceTimersByTimeAsync(1_010); // trial "c" at 3030
    const trials = svc.calls.slice(1).map(([at, value]) => [at, value]);
    expect(trials).toEqual([
      [1_010, "a"],
      [2_020, "b"],
      [3_030, "c"],
    ]);
    svc.up = true;
    await vi.advanceTimersByTimeAsync(1_020); // trial "a" again, succeeds; b and c follow
    expect(first.settled.status).toBe("fulfilled");
    expect(svc.calls.slice(4).map(([, value]) => value)).toEqual(["a", "b", "c"]);
  });

  it("runs again an execution admitted before the circuit opened that failed after", async () => {
    const breaker = waiting({ threshold: 1 });
    const slow = service(50);
    const fast = service(10);
    slow.state.up = false;
    fast.state.up = false;
    const admittedEarly = execute(breaker, slow.call, "slow"); // fails at 50
    const opener = execute(breaker, fast.call, "fast"); // fails at 10: opens
    await vi.advanceTimersByTimeAsync(50);
    expect(breaker.state).toBe("open");
    expect(admittedEarly.settled.status).toBe("pending"); // waiting, not failed
    slow.state.up = true;
    fast.state.up = true;
    await vi.advanceTimersByTimeAsync(1_100);
    expect([opener.settled.status, admittedEarly.settled.status]).toEqual([
      "fulfilled",
      "fulfilled",
    ]);
    expect(slow.state.calls).toHaveLength(2);
  });

  it("waits and runs again a synchronous execution whose failure opened the circuit", async () => {
    const { state: svc, call } = service(0);
    const breaker = waiting({ threshold: 1 });
    svc.up = false;
    const opener = execute(breaker, call, "sync");
    expect(opener.sync).toBe(false); // it has to wait: a promise
    expect(breaker.state).toBe("open");
    svc.up = true;
    await vi.advanceTimersByTimeAsync(1_000);
    expect(opener.settled.value).toBe("sync");
    expect(svc.calls).toEqual([
      [0, "sync"],
      [1_000, "sync"],
    ]);
  });

  it("fails a lone execution whose failure does not open the circuit at once: nothing can", async () => {
    const { state: svc, call } = service();
    const breaker = waiting({ threshold: 3 });
    svc.up = false;
    const first = execute(breaker, call, 1);
    await vi.advanceTimersByTimeAsync(10);
    expect(first.settled.status).toBe("rejected");
    expect(first.settled.reason).toEqual(new Error("down (1)"));
    expect(breaker.state).toBe("closed");
    expect(vi.getTimerCount()).toBe(0);
  });

  it("holds a failure that does not open the circuit while others run, then runs it again once it opens and closes", async () => {
    const fast = service(10);
    const slow = service(50);
    const breaker = waiting({ threshold: 2, cooldown: 100 });
    fast.state.up = false;
    slow.state.up = false;
    const held = execute(breaker, fast.call, "held"); // fails at 10, while "opener" runs
    const opener = execute(breaker, slow.call, "opener"); // fails at 50: the second, opens it
    await vi.advanceTimersByTimeAsync(10);
    expect(breaker.state).toBe("closed");
    expect(held.settled.status).toBe("pending"); // held: "opener" may yet open the circuit
    expect(vi.getTimerCount()).toBe(1); // the service's own: holding sets none (maxWait ∞)
    await vi.advanceTimersByTimeAsync(40);
    expect(breaker.state).toBe("open");
    fast.state.up = true;
    slow.state.up = true;
    await vi.advanceTimersByTimeAsync(100); // the held one is the trial at 150, ends at 160
    expect(fast.state.calls.map(([at, value]) => [at, value])).toEqual([
      [0, "held"],
      [150, "held"],
    ]);
    await vi.advanceTimersByTimeAsync(60);
    expect([held.settled.value, opener.settled.value]).toEqual(["held", "opener"]);
    expect(breaker.state).toBe("closed");
    expect(vi.getTimerCount()).toBe(0);
  });

  it("releases held failures as they came, at once, when an execution succeeds: the streak is broken", async () => {
    const failing = service(10);
    const healthy = service(30);
    const breaker = waiting({ threshold: 5 });
    failing.state.up = false;
    const a = execute(breaker, failing.call, "a");
    const b = execute(breaker, failing.call, "b");
    execute(breaker, healthy.call, "ok"); // succeeds at 30
    execute(breaker, healthy.call, "ok"); // so does this one
    await vi.advanceTimersByTimeAsync(29);
    expect([a.settled.status, b.settled.status]).toEqual(["pending", "pending"]);
    await vi.advanceTimersByTimeAsync(1);
    expect(a.settled.reason).toEqual(new Error("down (a)"));
    expect(b.settled.reason).toEqual(new Error("down (b)"));
    expect(breaker.state).toBe("closed");
  });

  it("releases held failures when the last execution running settles without opening the circuit", async () => {
    const failing = service(10);
    const later = service(30);
    const breaker = waiting({ threshold: 5 });
    failing.state.up = false;
    later.state.up = false;
    const a = execute(breaker, failing.call, "a");
    const controller = new AbortController();
    const b = execute(breaker, later.call, "b"); // fails at 30: the last one running
    const c = execute(breaker, later.call, "c", { signal: controller.signal });
    await vi.advanceTimersByTimeAsync(20);
    controller.abort(new Error("stop")); // cancelled: counted neither way, but no longer runs
    await vi.advanceTimersByTimeAsync(0);
    expect(a.settled.status).toBe("pending");
    await vi.advanceTimersByTimeAsync(10);
    expect(a.settled.reason).toEqual(new Error("down (a)"));
    expect(b.settled.reason).toEqual(new Error("down (b)"));
    expect(c.settled.status).toBe("rejected");
    expect(breaker.state).toBe("closed");
  });

  it("releases a held failure after maxWait, with its own error", async () => {
    const failing = service(10);
    const slow = service(10_000);
    const breaker = waiting({ threshold: 5, maxWait: 500 });
    failing.state.up = false;
    const held = execute(breaker, failing.call, "held"); // held from 10
    execute(breaker, slow.call, "slow");
    await vi.advanceTimersByTimeAsync(509);
    expect(held.settled.status).toBe("pending");
    await vi.advanceTimersByTimeAsync(1);
    expect(held.settled.reason).toEqual(new Error("down (held)"));
    expect(vi.getTimerCount()).toBe(1); // the slow call's: the hold's is gone
  });

  it("counts a held failure's wait toward maxWait once the circuit opens", async () => {
    const fast = service(10);
    const slow = service(50);
    const breaker = waiting({ threshold: 2, cooldown: 10_000, maxWait: 300 });
    fast.state.up = false;
    slow.state.up = false;
    const held = execute(breaker, fast.call, "held"); // held from 10
    const opener = execute(breaker, slow.call, "opener"); // opens at 50, waits until 350
    await vi.advanceTimersByTimeAsync(309);
    expect(held.settled.status).toBe("pending");
    await vi.advanceTimersByTimeAsync(1);
    const broken = (held.settled.reason as Refused).broken;
    expect(broken.waited).toBe(300);
    expect(broken.cause).toEqual(new Error("down (opener)"));
    expect(opener.settled.status).toBe("pending");
    await vi.advanceTimersByTimeAsync(40);
    expect(opener.settled.status).toBe("rejected");
    expect(vi.getTimerCount()).toBe(0);
  });

  it("ends a hold at once when the signal aborts, with its reason", async () => {
    const failing = service(10);
    const slow = service(1_000);
    const breaker = waiting({ threshold: 5 });
    failing.state.up = false;
    const controller = new AbortController();
    const held = execute(breaker, failing.call, "held", { signal: controller.signal });
    execute(breaker, slow.call, "slow");
    await vi.advanceTimersByTimeAsync(10);
    const reason = new Error("user left");
    controller.abort(reason);
    await vi.advanceTimersByTimeAsync(0);
    expect(held.settled.reason).toBe(reason);
  });

  it('holds nothing with whenOpen "fail": a failure stands at once, others running or not', async () => {
    const failing = service(10);
    const slow = service(1_000);
    const breaker = new CircuitBreaker({ threshold: 5, cooldown: 1_000 });
    failing.state.up = false;
    const first = execute(breaker, failing.call, "first");
    execute(breaker, slow.call, "slow");
    await vi.advanceTimersByTimeAsync(10);
    expect(first.settled.reason).toEqual(new Error("down (first)"));
  });

  it("fails a waiter after maxWait with a BrokenCircuitError, with one timer for the circuit", async () => {
    const { state: svc, call } = service();
    const breaker = waiting({ threshold: 1, cooldown: 10_000, maxWait: 3_000 });
    svc.up = false;
    const opener = execute(breaker, call, "opener");
    await vi.advanceTimersByTimeAsync(10); // opens at 10; waits until 3010
    await vi.advanceTimersByTimeAsync(1_000);
    const later = execute(breaker, call, "later"); // waits until 4010
    expect(vi.getTimerCount()).toBe(1);
    await vi.advanceTimersByTimeAsync(1_999);
    expect(opener.settled.status).toBe("pending");
    await vi.advanceTimersByTimeAsync(1);
    expect(opener.settled.status).toBe("rejected");
    const broken = (opener.settled.reason as Refused).broken;
    expect(broken).toBeInstanceOf(BrokenCircuitError);
    expect(broken.waited).toBe(3_000);
    expect(broken.message).toBe(
      'Circuit still open after waiting 3000 ms: stage "call" was not run',
    );
    expect(broken.cause).toEqual(new Error("down (opener)"));
    expect(vi.getTimerCount()).toBe(1);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(later.settled.status).toBe("rejected");
    expect(vi.getTimerCount()).toBe(0); // nobody waits: the cooldown needs no timer
    expect(breaker.state).toBe("open");
  });

  it("ends a wait at once when the signal aborts, with its reason, leaving no timer", async () => {
    const { state: svc, call } = service();
    const breaker = waiting({ threshold: 1 });
    svc.up = false;
    const controller = new AbortController();
    const opener = execute(breaker, call, "opener", { signal: controller.signal });
    await vi.advanceTimersByTimeAsync(10);
    const reason = new Error("user left");
    const already = execute(breaker, call, "late", { signal: AbortSignal.abort(reason) });
    controller.abort(reason);
    await vi.advanceTimersByTimeAsync(0);
    expect(opener.settled.reason).toBe(reason);
    expect(already.settled.reason).toBe(reason);
    expect(vi.getTimerCount()).toBe(0);
    expect(svc.calls).toHaveLength(1);
  });

  it("lets the next waiter be the trial at once when the trial is cancelled", async () => {
    const { states, onStateChange } = changesOf();
    const { state: svc, call } = service();
    const breaker = waiting({ threshold: 1, onStateChange });
    svc.up = false;
    const controller = new AbortController();
    const cancelled = execute(breaker, call, "a", { signal: controller.signal });
    await vi.advanceTimersByTimeAsync(10);
    const next = execute(breaker, call, "b");
    await vi.advanceTimersByTimeAsync(1_000); // "a" is the trial, running
    expect(svc.calls.map(([, value]) => value)).toEqual(["a", "a"]);
    // Cancelled while it runs: its failure, reported with the signal aborted, counts for nothing.
    controller.abort(new Error("stop"));
    await vi.advanceTimersByTimeAsync(10);
    // The guard passes on what the execution threw (a stage's rejects with the signal's reason).
    expect(cancelled.settled.reason).toEqual(new Error("down (a)"));
    // "b" became the trial when "a"'s failure came in: now it runs, in the same half-open state.
    expect(svc.calls.map(([, value]) => value)).toEqual(["a", "a", "b"]);
    svc.up = true;
    await vi.advanceTimersByTimeAsync(0);
    expect(breaker.state).toBe("half-open");
    expect(stateNames(states)).toEqual(["open", "half-open"]);
    expect(next.settled.status).toBe("pending");
  });

  it("counts a failure from a closed period that has ended neither way, and fails its item when it runs alone", async () => {
    const breaker = waiting({ threshold: 1, cooldown: 100 });
    const slow = service(500);
    const fast = service(10);
    slow.state.up = false;
    fast.state.up = false;
    const old = execute(breaker, slow.call, "old"); // admitted in period 0, fails at 500
    execute(breaker, fast.call, "opener"); // opens at 10
    fast.state.up = true;
    await vi.advanceTimersByTimeAsync(200); // trial at 110 succeeds at 120: closed, period 1
    expect(breaker.state).toBe("closed");
    await vi.advanceTimersByTimeAsync(300);
    expect(old.settled.status).toBe("rejected");
    expect(breaker.state).toBe("closed");
  });

  it.each<[unknown, typeof Error, string]>([
    [{ whenOpen: "pause" }, RangeError, 'whenOpen must be "fail" or "wait", got "pause"'],
    [{ whenOpen: true }, TypeError, 'whenOpen must be "fail" or "wait", got true'],
    [{ whenOpen: "wait", maxWait: 0 }, RangeError, "maxWait must be greater than 0, got 0"],
    [{ whenOpen: "wait", maxWait: -1 }, RangeError, "maxWait must be greater than 0, got -1"],
    [{ whenOpen: "wait", maxWait: "1s" }, TypeError, 'maxWait must be a number, got "1s"'],
    [{ maxWait: 1_000 }, TypeError, 'maxWait applies only with whenOpen: "wait"'],
    [{ whenOpen: "fail", maxWait: 1_000 }, TypeError, 'maxWait applies only with whenOpen: "wait"'],
    [{ key: "host" }, TypeError, 'key must be a function, got "host"'],
    [{ keys: () => 1 }, TypeError, 'unknown option "keys" (did you mean "key"?)'],
  ])("rejects %o at construction", (extra, Kind, message) => {
    const make = () => new CircuitBreaker({ threshold: 1, cooldown: 1, ...(extra as object) });
    expect(make).toThrow(Kind);
    expect(make).toThrow(message);
  });

  it("is the guard of the circuitBreaker stage option, from any copy of the package", async () => {
    const breaker = waiting();
    expect(executionGuardOption(breaker)).toBe(breaker);
    expect(executionGuardOption(undefined)).toBeUndefined();
    expect(() => executionGuardOption({ threshold: 1, cooldown: 1 })).toThrow(
      new TypeError("circuitBreaker must be a CircuitBreaker, got an object"),
    );
    vi.resetModules();
    const copy = await import("../src/index.js");
    const theirs = new copy.CircuitBreaker({ threshold: 1, cooldown: 1 });
    expect(executionGuardOption(theirs)).toBe(theirs);
  });

  it("accepts maxWait: Infinity, the default", () => {
    expect(() => waiting({ maxWait: Infinity })).not.toThrow();
  });
});

describe("CircuitBreaker: key", () => {
  interface Request {
    readonly host: string;
  }
  const perHost = (
    options: { whenOpen?: "wait"; onStateChange?: (s: CircuitState, k: unknown) => void } = {},
  ) =>
    new CircuitBreaker({
      threshold: 1,
      cooldown: 1_000,
      key: (request: Request) => request.host,
      ...options,
    });

  it("gives each key a circuit of its own, told to onStateChange with its key", async () => {
    const { states, onStateChange } = changesOf();
    const breaker = perHost({ onStateChange });
    const { state: svc, call } = service(0);
    svc.up = false;
    execute(breaker, call, { host: "down.example" });
    svc.up = true;
    const other = execute(breaker, call, { host: "up.example" });
    const refused = execute(breaker, call, { host: "down.example" });
    await vi.advanceTimersByTimeAsync(0);
    expect(other.settled.status).toBe("fulfilled");
    expect(refused.settled.reason).toBeInstanceOf(Refused);
    expect(breaker.stateOf("down.example")).toBe("open");
    expect(breaker.stateOf("up.example")).toBe("closed");
    expect(breaker.stateOf("never.seen")).toBe("closed");
    expect(breaker.state).toBe("closed"); // the circuit of the key undefined
    expect(states).toEqual([["open", "down.example"]]);
  });

  it("holds no key without a key option: every execution shares one circuit", () => {
    const breaker = new CircuitBreaker({ threshold: 1, cooldown: 1_000 });
    const { state: svc, call } = service(0);
    svc.up = false;
    execute(breaker, call, { host: "a" });
    expect(breaker[circuitCount]).toBe(0);
    expect([breaker.state, breaker.stateOf("b"), breaker.stateOf(undefined)]).toEqual([
      "open",
      "open",
      "open",
    ]);
  });

  it("reads the context, and compares keys as a Map does", () => {
    const breaker = new CircuitBreaker({
      threshold: 1,
      cooldown: 1_000,
      key: (index: number, context: { keys: unknown[] }) => context.keys[index],
    });
    const { state: svc, call } = service(0);
    const context = { keys: [Number.NaN, Number.NaN, 0, -0] };
    svc.up = false;
    execute(breaker, call, 0, { context });
    execute(breaker, call, 2, { context });
    svc.up = true;
    expect(execute(breaker, call, 1, { context }).sync).toBe(true); // refused: thrown at once
    expect(breaker.stateOf(Number.NaN)).toBe("open");
    expect(breaker.stateOf(-0)).toBe("open");
    expect(svc.calls).toHaveLength(2);
  });

  it("fails the execution with what key throws, through refuse, before anything runs", () => {
    const problem = new TypeError("no host");
    const breaker = new CircuitBreaker({
      threshold: 1,
      cooldown: 1_000,
      key: () => {
        throw problem;
      },
    });
    const { state: svc, call } = service(0);
    let thrown: unknown;
    try {
      breaker[guardExecution]("call", 1, {}, undefined, refuse, () => call(1));
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(Refused);
    expect((thrown as Refused).reason).toBe(problem);
    expect(svc.calls).toHaveLength(0);
  });

  it("drops idle circuits: tens of thousands of hosts do not stay in memory", async () => {
    const breaker = perHost();
    // Executions that end when the test says: 100 start per step, each runs 10 steps, so about
    // 1,000 circuits are busy (running) at a time.
    const steps: (() => void)[][] = [];
    const run = (): Promise<void> =>
      new Promise((resolve) => {
        (steps.at(-1) as (() => void)[]).push(resolve);
      });
    let most = 0;
    for (let step = 0; step < 300; step++) {
      steps.push([]);
      for (let index = 0; index < 100; index++) {
        execute(breaker, run, { host: `host-${String(step)}-${String(index)}` });
        most = Math.max(most, breaker[circuitCount]);
      }
      for (const resolve of steps[step - 10] ?? []) resolve();
      await flush();
    }
    // About three times the busy circuits at most, however many keys came and went: 30,000.
    expect(most).toBeLessThanOrEqual(3 * 1_000 + SWEEP_FLOOR);
  });

  it("keeps a circuit that is open or counting failures, however many others come", () => {
    const breaker = new CircuitBreaker({
      threshold: 2,
      cooldown: 1_000,
      key: (request: Request) => request.host,
    });
    const { state: svc, call } = service(0);
    svc.up = false;
    execute(breaker, call, { host: "counting" }); // one failure of two
    execute(breaker, call, { host: "open" });
    execute(breaker, call, { host: "open" });
    svc.up = true;
    let most = 0;
    for (let index = 0; index < 10_000; index++) {
      execute(breaker, call, { host: `h${String(index)}` });
      most = Math.max(most, breaker[circuitCount]);
    }
    expect(most).toBeLessThanOrEqual(2 * SWEEP_FLOOR + 2); // the others were swept
    expect(breaker.stateOf("open")).toBe("open");
    svc.up = false;
    execute(breaker, call, { host: "counting" }); // the second failure in a row
    expect(breaker.stateOf("counting")).toBe("open");
  });

  it("waits per key: one host's outage pauses its own executions only", async () => {
    const breaker = perHost({ whenOpen: "wait" });
    const down = service(10);
    const up = service(10);
    down.state.up = false;
    const paused = execute(breaker, down.call, { host: "down" });
    await vi.advanceTimersByTimeAsync(10);
    const other = execute(breaker, up.call, { host: "up" });
    await vi.advanceTimersByTimeAsync(10);
    expect(other.settled.status).toBe("fulfilled");
    expect(paused.settled.status).toBe("pending");
    down.state.up = true;
    await vi.advanceTimersByTimeAsync(1_000);
    expect(paused.settled.status).toBe("fulfilled");
    expect(breaker[circuitCount]).toBe(2); // both idle now, dropped when new keys come
  });
});
