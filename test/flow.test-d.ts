import { describe, expectTypeOf, it } from "vitest";
import {
  BrokenCircuitError,
  CircuitBreaker,
  Pipeline,
  PipelineError,
  RateLimiter,
  Stage,
  parseRetryAfter,
} from "../src/index.js";
import type {
  CircuitBreakerOptions,
  CircuitState,
  Context,
  MapOptions,
  PerKeyOptions,
  RateLimitOptions,
  RetryAfter,
  StageCall,
  StageOptions,
  WhenOpen,
} from "../src/index.js";

interface Job {
  host: string;
  id: number;
}

const fetchJob = new Stage("fetch", async (job: Job) => job.id);
const pipeline = new Pipeline([fetchJob]);
const jobs: Job[] = [];

describe("perKey", () => {
  it("types key's item as the pipeline's input, in map, mapSettled and stream", () => {
    void pipeline.map(jobs, {
      perKey: {
        key: (job, index) => {
          expectTypeOf(job).toEqualTypeOf<Job>();
          expectTypeOf(index).toEqualTypeOf<number>();
          return job.host;
        },
        concurrency: 2,
      },
    });
    void pipeline.mapSettled(jobs, 4, { perKey: { key: (job) => job.host, concurrency: 1 } });
    void pipeline.stream(jobs, { settled: true, perKey: { key: (job) => job.id, concurrency: 1 } });
  });

  it("rejects a key that reads what the item does not have, and a missing concurrency", () => {
    // @ts-expect-error `tenant` is not a property of Job
    void pipeline.map(jobs, { perKey: { key: (job): unknown => job.tenant, concurrency: 2 } });
    // @ts-expect-error concurrency is required
    void pipeline.map(jobs, { perKey: { key: (job: Job): string => job.host } });
  });

  it("takes maxWaiting, a number", () => {
    void pipeline.map(jobs, {
      perKey: { key: (job) => job.host, concurrency: 2, maxWaiting: 10_000 },
    });
    expectTypeOf<PerKeyOptions["maxWaiting"]>().toEqualTypeOf<number | undefined>();
    const notACount: PerKeyOptions<Job> = {
      key: (job) => job.host,
      concurrency: 2,
      // @ts-expect-error maxWaiting is a count
      maxWaiting: "10",
    };
    expectTypeOf(notACount).toExtend<PerKeyOptions<Job>>();
  });

  it("is part of MapOptions, with the item type second", () => {
    expectTypeOf<MapOptions<object, Job>["perKey"]>().toEqualTypeOf<
      PerKeyOptions<Job> | undefined
    >();
  });
});

describe("stage options", () => {
  it("take a limiter or its options, a breaker and retryAfter", () => {
    expectTypeOf<StageOptions["rateLimit"]>().toEqualTypeOf<
      RateLimiter | RateLimitOptions | readonly RateLimiter[] | undefined
    >();
    expectTypeOf<StageOptions["circuitBreaker"]>().toEqualTypeOf<CircuitBreaker | undefined>();
    expectTypeOf<StageOptions["retryAfter"]>().toEqualTypeOf<RetryAfter | undefined>();
    new Stage("s", (value: number) => value, {
      // @ts-expect-error a breaker is a CircuitBreaker, not its options
      circuitBreaker: { threshold: 1, cooldown: 1 },
    });
  });

  it("retryAfter returns a number or undefined", () => {
    expectTypeOf(parseRetryAfter).returns.toEqualTypeOf<number | undefined>();
    const fromHeader: RetryAfter = (error) => parseRetryAfter(String(error));
    expectTypeOf(fromHeader).toBeFunction();
    // @ts-expect-error a string is not a wait
    const bad: RetryAfter = () => "5";
    expectTypeOf(bad).toBeFunction();
  });
});

describe("RateLimiter cost and key", () => {
  it("types cost and key by the values they read, and fits any stage", () => {
    const tokens = new RateLimiter({
      limit: 90_000,
      interval: 60_000,
      cost: (prompt: string) => prompt.length / 4,
    });
    expectTypeOf(tokens).toEqualTypeOf<RateLimiter<string>>();
    const perHost = new RateLimiter({
      limit: 2,
      interval: 1_000,
      key: (job: Job, context: { region: string }) => `${context.region}/${job.host}`,
    });
    expectTypeOf<Parameters<typeof perHost.waitingFor>>().toEqualTypeOf<[key: unknown]>();
    expectTypeOf(perHost.waitingFor("a")).toEqualTypeOf<number>();
    const options: StageOptions = { rateLimit: tokens };
    const other: StageOptions = { rateLimit: perHost };
    const both: StageOptions = { rateLimit: [tokens, perHost] };
    expectTypeOf(both).toExtend<StageOptions>();
    expectTypeOf<StageCall["charge"]>().toEqualTypeOf<(limiter: object, actual: number) => void>();
    new Stage("ask", async (prompt: string, _context, call) => {
      call.charge(tokens, prompt.length);
      // @ts-expect-error the actual cost is a number
      call.charge(tokens, "12");
      return prompt;
    });
    expectTypeOf(options).toExtend<StageOptions>();
    expectTypeOf(other).toExtend<StageOptions>();
    expectTypeOf<RateLimitOptions<string>["cost"]>().toEqualTypeOf<
      ((value: string, context: Context) => number) | undefined
    >();
  });

  it("rejects a cost that is not a number and a key that reads what the value does not have", () => {
    // @ts-expect-error a cost is a number of units
    new RateLimiter({ limit: 1, interval: 1, cost: (prompt: string) => prompt });
    // @ts-expect-error `tenant` is not a property of Job
    new RateLimiter({ limit: 1, interval: 1, key: (job: Job): unknown => job.tenant });
  });
});

describe("CircuitBreaker whenOpen, maxWait and key", () => {
  it("takes a wait mode, a maxWait and a key typed by the values it reads", () => {
    const breaker = new CircuitBreaker({
      threshold: 5,
      cooldown: 30_000,
      whenOpen: "wait",
      maxWait: 600_000,
      key: (job: Job) => job.host,
      onStateChange: (state, key) => {
        expectTypeOf(state).toEqualTypeOf<CircuitState>();
        expectTypeOf(key).toEqualTypeOf<unknown>();
      },
    });
    expectTypeOf(breaker).toEqualTypeOf<CircuitBreaker<Job>>();
    expectTypeOf(breaker.stateOf("a.example")).toEqualTypeOf<CircuitState>();
    expectTypeOf<CircuitBreakerOptions["whenOpen"]>().toEqualTypeOf<WhenOpen | undefined>();
    expectTypeOf<WhenOpen>().toEqualTypeOf<"fail" | "wait">();
    const options: StageOptions = { circuitBreaker: breaker };
    expectTypeOf(options).toExtend<StageOptions>();
    // A listener of the state alone still fits.
    new CircuitBreaker({ threshold: 1, cooldown: 1, onStateChange: (state) => state });
  });

  it("rejects another mode and a key that reads what the value does not have", () => {
    // @ts-expect-error "pause" is not a mode
    new CircuitBreaker({ threshold: 1, cooldown: 1, whenOpen: "pause" });
    // @ts-expect-error `tenant` is not a property of Job
    new CircuitBreaker({ threshold: 1, cooldown: 1, key: (job: Job): unknown => job.tenant });
  });
});

describe("readable state", () => {
  it("exposes the limiter's and the breaker's settings and state", () => {
    const limiter = new RateLimiter({ limit: 1, interval: 10 });
    expectTypeOf(limiter.limit).toEqualTypeOf<number>();
    expectTypeOf(limiter.waiting).toEqualTypeOf<number>();
    const breaker = new CircuitBreaker({ threshold: 1, cooldown: 10 });
    expectTypeOf(breaker.state).toEqualTypeOf<CircuitState>();
    expectTypeOf<CircuitState>().toEqualTypeOf<"closed" | "open" | "half-open">();
  });

  it("BrokenCircuitError is a PipelineError with a literal name", () => {
    const error = new BrokenCircuitError("s");
    expectTypeOf(error).toExtend<PipelineError>();
    expectTypeOf(error.name).toEqualTypeOf<"BrokenCircuitError">();
    expectTypeOf(error.stageName).toEqualTypeOf<string>();
    expectTypeOf(error.waited).toEqualTypeOf<number>();
  });
});
