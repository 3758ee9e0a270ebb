import { afterEach, describe, expect, it, vi } from "vitest";
import { Pipeline, Stage } from "../src/index.js";
import { sleep } from "./support/time.js";

afterEach(() => {
  vi.useRealTimers();
});

class RequestContext {
  readonly requestId: string;
  visited: string[] = [];

  constructor(requestId: string) {
    this.requestId = requestId;
  }

  visit(name: string): void {
    this.visited.push(name);
  }

  get summary(): string {
    return `${this.requestId}:${this.visited.join(",")}`;
  }
}

describe("context in run", () => {
  it("is one object shared by every stage and hook of a run", async () => {
    const context = { requestId: "r1" };
    const seen: object[] = [];
    const pipeline = new Pipeline(
      [
        new Stage("a", (value: number, ctx: object) => {
          seen.push(ctx);
          return value + 1;
        }),
        new Stage("b", async (value: number, ctx: object) => {
          seen.push(ctx);
          return value + 1;
        }),
      ],
      {
        beforeStage: (_name, _input, ctx) => {
          seen.push(ctx);
        },
        afterStage: (_name, _input, _output, _error, ctx) => {
          seen.push(ctx);
        },
      },
    );
    await pipeline.run(0, { context });
    expect(seen).toHaveLength(6);
    for (const ctx of seen) expect(ctx).toBe(context);
  });

  it("lets stages pass data to later stages and to the caller through the context", async () => {
    const context: { user?: string; trail: string[] } = { trail: [] };
    const pipeline = new Pipeline([
      new Stage("login", (id: number, ctx: typeof context) => {
        ctx.user = `user-${String(id)}`;
        ctx.trail.push("login");
        return id;
      }),
      new Stage("greet", async (_id: number, ctx: typeof context) => {
        ctx.trail.push("greet");
        return `hello ${ctx.user ?? "nobody"}`;
      }),
    ]);
    await expect(pipeline.run(7, { context })).resolves.toBe("hello user-7");
    expect(context).toEqual({ user: "user-7", trail: ["login", "greet"] });
  });

  it("is a single new empty object shared by stages and hooks when omitted", async () => {
    const seen: object[] = [];
    let keysAtStart: string[] | undefined;
    const pipeline = new Pipeline(
      [
        new Stage("a", (value: number, ctx: Record<string, unknown>) => {
          keysAtStart ??= Object.keys(ctx);
          seen.push(ctx);
          ctx.mark = true;
          return value;
        }),
        new Stage("b", (value: number, ctx: Record<string, unknown>) => {
          seen.push(ctx);
          return value;
        }),
      ],
      {
        beforeStage: (_name, _input, ctx) => {
          keysAtStart ??= Object.keys(ctx);
          seen.push(ctx);
        },
      },
    );
    await pipeline.run(1);
    expect(keysAtStart).toEqual([]);
    expect(seen).toHaveLength(4);
    expect(typeof seen[0]).toBe("object");
    for (const ctx of seen) expect(ctx).toBe(seen[0]);
    expect(seen[0]).toEqual({ mark: true });
  });

  it("gives each run its own fresh object when omitted, so mutations do not leak across runs", async () => {
    const contexts: Record<string, unknown>[] = [];
    const keysSeen: string[][] = [];
    const pipeline = new Pipeline([
      new Stage("count", (value: number, ctx: Record<string, unknown>) => {
        keysSeen.push(Object.keys(ctx));
        contexts.push(ctx);
        ctx.count = ((ctx.count as number | undefined) ?? 0) + 1;
        return ctx.count as number;
      }),
    ]);
    await expect(pipeline.run(1)).resolves.toBe(1);
    await expect(pipeline.run(1)).resolves.toBe(1);
    expect(contexts).toHaveLength(2);
    expect(contexts[0]).not.toBe(contexts[1]);
    expect(keysSeen).toEqual([[], []]);
  });

  it("gives concurrent runs without a context different objects", async () => {
    vi.useFakeTimers();
    const contexts: object[] = [];
    const pipeline = new Pipeline([
      new Stage("wait", async (value: number, ctx: object) => {
        contexts.push(ctx);
        await sleep(10);
        return value;
      }),
    ]);
    const both = Promise.all([pipeline.run(1), pipeline.run(2)]);
    await vi.advanceTimersByTimeAsync(10);
    await expect(both).resolves.toEqual([1, 2]);
    expect(contexts).toHaveLength(2);
    expect(contexts[0]).not.toBe(contexts[1]);
  });

  it("accepts a class instance and passes that very instance, methods and accessors working", async () => {
    const context = new RequestContext("r42");
    const seen: unknown[] = [];
    const pipeline = new Pipeline(
      [
        new Stage("a", (value: number, ctx: RequestContext) => {
          ctx.visit("a");
          seen.push(ctx);
          return value;
        }),
        new Stage("b", (value: number, ctx: RequestContext) => {
          ctx.visit("b");
          return `${ctx.summary}/${String(value)}`;
        }),
      ],
      {
        afterStage: (_name, _input, _output, _error, ctx) => {
          seen.push(ctx);
        },
      },
    );
    await expect(pipeline.run(1, { context })).resolves.toBe("r42:a,b/1");
    expect(seen[0]).toBe(context);
    expect(seen[1]).toBe(context);
    expect(context.visited).toEqual(["a", "b"]);
  });

  it("passes the context to the handler as its second argument and the StageCall as its third", async () => {
    const context = { tenant: "acme" };
    const received: unknown[] = [];
    const pipeline = new Pipeline([
      new Stage("s", (value: number, ctx: object, call) => {
        received.push(ctx, call.stageName);
        return value;
      }),
    ]);
    await pipeline.run(1, { context });
    expect(received).toEqual([context, "s"]);
    expect(received[0]).toBe(context);
  });
});

describe("context in map", () => {
  it("gives each item a shallow copy of the template that keeps its own properties", async () => {
    const template = { tenant: "acme", limit: 3 };
    const seen: Record<string, unknown>[] = [];
    const pipeline = new Pipeline([
      new Stage("s", (value: number, ctx: Record<string, unknown>) => {
        seen.push({ ...ctx });
        return value;
      }),
    ]);
    await pipeline.map([1, 2], 1, { context: template });
    expect(seen).toEqual([
      { tenant: "acme", limit: 3 },
      { tenant: "acme", limit: 3 },
    ]);
  });

  it("never changes the template's own properties, and items do not see each other's changes", async () => {
    const template: Record<string, unknown> = { tenant: "acme" };
    const seenBefore: Record<string, unknown>[] = [];
    const pipeline = new Pipeline([
      new Stage("mutate", (value: number, ctx: Record<string, unknown>) => {
        seenBefore.push({ ...ctx });
        ctx.tenant = `changed-${String(value)}`;
        ctx[`item${String(value)}`] = true;
        return value;
      }),
    ]);
    await expect(pipeline.map([1, 2, 3], 1, { context: template })).resolves.toEqual([1, 2, 3]);
    expect(template).toEqual({ tenant: "acme" });
    expect(seenBefore).toEqual([{ tenant: "acme" }, { tenant: "acme" }, { tenant: "acme" }]);
  });

  it("keeps the prototype: a class-instance template gives instances of the class", async () => {
    const template = new RequestContext("batch");
    const seen: unknown[] = [];
    const summaries: string[] = [];
    const pipeline = new Pipeline([
      new Stage("visit", (value: number, ctx: RequestContext) => {
        seen.push(ctx);
        ctx.visited = [];
        ctx.visit(`item${String(value)}`);
        summaries.push(ctx.summary);
        return value;
      }),
    ]);
    await pipeline.map([1, 2], 1, { context: template });
    expect(seen).toHaveLength(2);
    for (const ctx of seen) {
      expect(ctx).toBeInstanceOf(RequestContext);
      expect(ctx).not.toBe(template);
    }
    expect(summaries).toEqual(["batch:item1", "batch:item2"]);
    expect(template.visited).toEqual([]);
  });

  it("keeps a null prototype", async () => {
    const template = Object.assign(Object.create(null) as Record<string, unknown>, { a: 1 });
    const prototypes: unknown[] = [];
    const pipeline = new Pipeline([
      new Stage("s", (value: number, ctx: Record<string, unknown>) => {
        prototypes.push(Object.getPrototypeOf(ctx));
        return ctx.a as number;
      }),
    ]);
    await expect(pipeline.map([1], 1, { context: template })).resolves.toEqual([1]);
    expect(prototypes).toEqual([null]);
  });

  it("keeps an own __proto__ key (as JSON.parse makes) as an own key, and the prototype", async () => {
    const template = JSON.parse('{"__proto__": {"polluted": true}, "tenant": "acme"}') as object;
    const seen: object[] = [];
    const pipeline = new Pipeline([
      new Stage("s", (value: number, ctx: object) => {
        seen.push(ctx);
        return value;
      }),
    ]);
    await pipeline.map([1, 2], 1, { context: template });
    expect(seen).toHaveLength(2);
    for (const ctx of seen) {
      expect(ctx).not.toBe(template);
      expect(Object.getPrototypeOf(ctx)).toBe(Object.prototype);
      expect(Object.getOwnPropertyDescriptor(ctx, "__proto__")?.value).toEqual({ polluted: true });
      expect((ctx as { polluted?: unknown }).polluted).toBeUndefined();
      expect(Object.keys(ctx)).toEqual(["__proto__", "tenant"]);
    }
  });

  it("copies a property that shadows a read-only or accessor property of the prototype", async () => {
    const setter = vi.fn();
    const base = {};
    Object.defineProperty(base, "region", { value: "default", writable: false });
    Object.defineProperty(base, "tenant", { set: setter, get: () => "from the prototype" });
    const template = Object.create(base) as { region: string; tenant: string };
    Object.defineProperty(template, "region", { value: "eu", enumerable: true, writable: true });
    Object.defineProperty(template, "tenant", { value: "acme", enumerable: true, writable: true });
    const seen: string[] = [];
    const pipeline = new Pipeline([
      new Stage("s", (value: number, ctx: { region: string; tenant: string }) => {
        expect(Object.getPrototypeOf(ctx)).toBe(base);
        seen.push(`${ctx.region}/${ctx.tenant}`);
        return value;
      }),
    ]);
    await expect(pipeline.mapSettled([1, 2], 1, { context: template })).resolves.toEqual([
      { status: "fulfilled", value: 1 },
      { status: "fulfilled", value: 2 },
    ]);
    expect(seen).toEqual(["eu/acme", "eu/acme"]);
    expect(setter).not.toHaveBeenCalled();
  });

  it("copies own enumerable symbol keys and reads getters once per item, as run sees them", async () => {
    const tag = Symbol("tag");
    let reads = 0;
    const template = {
      [tag]: "tagged",
      get stamp(): number {
        reads++;
        return reads;
      },
    };
    Object.defineProperty(template, "hidden", { value: 1, enumerable: false });
    const seen: unknown[] = [];
    const pipeline = new Pipeline([
      new Stage("s", (value: number, ctx: Record<PropertyKey, unknown>) => {
        seen.push([
          ctx[tag],
          Object.getOwnPropertyDescriptor(ctx, "stamp")?.value,
          "hidden" in ctx,
        ]);
        return value;
      }),
    ]);
    await pipeline.map([1, 2], 1, { context: template });
    expect(seen).toEqual([
      ["tagged", 1, false],
      ["tagged", 2, false],
    ]);
  });

  it("is a shallow copy: nested objects are shared with the template", async () => {
    const template = { log: [] as number[] };
    const pipeline = new Pipeline([
      new Stage("log", (value: number, ctx: { log: number[] }) => {
        ctx.log.push(value);
        return value;
      }),
    ]);
    await pipeline.map([1, 2, 3], 1, { context: template });
    expect(template.log).toEqual([1, 2, 3]);
  });

  it("never shares one object between concurrent items", async () => {
    vi.useFakeTimers();
    const template = { tenant: "acme" };
    const live = new Set<object>();
    let overlaps = 0;
    let maxLive = 0;
    const seen = new Set<object>();
    const pipeline = new Pipeline([
      new Stage("hold", async (value: number, ctx: { tenant: string }) => {
        if (live.has(ctx)) overlaps++;
        live.add(ctx);
        seen.add(ctx);
        maxLive = Math.max(maxLive, live.size);
        await sleep(10 + value);
        live.delete(ctx);
        return value;
      }),
    ]);
    const result = pipeline.map([1, 2, 3, 4, 5, 6], 3, { context: template });
    await vi.runAllTimersAsync();
    await expect(result).resolves.toEqual([1, 2, 3, 4, 5, 6]);
    expect(overlaps).toBe(0);
    expect(maxLive).toBe(3);
    expect(seen.size).toBe(6);
    expect(seen.has(template)).toBe(false);
  });

  it("shares each item's copy between all of its stages and hooks", async () => {
    const template = { tenant: "acme" };
    const byItem = new Map<number, Set<object>>();
    const note = (item: number, ctx: object): void => {
      const set = byItem.get(item) ?? new Set<object>();
      set.add(ctx);
      byItem.set(item, set);
    };
    const pipeline = new Pipeline(
      [
        new Stage("a", async (value: number, ctx: object) => {
          note(value, ctx);
          return value;
        }),
        new Stage("b", (value: number, ctx: object) => {
          note(value, ctx);
          return value;
        }),
      ],
      {
        beforeStage: (_name, input, ctx) => {
          note(input as number, ctx);
        },
        afterStage: (_name, input, _output, _error, ctx) => {
          note(input as number, ctx);
        },
      },
    );
    await pipeline.map([1, 2, 3], 3, { context: template });
    expect([...byItem.keys()].sort()).toEqual([1, 2, 3]);
    const all = new Set<object>();
    for (const set of byItem.values()) {
      expect(set.size).toBe(1);
      for (const ctx of set) all.add(ctx);
    }
    expect(all.size).toBe(3);
  });

  it("gives each item its own fresh empty object when there is no template", async () => {
    const contexts: Record<string, unknown>[] = [];
    const keysSeen: string[][] = [];
    const pipeline = new Pipeline([
      new Stage("s", (value: number, ctx: Record<string, unknown>) => {
        keysSeen.push(Object.keys(ctx));
        contexts.push(ctx);
        ctx.value = value;
        return value;
      }),
    ]);
    await pipeline.map([1, 2, 3], 1);
    expect(keysSeen).toEqual([[], [], []]);
    expect(new Set(contexts).size).toBe(3);
  });

  it("copies the template for mapSettled too", async () => {
    const template = new RequestContext("settled");
    const seen: unknown[] = [];
    const pipeline = new Pipeline([
      new Stage("s", (value: number, ctx: RequestContext) => {
        seen.push(ctx);
        ctx.visit("x");
        return value;
      }),
    ]);
    await pipeline.mapSettled([1, 2], { context: template });
    expect(seen).toHaveLength(2);
    expect(seen[0]).toBeInstanceOf(RequestContext);
    expect(seen[0]).not.toBe(template);
    expect(seen[0]).not.toBe(seen[1]);
  });

  it("rejects with TypeError for a template that is not an object", async () => {
    const pipeline = new Pipeline([new Stage("s", (value: number) => value)]);
    await expect(pipeline.map([1], { context: "ctx" as never })).rejects.toThrow(TypeError);
    await expect(pipeline.mapSettled([1], { context: 3 as never })).rejects.toThrow(/context/);
  });
});
