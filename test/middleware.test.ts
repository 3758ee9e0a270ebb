import { getEventListeners } from "node:events";
import { afterEach, describe, expect, it, vi } from "vitest";
import {
  Pipeline,
  Stage,
  StageExecutionError,
  type Context,
  type Middleware,
  type Next,
  type StageCall,
} from "../src/index.js";
import { never, observe, rejectionOf, type Observed } from "./support/promises.js";
import { abortListeners } from "./support/signals.js";
import { flush } from "./support/time.js";

afterEach(() => {
  vi.useRealTimers();
  vi.restoreAllMocks();
});

describe("middleware: order", () => {
  it("runs the first middleware outermost: a → b → c → stage → c → b → a", async () => {
    const events: string[] = [];
    const named =
      (name: string): Middleware =>
      async (next, _stageName, value) => {
        events.push(`${name} enter`);
        const output = await next(value);
        events.push(`${name} exit`);
        return output;
      };
    const pipeline = new Pipeline(
      [
        new Stage("s", (value: number) => {
          events.push("stage");
          return value + 1;
        }),
      ],
      { middlewares: [named("a"), named("b"), named("c")] },
    );

    await expect(pipeline.run(1)).resolves.toBe(2);
    expect(events).toEqual([
      "a enter",
      "b enter",
      "c enter",
      "stage",
      "c exit",
      "b exit",
      "a exit",
    ]);
  });

  it("runs beforeStage → chain → stage → afterStage for each stage", async () => {
    const events: string[] = [];
    const pipeline = new Pipeline(
      [
        new Stage("first", async (value: number) => {
          events.push("stage first");
          return value + 1;
        }),
        new Stage("second", (value: number) => {
          events.push("stage second");
          return value * 2;
        }),
      ],
      {
        beforeStage: (name) => {
          events.push(`before ${name}`);
        },
        afterStage: (name) => {
          events.push(`after ${name}`);
        },
        middlewares: [
          async (next, name, value) => {
            events.push(`mw enter ${name}`);
            const output = await next(value);
            events.push(`mw exit ${name}`);
            return output;
          },
        ],
      },
    );

    await expect(pipeline.run(1)).resolves.toBe(4);
    expect(events).toEqual([
      "before first",
      "mw enter first",
      "stage first",
      "mw exit first",
      "after first",
      "before second",
      "mw enter second",
      "stage second",
      "mw exit second",
      "after second",
    ]);
  });

  it("passes each stage's own name and input to the chain of a 3-stage pipeline", async () => {
    const calls: [string, unknown][] = [];
    const pipeline = new Pipeline(
      [
        new Stage("parse", (line: string) => Number.parseInt(line, 10)),
        new Stage("square", async (value: number) => value * value),
        new Stage("show", (value: number) => `=${String(value)}`),
      ],
      {
        middlewares: [
          (next, stageName, value) => {
            calls.push([stageName, value]);
            return next(value);
          },
        ],
      },
    );

    await expect(pipeline.run("7")).resolves.toBe("=49");
    expect(calls).toEqual([
      ["parse", "7"],
      ["square", 7],
      ["show", 49],
    ]);
  });
});

describe("middleware: changing values, outputs and errors", () => {
  it("can change the value passed to next", async () => {
    const handler = vi.fn((value: number) => value * 10);
    const pipeline = new Pipeline([new Stage("s", handler)], {
      middlewares: [(next, _name, value) => next((value as number) + 1)],
    });

    await expect(pipeline.run(1)).resolves.toBe(20);
    expect(handler).toHaveBeenCalledWith(2);
  });

  it("can change the output, and the next stage receives the changed output", async () => {
    const second = vi.fn((value: unknown) => `${String(value)}!`);
    const pipeline = new Pipeline(
      [new Stage("first", (value: number) => value), new Stage("second", second)],
      {
        middlewares: [
          async (next, name, value) => {
            const output = await next(value);
            return name === "first" ? `changed ${String(output)}` : output;
          },
        ],
      },
    );

    await expect(pipeline.run(5)).resolves.toBe("changed 5!");
    expect(second).toHaveBeenCalledWith("changed 5");
  });

  it("can replace the stage's error: afterStage and the caller get the replacement, unwrapped", async () => {
    class DomainError extends Error {}
    const replacement = new DomainError("translated");
    let seenByMiddleware: unknown;
    const afterErrors: unknown[] = [];
    const pipeline = new Pipeline(
      [
        new Stage("s", (): number => {
          throw new Error("raw");
        }),
      ],
      {
        afterStage: (_name, _input, _output, error) => {
          afterErrors.push(error);
        },
        middlewares: [
          async (next, _name, value) => {
            try {
              return await next(value);
            } catch (error) {
              seenByMiddleware = error;
              throw replacement;
            }
          },
        ],
      },
    );

    const error = await rejectionOf(pipeline.run(1));
    expect(error).toBe(replacement);
    expect(error).not.toBeInstanceOf(StageExecutionError);
    expect(afterErrors).toEqual([replacement]);
    expect(afterErrors[0]).toBe(replacement);
    expect(seenByMiddleware).toBeInstanceOf(StageExecutionError);
  });

  it("can turn a failure into a success", async () => {
    const pipeline = new Pipeline(
      [
        new Stage("s", (): number => {
          throw new Error("raw");
        }),
        new Stage("t", (value: number) => value + 1),
      ],
      {
        middlewares: [
          async (next, name, value) => {
            try {
              return await next(value);
            } catch {
              return name === "s" ? 100 : Number.NaN;
            }
          },
        ],
      },
    );

    await expect(pipeline.run(1)).resolves.toBe(101);
  });

  it("can short-circuit: the stage handler is not called and the middleware's value is the output", async () => {
    const handler = vi.fn((value: number) => value);
    const pipeline = new Pipeline([new Stage("s", handler), new Stage("t", (v: number) => v * 2)], {
      middlewares: [(next, name, value) => (name === "s" ? 21 : next(value))],
    });

    await expect(pipeline.run(1)).resolves.toBe(42);
    expect(handler).not.toHaveBeenCalled();
  });

  it("can call next twice: the stage runs twice", async () => {
    const handler = vi.fn(async (value: number) => value + 1);
    const pipeline = new Pipeline([new Stage("s", handler)], {
      middlewares: [
        async (next, _name, value) => {
          const first = (await next(value)) as number;
          const second = (await next(first)) as number;
          return second;
        },
      ],
    });

    await expect(pipeline.run(1)).resolves.toBe(3);
    expect(handler).toHaveBeenCalledTimes(2);
    expect(handler.mock.calls.map((call) => call[0])).toEqual([1, 2]);
  });

  it("accepts a synchronous middleware that returns a plain value", async () => {
    const pipeline = new Pipeline([new Stage("s", (value: number) => value)], {
      middlewares: [(): unknown => "plain"],
    });

    await expect(pipeline.run(1)).resolves.toBe("plain");
  });

  it("accepts a synchronous middleware that returns next's promise", async () => {
    const pipeline = new Pipeline([new Stage("s", async (value: number) => value * 3)], {
      middlewares: [(next: Next, _name: string, value: unknown) => next(value)],
    });

    await expect(pipeline.run(2)).resolves.toBe(6);
  });

  it("mixes sync and async middlewares around sync and async stages", async () => {
    const pipeline = new Pipeline(
      [
        new Stage("a", (value: number) => value + 1),
        new Stage("b", async (value: number) => value * 2),
      ],
      {
        middlewares: [
          async (next, _name, value) => ((await next(value)) as number) + 100,
          (next, _name, value) => next(value),
        ],
      },
    );

    // a: (1 + 1) + 100 = 102; b: 102 * 2 + 100 = 304
    await expect(pipeline.run(1)).resolves.toBe(304);
  });

  it("lets a middleware's synchronous throw reach the caller and afterStage as thrown", async () => {
    const thrown = new RangeError("from middleware");
    const handler = vi.fn((value: number) => value);
    const afterErrors: unknown[] = [];
    const pipeline = new Pipeline([new Stage("s", handler)], {
      afterStage: (_name, _input, _output, error) => {
        afterErrors.push(error);
      },
      middlewares: [
        () => {
          throw thrown;
        },
      ],
    });

    const error = await rejectionOf(pipeline.run(1));
    expect(error).toBe(thrown);
    expect(afterErrors).toEqual([thrown]);
    expect(handler).not.toHaveBeenCalled();
  });

  it("lets a middleware's thrown non-Error value reach the caller as is", async () => {
    const pipeline = new Pipeline([new Stage("s", (value: number) => value)], {
      middlewares: [
        async () => {
          throw "a string";
        },
      ],
    });

    await expect(pipeline.run(1)).rejects.toBe("a string");
  });

  it("still wraps the stage's own failure in StageExecutionError through the chain", async () => {
    const original = new TypeError("stage broke");
    const seen: unknown[] = [];
    const pipeline = new Pipeline(
      [
        new Stage("broken", async (): Promise<number> => {
          throw original;
        }),
      ],
      {
        middlewares: [
          async (next, _name, value) => {
            try {
              return await next(value);
            } catch (error) {
              seen.push(error);
              throw error;
            }
          },
          (next, _name, value) => next(value),
        ],
      },
    );

    const error = (await rejectionOf(pipeline.run(1))) as StageExecutionError;
    expect(error).toBeInstanceOf(StageExecutionError);
    expect(error.stageName).toBe("broken");
    expect(error.originalError).toBe(original);
    expect(error.attempts).toBe(1);
    expect(seen).toEqual([error]);
    expect(seen[0]).toBe(error);
  });

  it("stops the pipeline at a failed stage: later stages and their middlewares do not run", async () => {
    const names: string[] = [];
    const later = vi.fn((value: number) => value);
    const pipeline = new Pipeline(
      [
        new Stage("fails", (): number => {
          throw new Error("no");
        }),
        new Stage("later", later),
      ],
      {
        middlewares: [
          (next, name, value) => {
            names.push(name);
            return next(value);
          },
        ],
      },
    );

    await expect(pipeline.run(1)).rejects.toBeInstanceOf(StageExecutionError);
    expect(names).toEqual(["fails"]);
    expect(later).not.toHaveBeenCalled();
  });
});

describe("middleware: context", () => {
  it("gets the run's context object, the very one the stage and hooks get", async () => {
    const context = { tenant: "acme" };
    const seen: unknown[] = [];
    const pipeline = new Pipeline(
      [
        new Stage("a", (value: number, ctx: { tenant: string }) => {
          seen.push(["stage a", ctx]);
          return value;
        }),
        new Stage("b", async (value: number, ctx: { tenant: string }) => {
          seen.push(["stage b", ctx]);
          return value;
        }),
      ],
      {
        beforeStage: (_name, _input, ctx) => {
          seen.push(["before", ctx]);
        },
        middlewares: [
          (next, name, value, ctx) => {
            seen.push([`mw ${name}`, ctx]);
            return next(value);
          },
        ],
      },
    );

    await pipeline.run(1, { context });
    expect(seen).toHaveLength(6);
    for (const [, ctx] of seen as [string, unknown][]) expect(ctx).toBe(context);
  });

  it("gives the middleware and the stage one shared new object when run gets no context", async () => {
    const fromMiddleware: object[] = [];
    const fromStage: object[] = [];
    const pipeline = new Pipeline(
      [
        new Stage("a", (value: number, ctx: Context) => {
          fromStage.push(ctx);
          return value;
        }),
        new Stage("b", (value: number, ctx: Context) => {
          fromStage.push(ctx);
          return value;
        }),
      ],
      {
        middlewares: [
          (next, _name, value, ctx) => {
            fromMiddleware.push(ctx);
            return next(value);
          },
        ],
      },
    );

    await pipeline.run(1);
    await pipeline.run(2);
    expect(fromMiddleware).toHaveLength(4);
    expect(typeof fromMiddleware[0]).toBe("object");
    expect(fromMiddleware[0]).toBe(fromStage[0]);
    expect(fromMiddleware[1]).toBe(fromStage[0]);
    expect(fromStage[1]).toBe(fromStage[0]);
    // a new context per run
    expect(fromMiddleware[2]).toBe(fromStage[2]);
    expect(fromMiddleware[2]).not.toBe(fromMiddleware[0]);
  });

  it("lets a middleware write to the context for the stage to read", async () => {
    const pipeline = new Pipeline(
      [new Stage("s", (value: number, ctx: { factor?: number }) => value * (ctx.factor ?? 1))],
      {
        middlewares: [
          (next, _name, value, ctx) => {
            ctx.factor = 3;
            return next(value);
          },
        ],
      },
    );

    await expect(pipeline.run(5, { context: {} })).resolves.toBe(15);
  });

  it("works in map() with hooks: one context per item, shared by hooks, middleware and stage", async () => {
    const template = { tenant: "acme" };
    const byItem = new Map<number, object[]>();
    const note = (item: number, ctx: object): void => {
      const list = byItem.get(item) ?? [];
      list.push(ctx);
      byItem.set(item, list);
    };
    const pipeline = new Pipeline(
      [
        new Stage("s", async (value: number, ctx: { tenant: string; item?: number }) => {
          note(value, ctx);
          await new Promise((resolve) => setTimeout(resolve, (4 - value) * 2));
          return `${ctx.tenant}:${String(ctx.item)}`;
        }),
      ],
      {
        beforeStage: (_name, input, ctx) => {
          note(input as number, ctx);
        },
        afterStage: (_name, input, _output, _error, ctx) => {
          note(input as number, ctx);
        },
        middlewares: [
          async (next, _name, value, ctx) => {
            note(value as number, ctx);
            ctx.item = value as number;
            return next(value);
          },
        ],
      },
    );

    await expect(pipeline.map([1, 2, 3], 3, { context: template })).resolves.toEqual([
      "acme:1",
      "acme:2",
      "acme:3",
    ]);
    expect(template).toEqual({ tenant: "acme" });
    const firsts: object[] = [];
    for (const item of [1, 2, 3]) {
      const contexts = byItem.get(item)!;
      expect(contexts).toHaveLength(4);
      for (const ctx of contexts) expect(ctx).toBe(contexts[0]);
      expect(contexts[0]).not.toBe(template);
      firsts.push(contexts[0]!);
    }
    expect(new Set(firsts).size).toBe(3);
  });

  it("works in mapSettled(): a middleware's error is that item's rejection reason", async () => {
    const boom = new Error("boom");
    const pipeline = new Pipeline([new Stage("s", (value: number) => value * 2)], {
      middlewares: [
        (next, _name, value) => {
          if (value === 2) throw boom;
          return next(value);
        },
      ],
    });

    await expect(pipeline.mapSettled([1, 2, 3])).resolves.toEqual([
      { status: "fulfilled", value: 2 },
      { status: "rejected", reason: boom },
      { status: "fulfilled", value: 6 },
    ]);
  });
});

describe("middleware: signals", () => {
  it("always gets an AbortSignal that is not aborted, also when run got no signal", async () => {
    const signals: unknown[] = [];
    const pipeline = new Pipeline(
      [new Stage("a", (value: number) => value), new Stage("b", async (value: number) => value)],
      {
        middlewares: [
          (next, _name, value, _ctx, signal) => {
            signals.push(signal);
            return next(value);
          },
        ],
      },
    );

    await pipeline.run(1);
    await pipeline.mapSettled([1]);
    expect(signals).toHaveLength(4);
    for (const signal of signals) {
      expect(signal).toBeInstanceOf(AbortSignal);
      expect((signal as AbortSignal).aborted).toBe(false);
    }
  });

  it("gets the caller's signal itself when run is given one", async () => {
    const controller = new AbortController();
    const signals: AbortSignal[] = [];
    const pipeline = new Pipeline(
      [new Stage("a", (value: number) => value), new Stage("b", async (value: number) => value)],
      {
        middlewares: [
          (next, _name, value, _ctx, signal) => {
            signals.push(signal);
            return next(value);
          },
        ],
      },
    );

    await pipeline.run(1, { signal: controller.signal });
    expect(signals).toEqual([controller.signal, controller.signal]);
    expect(signals[0]).toBe(controller.signal);
    expect(signals[1]).toBe(controller.signal);
  });

  it("passes the caller's abort through: the middleware's signal aborts and the run rejects with the reason", async () => {
    const controller = new AbortController();
    const reason = new Error("caller gave up");
    let middlewareSignal: AbortSignal | undefined;
    let callSignal: AbortSignal | undefined;
    const afterErrors: unknown[] = [];
    const pipeline = new Pipeline(
      [
        new Stage("hang", (_value: number, _ctx: Context, call: StageCall): Promise<number> => {
          callSignal = call.signal;
          return never();
        }),
        new Stage("later", (value: number) => value),
      ],
      {
        afterStage: (_name, _input, _output, error) => {
          afterErrors.push(error);
        },
        middlewares: [
          async (next, _name, value, _ctx, signal) => {
            middlewareSignal = signal;
            return next(value);
          },
        ],
      },
    );

    const run = observe(pipeline.run(1, { signal: controller.signal }));
    await flush();
    expect(run.status).toBe("pending");
    controller.abort(reason);
    await flush();
    expect(run.status).toBe("rejected");
    expect(run.reason).toBe(reason);
    expect(middlewareSignal?.aborted).toBe(true);
    expect(middlewareSignal?.reason).toBe(reason);
    expect(callSignal?.aborted).toBe(true);
    expect(callSignal?.reason).toBe(reason);
    expect(afterErrors).toEqual([reason]);
    expect(abortListeners(controller.signal)).toBe(0);
  });

  it("passes the caller's abort through a handler that ignores its signal", async () => {
    const controller = new AbortController();
    const reason = new Error("stop");
    const pipeline = new Pipeline([new Stage("hang", (): Promise<number> => never())], {
      middlewares: [(next, _name, value) => next(value)],
    });

    const run = observe(pipeline.run(1, { signal: controller.signal }));
    await flush();
    controller.abort(reason);
    await flush();
    expect(run.status).toBe("rejected");
    expect(run.reason).toBe(reason);
    expect(abortListeners(controller.signal)).toBe(0);
  });

  it("next(value, ownSignal): aborting ownSignal aborts the stage's call.signal and rejects next with its reason", async () => {
    const caller = new AbortController();
    const own = new AbortController();
    const reason = new Error("middleware's own cancel");
    let callSignal: AbortSignal | undefined;
    let nextOutcome: Observed<unknown> | undefined;
    const pipeline = new Pipeline(
      [
        new Stage("hang", (_value: number, _ctx: Context, call: StageCall): Promise<number> => {
          callSignal = call.signal;
          return never();
        }),
      ],
      {
        middlewares: [
          async (next, _name, value) => {
            const pending = next(value, own.signal);
            nextOutcome = observe(pending);
            try {
              return await pending;
            } catch {
              return "recovered";
            }
          },
        ],
      },
    );

    const run = observe(pipeline.run(1, { signal: caller.signal }));
    await flush();
    expect(callSignal).toBeInstanceOf(AbortSignal);
    expect(callSignal?.aborted).toBe(false);
    expect(nextOutcome?.status).toBe("pending");

    own.abort(reason);
    expect(callSignal?.aborted).toBe(true);
    expect(callSignal?.reason).toBe(reason);
    await flush();
    expect(nextOutcome?.status).toBe("rejected");
    expect(nextOutcome?.reason).toBe(reason);
    expect(run.status).toBe("fulfilled");
    expect(run.value).toBe("recovered");
    expect(caller.signal.aborted).toBe(false);
    expect(abortListeners(caller.signal)).toBe(0);
    expect(abortListeners(own.signal)).toBe(0);
  });

  it("next(value, ownSignal): rejects promptly even when the handler ignores every signal", async () => {
    const own = new AbortController();
    const reason = new Error("cut");
    const handler = vi.fn((): Promise<number> => never());
    let nextOutcome: Observed<unknown> | undefined;
    const pipeline = new Pipeline([new Stage("hang", handler)], {
      middlewares: [
        (next, _name, value) => {
          const pending = next(value, own.signal);
          nextOutcome = observe(pending);
          return pending;
        },
      ],
    });

    const run = observe(pipeline.run(1));
    await flush();
    expect(handler).toHaveBeenCalledTimes(1);
    own.abort(reason);
    await flush();
    expect(nextOutcome?.status).toBe("rejected");
    expect(nextOutcome?.reason).toBe(reason);
    expect(run.status).toBe("rejected");
    // The middleware rethrows next's rejection: the abort reason, not wrapped.
    expect(run.reason).toBe(reason);
    expect(abortListeners(own.signal)).toBe(0);
  });

  it("next(value, ownSignal): the caller's abort still reaches the stage, with the caller's reason", async () => {
    const caller = new AbortController();
    const own = new AbortController();
    const reason = new Error("caller");
    let callSignal: AbortSignal | undefined;
    const pipeline = new Pipeline(
      [
        new Stage("hang", (_value: number, _ctx: Context, call: StageCall): Promise<number> => {
          callSignal = call.signal;
          return never();
        }),
      ],
      { middlewares: [(next, _name, value) => next(value, own.signal)] },
    );

    const run = observe(pipeline.run(1, { signal: caller.signal }));
    await flush();
    caller.abort(reason);
    await flush();
    expect(callSignal?.reason).toBe(reason);
    expect(run.status).toBe("rejected");
    expect(run.reason).toBe(reason);
    expect(own.signal.aborted).toBe(false);
    expect(abortListeners(caller.signal)).toBe(0);
    expect(abortListeners(own.signal)).toBe(0);
  });

  it("next(value, ownSignal): leaves no listener on either signal after a successful run", async () => {
    const caller = new AbortController();
    const own = new AbortController();
    let callSignal: AbortSignal | undefined;
    const pipeline = new Pipeline(
      [
        new Stage("a", async (value: number, _ctx: Context, call: StageCall) => {
          callSignal = call.signal;
          await flush();
          return value + 1;
        }),
        new Stage("b", (value: number) => value * 2),
      ],
      { middlewares: [(next, _name, value) => next(value, own.signal)] },
    );

    await expect(pipeline.run(1, { signal: caller.signal })).resolves.toBe(4);
    expect(callSignal?.aborted).toBe(false);
    expect(abortListeners(caller.signal)).toBe(0);
    expect(abortListeners(own.signal)).toBe(0);
  });

  it("next(value, alreadyAbortedSignal) does not call the handler and rejects with its reason", async () => {
    const reason = new Error("already");
    const handler = vi.fn((value: number) => value);
    const pipeline = new Pipeline([new Stage("s", handler)], {
      middlewares: [(next, _name, value) => next(value, AbortSignal.abort(reason))],
    });

    await expect(pipeline.run(1)).rejects.toBe(reason);
    expect(handler).not.toHaveBeenCalled();
  });

  it("next(value, 'not a signal') rejects with a TypeError and does not call the stage", async () => {
    const handler = vi.fn((value: number) => value);
    let fromNext: unknown;
    const pipeline = new Pipeline([new Stage("s", handler)], {
      middlewares: [
        async (next, _name, value) => {
          try {
            // @ts-expect-error -- checked at run time too
            return await next(value, "not a signal");
          } catch (error) {
            fromNext = error;
            throw error;
          }
        },
      ],
    });

    await expect(pipeline.run(1)).rejects.toBeInstanceOf(TypeError);
    expect(fromNext).toBeInstanceOf(TypeError);
    expect((fromNext as TypeError).message).toMatch(/signal/);
    expect(handler).not.toHaveBeenCalled();
  });

  it("next(value, 'not a signal') returns a rejected promise rather than throwing synchronously", () => {
    let returned: unknown;
    let threw = false;
    const pipeline = new Pipeline([new Stage("s", (value: number) => value)], {
      middlewares: [
        (next, _name, value) => {
          try {
            returned = next(value, { aborted: "no" } as unknown as AbortSignal);
          } catch {
            threw = true;
          }
          return 0;
        },
      ],
    });

    return pipeline.run(1).then(async () => {
      expect(threw).toBe(false);
      expect(returned).toBeInstanceOf(Promise);
      await expect(returned).rejects.toBeInstanceOf(TypeError);
    });
  });
});

describe("middleware: validation at construction", () => {
  const stages = [new Stage("s", (value: number) => value)] as const;

  it("throws TypeError when middlewares is not an array", () => {
    expect(
      () =>
        // @ts-expect-error -- checked at run time too
        new Pipeline(stages, { middlewares: (next: Next, _n: string, v: unknown) => next(v) }),
    ).toThrow(TypeError);
    // @ts-expect-error -- checked at run time too
    expect(() => new Pipeline(stages, { middlewares: "logging" })).toThrow(/middlewares/);
  });

  it("throws TypeError naming the index of an entry that is not a function", () => {
    const ok: Middleware = (next, _name, value) => next(value);
    const build = (): unknown =>
      // @ts-expect-error -- checked at run time too
      new Pipeline(stages, { middlewares: [ok, { handle: ok }] });
    expect(build).toThrow(TypeError);
    expect(build).toThrow(/middlewares\[1\]/);
  });

  it("accepts an empty middlewares array", async () => {
    const pipeline = new Pipeline(stages, { middlewares: [] });
    await expect(pipeline.run(3)).resolves.toBe(3);
  });

  it("composes the chain at construction: changing the array afterwards changes nothing", async () => {
    const calls: string[] = [];
    const list: Middleware[] = [
      (next, _name, value) => {
        calls.push("original");
        return next(value);
      },
    ];
    const pipeline = new Pipeline(stages, { middlewares: list });
    list.push(() => {
      calls.push("added later");
      return -1;
    });
    list[0] = () => "replaced";

    await expect(pipeline.run(3)).resolves.toBe(3);
    expect(calls).toEqual(["original"]);
  });
});

describe("middleware: cancellation around the chain", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it("rejects run promptly when a middleware ignores its signal", async () => {
    vi.useFakeTimers();
    const slow: Middleware = async (next, _stageName, value) => {
      await new Promise((resolve) => setTimeout(resolve, 500));
      return next(value);
    };
    const handler = vi.fn((value: number) => value);
    const pipeline = new Pipeline([new Stage("s", handler)], { middlewares: [slow] });
    const controller = new AbortController();
    const reason = new Error("stop");
    const run = observe(pipeline.run(1, { signal: controller.signal }));
    await vi.advanceTimersByTimeAsync(10);
    controller.abort(reason);
    await vi.advanceTimersByTimeAsync(0);
    expect(run.status).toBe("rejected");
    expect(run.reason).toBe(reason);
    await vi.advanceTimersByTimeAsync(500);
    expect(getEventListeners(controller.signal, "abort")).toHaveLength(0);
  });

  it("does not enter the chain when the signal aborts during beforeStage", async () => {
    const controller = new AbortController();
    const reason = new Error("stop");
    const entered = vi.fn();
    const afterErrors: unknown[] = [];
    const pipeline = new Pipeline([new Stage("s", (value: number) => value)], {
      beforeStage: async () => {
        controller.abort(reason);
        await Promise.resolve();
      },
      afterStage: (_name, _input, _output, error) => {
        afterErrors.push(error);
      },
      middlewares: [
        (next, _stageName, value) => {
          entered();
          return next(value);
        },
      ],
    });
    await expect(pipeline.run(1, { signal: controller.signal })).rejects.toBe(reason);
    expect(entered).not.toHaveBeenCalled();
    expect(afterErrors).toEqual([reason]);
  });
});
