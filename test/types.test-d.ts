/* eslint-disable @typescript-eslint/unbound-method -- expectTypeOf(pipeline.run) only reads the method's type */
import { describe, expectTypeOf, it } from "vitest";
import { Pipeline, Stage } from "../src/index.js";
import type { Backoff, Context, Handler, PipelineOptions, StageCall } from "../src/index.js";

const parse = new Stage("parse", (line: string) => Number.parseInt(line, 10));
const square = new Stage("square", async (value: number) => value * value);
const format = new Stage("format", (value: number) => `=${String(value)}`);

describe("Pipeline<I, O, C> is inferred from the stages", () => {
  it("takes the first stage's input and the last stage's output", () => {
    const pipeline = new Pipeline([parse, square, format]);
    expectTypeOf(pipeline).toEqualTypeOf<Pipeline<string, string>>();
    expectTypeOf(pipeline.run).parameter(0).toEqualTypeOf<string>();
    expectTypeOf(pipeline.run).returns.resolves.toEqualTypeOf<string>();
  });

  it("infers a single stage pipeline", () => {
    const pipeline = new Pipeline([square]);
    expectTypeOf(pipeline).toEqualTypeOf<Pipeline<number, number>>();
    expectTypeOf(pipeline.run(2)).toEqualTypeOf<Promise<number>>();
  });

  it("infers inline stages", () => {
    const pipeline = new Pipeline([
      new Stage("toDate", (ms: number) => new Date(ms)),
      new Stage("iso", async (date: Date) => date.toISOString()),
      new Stage("length", (iso: string) => iso.length),
    ]);
    expectTypeOf(pipeline.run).parameter(0).toEqualTypeOf<number>();
    expectTypeOf(pipeline.run).returns.resolves.toEqualTypeOf<number>();
  });

  it("types map as Promise<O[]> and mapSettled as Promise<PromiseSettledResult<O>[]>", () => {
    const pipeline = new Pipeline([parse, square, format]);
    expectTypeOf(pipeline.map(["1"])).toEqualTypeOf<Promise<string[]>>();
    expectTypeOf(pipeline.map(new Set(["1"]), 2)).toEqualTypeOf<Promise<string[]>>();
    expectTypeOf(pipeline.map(["1"], { concurrency: 2 })).toEqualTypeOf<Promise<string[]>>();
    expectTypeOf(pipeline.mapSettled(["1"])).toEqualTypeOf<
      Promise<PromiseSettledResult<string>[]>
    >();
    expectTypeOf(
      pipeline.mapSettled(["1"], 3, { signal: new AbortController().signal }),
    ).toEqualTypeOf<Promise<PromiseSettledResult<string>[]>>();
  });

  it("accepts any Iterable or AsyncIterable of the input type in map", () => {
    const pipeline = new Pipeline([square]);
    async function* numbers(): AsyncGenerator<number> {
      yield 1;
    }
    function* syncNumbers(): Generator<number> {
      yield 1;
    }
    expectTypeOf(pipeline.map(numbers())).toEqualTypeOf<Promise<number[]>>();
    expectTypeOf(pipeline.map(syncNumbers(), 2)).toEqualTypeOf<Promise<number[]>>();
    expectTypeOf(pipeline.mapSettled(numbers(), { concurrency: 1 })).toEqualTypeOf<
      Promise<PromiseSettledResult<number>[]>
    >();
    // @ts-expect-error the items must be of the pipeline's input type
    void pipeline.map(["1", "2"]);
    async function* strings(): AsyncGenerator<string> {
      yield "x";
    }
    // @ts-expect-error an async iterable of the wrong type too
    void pipeline.mapSettled(strings());
    // @ts-expect-error the concurrency is a number
    void pipeline.map([1], "5");
  });

  it("infers from a non-literal array of stages of one type", () => {
    const stages: Stage<number, number>[] = [square, square];
    const pipeline = new Pipeline(stages);
    expectTypeOf(pipeline.run).parameter(0).toEqualTypeOf<number>();
    expectTypeOf(pipeline.run).returns.resolves.toEqualTypeOf<number>();
  });

  it("types the stages getter as a readonly list", () => {
    const pipeline = new Pipeline([parse, square]);
    expectTypeOf(pipeline.stages).toExtend<readonly Stage<unknown, unknown, object>[]>();
    // @ts-expect-error the list is readonly
    pipeline.stages.push(square); // eslint-disable-line @typescript-eslint/no-unsafe-call
  });
});

describe("the stages must chain", () => {
  it("rejects a stage whose input does not accept the previous stage's output", () => {
    // @ts-expect-error square returns a number, parse takes a string
    new Pipeline([square, parse]);
    // @ts-expect-error a string output cannot feed a number input
    new Pipeline([parse, format, square]);
    // @ts-expect-error the mismatch is caught at any position
    new Pipeline([parse, square, format, format]);
  });

  it("accepts a stage whose input is wider than the previous output", () => {
    const anything = new Stage("describe", (value: unknown) => typeof value);
    const numberOrString = new Stage("show", (value: number | string) => String(value));
    const pipeline = new Pipeline([parse, numberOrString, anything]);
    expectTypeOf(pipeline.run).parameter(0).toEqualTypeOf<string>();
    expectTypeOf(pipeline.run).returns.resolves.toEqualTypeOf<
      "string" | "number" | "bigint" | "boolean" | "symbol" | "undefined" | "object" | "function"
    >();
  });

  it("rejects a stage whose input is narrower than the previous output", () => {
    const maybe = new Stage("maybe", (value: string) => (value === "" ? undefined : value));
    const needsString = new Stage("needsString", (value: string) => value.length);
    // @ts-expect-error string | undefined does not fit string
    new Pipeline([maybe, needsString]);
  });

  it("rejects an empty literal list", () => {
    // @ts-expect-error a pipeline needs at least one stage
    new Pipeline([]);
  });

  it("rejects entries that are not stages", () => {
    // @ts-expect-error a function is not a Stage
    new Pipeline([(value: number) => value]);
  });
});

describe("run's input is type-checked", () => {
  it("rejects an input of the wrong type", () => {
    const pipeline = new Pipeline([square]);
    // @ts-expect-error the pipeline takes a number
    void pipeline.run("x");
    // @ts-expect-error the input is required
    void pipeline.run();
    expectTypeOf(pipeline.run).parameter(0).toEqualTypeOf<number>();
  });

  it("types the run options", () => {
    const pipeline = new Pipeline([square]);
    void pipeline.run(1, { signal: new AbortController().signal });
    // @ts-expect-error signal must be an AbortSignal
    void pipeline.run(1, { signal: "abort" });
    // @ts-expect-error unknown option
    void pipeline.run(1, { timeout: 5 });
  });
});

describe("Stage<I, O, C>", () => {
  it("infers Stage<I, O> from a sync handler returning O and an async one returning Promise<O>", () => {
    const sync = new Stage("sync", (value: number) => String(value));
    const async = new Stage("async", async (value: number) => String(value));
    const thenable = new Stage("thenable", (value: number) => Promise.resolve(value > 0));
    expectTypeOf(sync).toEqualTypeOf<Stage<number, string>>();
    expectTypeOf(async).toEqualTypeOf<Stage<number, string>>();
    expectTypeOf(thenable).toEqualTypeOf<Stage<number, boolean>>();
    expectTypeOf(sync.run(1)).toEqualTypeOf<Promise<string>>();
    expectTypeOf(async.run(1)).toEqualTypeOf<Promise<string>>();
  });

  it("types the handler's call parameter as StageCall", () => {
    new Stage("inspect", (value: number, context, call) => {
      expectTypeOf(call).toEqualTypeOf<StageCall>();
      expectTypeOf(call.signal).toEqualTypeOf<AbortSignal>();
      expectTypeOf(call.attempt).toEqualTypeOf<number>();
      expectTypeOf(call.stageName).toEqualTypeOf<string>();
      expectTypeOf(context).toEqualTypeOf<Context>();
      return value;
    });
    expectTypeOf<Handler<number, string>>().parameter(2).toEqualTypeOf<StageCall>();
    expectTypeOf<Handler<number, string>>().returns.toEqualTypeOf<string | PromiseLike<string>>();
  });

  it("makes StageCall read-only", () => {
    new Stage("inspect", (value: number, _context, call) => {
      // @ts-expect-error attempt is readonly
      call.attempt = 2;
      return value;
    });
  });

  it("types the readable getters", () => {
    const stage = new Stage("s", (value: number) => value, {
      timeout: 100,
      retries: 2,
      retryDelay: 10,
      backoff: "exponential",
    });
    expectTypeOf(stage.name).toEqualTypeOf<string>();
    expectTypeOf(stage.timeout).toEqualTypeOf<number | undefined>();
    expectTypeOf(stage.retries).toEqualTypeOf<number>();
    expectTypeOf(stage.retryDelay).toEqualTypeOf<number>();
    expectTypeOf(stage.backoff).toEqualTypeOf<Backoff>();
    expectTypeOf<Backoff>().toEqualTypeOf<"fixed" | "exponential">();
    // @ts-expect-error the getters are read-only
    stage.name = "other";
  });

  it("checks the stage options", () => {
    // @ts-expect-error backoff is "fixed" or "exponential"
    new Stage("s", (value: number) => value, { backoff: "linear" });
    // @ts-expect-error timeout is a number
    new Stage("s", (value: number) => value, { timeout: "1s" });
  });
});

describe("typed context", () => {
  class Session {
    user = "ada";
    roles: string[] = [];
    isAdmin(): boolean {
      return this.roles.includes("admin");
    }
  }

  it("requires the context a stage declares in run options", () => {
    const greet = new Stage(
      "greet",
      (value: number, ctx: { user: string }) => `${ctx.user}${String(value)}`,
    );
    expectTypeOf(greet).toEqualTypeOf<Stage<number, string, { user: string }>>();
    const pipeline = new Pipeline([greet]);
    void pipeline.run(1, { context: { user: "ada" } });
    // @ts-expect-error the context lacks `user`
    void pipeline.run(1, { context: { other: 1 } });
    // @ts-expect-error `user` must be a string
    void pipeline.run(1, { context: { user: 1 } });
    const other = { other: 1 };
    // @ts-expect-error not only an excess-property check: a variable without `user` fails too
    void pipeline.run(1, { context: other });
    void pipeline.map([1], { context: { user: "ada" } });
    // @ts-expect-error the map template is checked too
    void pipeline.map([1], 2, { context: { other: 1 } });
    // @ts-expect-error and the mapSettled one
    void pipeline.mapSettled([1], { context: {} });
  });

  it("combines the contexts of several stages", () => {
    const first = new Stage(
      "first",
      (value: number, ctx: { user: string }) => ctx.user.length + value,
    );
    const second = new Stage(
      "second",
      (value: number, ctx: { tenant: string }) => `${ctx.tenant}${String(value)}`,
    );
    const pipeline = new Pipeline([first, second]);
    void pipeline.run(1, { context: { user: "ada", tenant: "acme" } });
    // @ts-expect-error `tenant` is missing
    void pipeline.run(1, { context: { user: "ada" } });
  });

  it("types the hooks' context from the stages", () => {
    const greet = new Stage(
      "greet",
      (value: number, ctx: { user: string }) => `${ctx.user}${String(value)}`,
    );
    new Pipeline([greet], {
      beforeStage: (name, input, ctx) => {
        expectTypeOf(name).toEqualTypeOf<string>();
        expectTypeOf(input).toEqualTypeOf<unknown>();
        expectTypeOf(ctx).toEqualTypeOf<{ user: string }>();
      },
      afterStage: (name, input, output, error, ctx) => {
        expectTypeOf(name).toEqualTypeOf<string>();
        expectTypeOf(input).toEqualTypeOf<unknown>();
        expectTypeOf(output).toEqualTypeOf<unknown>();
        expectTypeOf(error).toEqualTypeOf<unknown>();
        expectTypeOf(ctx).toEqualTypeOf<{ user: string }>();
      },
    });
    new Pipeline([greet], {
      // @ts-expect-error a hook cannot require a context the stages do not provide
      beforeStage: (_name: string, _input: unknown, ctx: { tenant: number }) => ctx.tenant,
    });
  });

  it("accepts hooks with fewer parameters", () => {
    const options: PipelineOptions = {
      beforeStage: () => undefined,
      afterStage: (name: string) => name,
    };
    new Pipeline([square], options);
  });

  it("accepts a class instance as the default context", () => {
    const pipeline = new Pipeline([square, format]);
    void pipeline.run(1, { context: new Session() });
    void pipeline.map([1], { context: new Session() });
    void pipeline.run(1, { context: new Map<string, number>() });
    void new Stage("s", (value: number) => value).run(1, { context: new Session() });
    // @ts-expect-error a context must be an object
    void pipeline.run(1, { context: "ctx" });
  });

  it("accepts a class type as a stage's context", () => {
    const admin = new Stage(
      "admin",
      (value: number, session: Session) => session.isAdmin() && value > 0,
    );
    const pipeline = new Pipeline([admin]);
    expectTypeOf(pipeline).toEqualTypeOf<Pipeline<number, boolean, Session>>();
    void pipeline.run(1, { context: new Session() });
    // @ts-expect-error a plain object without the methods is not a Session
    void pipeline.run(1, { context: { user: "ada", roles: [] } });
  });
});

describe("context inference with inline stages", () => {
  it("keeps a typed context when an inline stage sits next to it", () => {
    interface Tenant {
      tenant: string;
    }
    const typed = new Stage("b", (n: number, context: Tenant) => n + context.tenant.length);
    const pipeline = new Pipeline([new Stage("a", (line: string) => line.length), typed]);
    expectTypeOf(pipeline).toEqualTypeOf<Pipeline<string, number, Tenant>>();
    // @ts-expect-error the context must have a tenant
    void pipeline.run("x", { context: { other: 1 } });
  });
});
