import { describe, expectTypeOf, it } from "vitest";
import { Pipeline, Stage, type Context, type Middleware, type Next } from "../src/index.js";
import {
  loggingMiddleware,
  retryMiddleware,
  timeoutMiddleware,
  timingMiddleware,
  type Middleware as MiddlewareFromBuiltins,
  type TimingContext,
} from "../src/middlewares/index.js";

interface Tenant {
  tenant: string;
}

describe("Middleware type", () => {
  it("has the documented parameters", () => {
    expectTypeOf<Middleware>().parameters.toEqualTypeOf<
      [Next, string, unknown, Context, AbortSignal]
    >();
    expectTypeOf<Middleware<Tenant>>().parameter(3).toEqualTypeOf<Tenant>();
    expectTypeOf<Middleware<Tenant>>().parameter(4).toEqualTypeOf<AbortSignal>();
    expectTypeOf<Middleware>().returns.toBeUnknown();
  });

  it("next takes (value, signal?) and returns Promise<unknown>", () => {
    expectTypeOf<Next>().toEqualTypeOf<
      (value: unknown, signal?: AbortSignal) => Promise<unknown>
    >();
    expectTypeOf<Parameters<Middleware>[0]>().returns.toEqualTypeOf<Promise<unknown>>();
    expectTypeOf<Parameters<Middleware<Tenant>>[0]>().toEqualTypeOf<Next>();

    const mw: Middleware = (next, _stageName, value, _context, signal) => {
      const output = next(value, signal);
      expectTypeOf(output).toEqualTypeOf<Promise<unknown>>();
      // @ts-expect-error -- the second argument must be an AbortSignal
      void next(value, "not a signal");
      // @ts-expect-error -- next needs the value
      void next();
      return output;
    };
    expectTypeOf(mw).toEqualTypeOf<Middleware>();
  });

  it("is the same type from both entry points", () => {
    expectTypeOf<MiddlewareFromBuiltins<Tenant>>().toEqualTypeOf<Middleware<Tenant>>();
  });

  it("Middleware<{ tenant: string }> reads context.tenant as a string", () => {
    const mw: Middleware<Tenant> = (next, _stageName, value, context) => {
      expectTypeOf(context.tenant).toEqualTypeOf<string>();
      if (value === undefined) {
        // @ts-expect-error -- the context type has no `missing`
        return next(context.missing);
      }
      return next(value);
    };
    expectTypeOf(mw).parameter(3).toEqualTypeOf<Tenant>();
  });

  it("accepts sync and async middlewares returning anything", () => {
    const sync: Middleware = () => 42;
    const async: Middleware = async (next, _name, value) => next(value);
    const plain: Middleware = (next, _name, value) => next(value);
    expectTypeOf([sync, async, plain]).toEqualTypeOf<Middleware[]>();
  });

  it("rejects a non-function where a Middleware is expected", () => {
    // @ts-expect-error -- a middleware is a function
    const notAFunction: Middleware = { handle: () => 1 };
    expectTypeOf(notAFunction).toEqualTypeOf<Middleware>();
  });
});

describe("Middleware in a Pipeline", () => {
  it("accepts Middleware<{ tenant: string }> when the stages' context has tenant", () => {
    const mw: Middleware<Tenant> = (next, _stageName, value, context) =>
      next(`${context.tenant}:${String(value)}`);
    const pipeline = new Pipeline(
      [new Stage("s", (v: number, c: { tenant: string }) => v + c.tenant.length)],
      { middlewares: [mw] },
    );
    expectTypeOf(pipeline).toEqualTypeOf<Pipeline<number, number, { tenant: string }>>();
    expectTypeOf<Parameters<typeof pipeline.run>[1]>()
      .exclude<undefined>()
      .toHaveProperty("context")
      .toEqualTypeOf<{ tenant: string } | undefined>();
  });

  it("accepts it when one of several stages needs tenant (the context is their intersection)", () => {
    const mw: Middleware<Tenant> = (next, _stageName, value) => next(value);
    const pipeline = new Pipeline(
      [
        new Stage("a", (v: number, c: { other: number }) => v + c.other),
        new Stage("b", (v: number, c: { tenant: string }) => `${c.tenant}${String(v)}`),
      ],
      { middlewares: [mw] },
    );
    expectTypeOf(pipeline).toEqualTypeOf<
      Pipeline<number, string, { other: number } & { tenant: string }>
    >();
  });

  it("rejects Middleware<{ tenant: string }> when the stages' context type lacks tenant", () => {
    const mw: Middleware<Tenant> = (next, _stageName, value) => next(value);
    const stages = [new Stage("s", (v: number, c: { other: number }) => v + c.other)] as const;
    // @ts-expect-error -- { other: number } has no tenant
    new Pipeline(stages, { middlewares: [mw] });
    // @ts-expect-error -- tenant of the wrong type
    new Pipeline(stages, { middlewares: [mw as Middleware<{ other: string }>] });
  });

  it("gives an inline middleware the pipeline's context type", () => {
    new Pipeline(
      [new Stage("s", (v: number, c: { tenant: string; attempts: number }) => v + c.attempts)],
      {
        middlewares: [
          (next, _stageName, value, context) => {
            expectTypeOf(context).toEqualTypeOf<{ tenant: string; attempts: number }>();
            return next(value);
          },
        ],
      },
    );
  });

  it("rejects a middlewares option that is not an array of middlewares", () => {
    const stages = [new Stage("s", (v: number) => v)] as const;
    const mw: Middleware = (next, _name, value) => next(value);
    // @ts-expect-error -- must be an array
    new Pipeline(stages, { middlewares: mw });
    // @ts-expect-error -- every entry must be a function
    new Pipeline(stages, { middlewares: [mw, "logging"] });
  });
});

describe("built-in middlewares", () => {
  it("are Middleware<object>", () => {
    expectTypeOf(loggingMiddleware()).toEqualTypeOf<Middleware<object>>();
    expectTypeOf(timingMiddleware()).toEqualTypeOf<Middleware<object>>();
    expectTypeOf(retryMiddleware()).toEqualTypeOf<Middleware<object>>();
    expectTypeOf(timeoutMiddleware({ timeout: 1 })).toEqualTypeOf<Middleware<object>>();
  });

  it("are assignable to any pipeline's middlewares", () => {
    const builtins = [
      loggingMiddleware({ logger: console }),
      timingMiddleware(),
      retryMiddleware({ retries: 2, retryDelay: 10, backoff: "exponential", maxRetryDelay: 100 }),
      timeoutMiddleware({ timeout: 1_000 }),
    ];
    expectTypeOf(builtins).toExtend<readonly Middleware<Tenant>[]>();
    expectTypeOf(builtins).toExtend<readonly Middleware<TimingContext>[]>();
    expectTypeOf(builtins).toExtend<readonly Middleware[]>();

    new Pipeline([new Stage("plain", (v: number) => v)], { middlewares: builtins });
    new Pipeline([new Stage("tenant", (v: number, c: { tenant: string }) => v + c.tenant.length)], {
      middlewares: builtins,
    });
    class Session {
      user = "u";
    }
    new Pipeline([new Stage("session", (v: string, c: Session) => v + c.user)], {
      middlewares: [...builtins, timingMiddleware()],
    });
  });

  it("check their option types", () => {
    // @ts-expect-error -- timeout is required
    timeoutMiddleware({});
    // @ts-expect-error -- options are required
    timeoutMiddleware();
    // @ts-expect-error -- timeout is a number
    timeoutMiddleware({ timeout: "1s" });
    // @ts-expect-error -- not a backoff
    retryMiddleware({ backoff: "linear" });
    // The stage's names; the old ones (delay, maxDelay) are deprecated aliases.
    retryMiddleware({ retryDelay: 100, maxRetryDelay: 1_000 });
    // @ts-expect-error -- not an option of retryMiddleware
    retryMiddleware({ retry: 3 });
    // @ts-expect-error -- a logger needs info and error
    loggingMiddleware({ logger: { info: () => undefined } });
    retryMiddleware({
      shouldRetry: (error, attempt) => {
        expectTypeOf(error).toBeUnknown();
        expectTypeOf(attempt).toEqualTypeOf<number>();
        return attempt < 2;
      },
      onRetry: (event) => {
        expectTypeOf(event.stageName).toEqualTypeOf<string>();
        expectTypeOf(event.delay).toEqualTypeOf<number>();
        expectTypeOf(event.attempt).toEqualTypeOf<number>();
      },
    });
  });

  it("TimingContext.timings is an optional record of number arrays", () => {
    expectTypeOf<TimingContext["timings"]>().toEqualTypeOf<Record<string, number[]> | undefined>();
  });
});
