import { describe, expect, it, vi } from "vitest";
import { PipelineError, Stage, StageExecutionError, TimeoutError } from "../src/index.js";
import { rejectionOf } from "./support/promises.js";

const SEE_BRAND = Symbol.for("async-pipeline.StageExecutionError");
const PIPELINE_BRAND = Symbol.for("async-pipeline.PipelineError");
const TIMEOUT_BRAND = Symbol.for("async-pipeline.TimeoutError");

async function failureOf(thrown: unknown, name = "stage"): Promise<StageExecutionError> {
  const stage = new Stage(name, (): number => {
    throw thrown;
  });
  const error = await rejectionOf(stage.run(0));
  expect(error).toBeInstanceOf(StageExecutionError);
  return error as StageExecutionError;
}

/** A class built the way another copy of the library (the CJS build) builds its errors. */
function foreignCopy(brands: symbol[]): new (message: string) => Error {
  class Foreign extends Error {}
  for (const brand of brands) {
    Object.defineProperty(Foreign.prototype, brand, { value: true });
  }
  return Foreign;
}

describe("StageExecutionError", () => {
  it("carries name, stageName, originalError, cause and attempts", async () => {
    const original = new Error("connection reset");
    const error = await failureOf(original, "download");
    expect(error.name).toBe("StageExecutionError");
    expect(error.stageName).toBe("download");
    expect(error.originalError).toBe(original);
    expect(error.cause).toBe(original);
    expect(error.attempts).toBe(1);
  });

  it("names the stage and the original message in its message", async () => {
    const error = await failureOf(new Error("connection reset"), "download");
    expect(error.message).toContain("download");
    expect(error.message).toContain("connection reset");
  });

  it("is an instance of PipelineError and Error, not of TimeoutError", async () => {
    const error = await failureOf(new Error("x"));
    expect(error).toBeInstanceOf(StageExecutionError);
    expect(error).toBeInstanceOf(PipelineError);
    expect(error).toBeInstanceOf(Error);
    expect(error).not.toBeInstanceOf(TimeoutError);
  });

  it("has a stack trace", async () => {
    const error = await failureOf(new Error("x"));
    expect(typeof error.stack).toBe("string");
    expect(error.stack).toContain("StageExecutionError");
  });

  it("says what it is through toString()", async () => {
    const error = await failureOf(new Error("boom"), "explode");
    expect(String(error)).toMatch(/^StageExecutionError: /);
    expect(String(error)).toContain("explode");
    expect(String(error)).toContain("boom");
  });

  it.each([
    ["a string", "plain failure", "plain failure"],
    ["a number", 404, "404"],
    ["a bigint", 7n, "7"],
    ["a symbol", Symbol("tag"), "Symbol(tag)"],
    ["null", null, "null"],
    ["undefined", undefined, "undefined"],
  ])("wraps %s thrown, and names it in the message", async (_label, thrown, text) => {
    const error = await failureOf(thrown, "odd");
    expect(error.originalError).toBe(thrown);
    expect(error.cause).toBe(thrown);
    expect(error.message).toContain("odd");
    expect(error.message).toContain(text);
  });

  it("keeps cause as an own property when the thrown value is undefined", async () => {
    const error = await failureOf(undefined);
    expect(Object.hasOwn(error, "cause")).toBe(true);
    expect(error.cause).toBeUndefined();
    expect(error.originalError).toBeUndefined();
  });

  it("wraps a plain object thrown", async () => {
    const thrown = { code: "E_BAD", toString: () => "custom description" };
    const error = await failureOf(thrown);
    expect(error.originalError).toBe(thrown);
    expect(error.message).toContain("custom description");
  });

  it("still builds an error when the thrown value cannot be turned into a string", async () => {
    const thrown = Object.create(null) as object;
    const error = await failureOf(thrown, "opaque");
    expect(error.originalError).toBe(thrown);
    expect(error.message).toContain("opaque");
  });

  it("still builds an error when the thrown value's toString throws", async () => {
    const thrown = {
      toString(): string {
        throw new Error("toString broke");
      },
    };
    const error = await failureOf(thrown, "hostile");
    expect(error.originalError).toBe(thrown);
    expect(error.message).toContain("hostile");
  });

  it("names an Error with an empty message by its name", async () => {
    const error = await failureOf(new TypeError(""), "empty");
    expect(error.message).toContain("empty");
    expect(error.message).toContain("TypeError");
  });

  // Regression: a throwing `message` getter used to make the StageExecutionError constructor
  // itself throw ("every failure is surfaced as StageExecutionError").
  it("still builds an error when the thrown Error's message getter throws", async () => {
    const thrown = Object.create(Error.prototype, {
      message: {
        get(): string {
          throw new Error("message getter broke");
        },
      },
    }) as Error;
    const error = await failureOf(thrown, "getter");
    expect(error.originalError).toBe(thrown);
  });

  it("can be constructed directly", () => {
    const original = new Error("direct");
    const error = new StageExecutionError("manual", original, 4);
    expect(error.name).toBe("StageExecutionError");
    expect(error.stageName).toBe("manual");
    expect(error.originalError).toBe(original);
    expect(error.cause).toBe(original);
    expect(error.attempts).toBe(4);
    expect(error.message).toContain("manual");
    expect(error.message).toContain("direct");
  });
});

describe("TimeoutError", () => {
  it("carries name, timeout and stageName", () => {
    const error = new TimeoutError("fetch", 250);
    expect(error.name).toBe("TimeoutError");
    expect(error.timeout).toBe(250);
    expect(error.stageName).toBe("fetch");
  });

  it("names the stage and the limit in its message", () => {
    const error = new TimeoutError("fetch", 250);
    expect(error.message).toContain("fetch");
    expect(error.message).toContain("250");
  });

  it("is an instance of PipelineError and Error, not of StageExecutionError", () => {
    const error = new TimeoutError("fetch", 250);
    expect(error).toBeInstanceOf(TimeoutError);
    expect(error).toBeInstanceOf(PipelineError);
    expect(error).toBeInstanceOf(Error);
    expect(error).not.toBeInstanceOf(StageExecutionError);
  });

  it("is distinct from DOMException's TimeoutError", () => {
    const dom = new DOMException("t", "TimeoutError");
    expect(dom).not.toBeInstanceOf(TimeoutError);
    expect(dom).not.toBeInstanceOf(PipelineError);
  });
});

describe("PipelineError", () => {
  it("is an Error named PipelineError", () => {
    const error = new PipelineError("base");
    expect(error.name).toBe("PipelineError");
    expect(error.message).toBe("base");
    expect(error).toBeInstanceOf(Error);
    expect(error).toBeInstanceOf(PipelineError);
    expect(error).not.toBeInstanceOf(StageExecutionError);
    expect(error).not.toBeInstanceOf(TimeoutError);
  });

  it("is not matched by an ordinary Error", () => {
    expect(new Error("plain")).not.toBeInstanceOf(PipelineError);
    expect(new Error("plain")).not.toBeInstanceOf(StageExecutionError);
    expect(new Error("plain")).not.toBeInstanceOf(TimeoutError);
  });

  it.each([
    ["null", null],
    ["undefined", undefined],
    ["a string", "StageExecutionError"],
    ["a number", 1],
    ["a plain object", {}],
    ["a function", () => {}],
  ])("answers instanceof with false for %s, without throwing", (_label, value: unknown) => {
    expect(value instanceof PipelineError).toBe(false);
    expect(value instanceof StageExecutionError).toBe(false);
    expect(value instanceof TimeoutError).toBe(false);
  });
});

describe("instanceof across copies of the library", () => {
  it("accepts an error from another copy whose prototype carries the StageExecutionError brand", () => {
    const Foreign = foreignCopy([PIPELINE_BRAND, SEE_BRAND]);
    const error = new Foreign("from the CJS build");
    expect(error).toBeInstanceOf(StageExecutionError);
    expect(error).toBeInstanceOf(PipelineError);
    expect(error).not.toBeInstanceOf(TimeoutError);
  });

  it("accepts a bare object whose prototype carries the brands", () => {
    const proto: object = {};
    Object.defineProperty(proto, SEE_BRAND, { value: true });
    Object.defineProperty(proto, PIPELINE_BRAND, { value: true });
    const value: unknown = Object.create(proto);
    expect(value instanceof StageExecutionError).toBe(true);
    expect(value instanceof PipelineError).toBe(true);
  });

  it("accepts a TimeoutError from another copy", () => {
    const Foreign = foreignCopy([PIPELINE_BRAND, TIMEOUT_BRAND]);
    const error = new Foreign("timed out elsewhere");
    expect(error).toBeInstanceOf(TimeoutError);
    expect(error).toBeInstanceOf(PipelineError);
    expect(error).not.toBeInstanceOf(StageExecutionError);
  });

  it("accepts a PipelineError-only brand as PipelineError but not as a subclass", () => {
    const Foreign = foreignCopy([PIPELINE_BRAND]);
    const error = new Foreign("base elsewhere");
    expect(error).toBeInstanceOf(PipelineError);
    expect(error).not.toBeInstanceOf(StageExecutionError);
    expect(error).not.toBeInstanceOf(TimeoutError);
  });

  it("does not accept a brand set to something other than true", () => {
    const proto: object = {};
    Object.defineProperty(proto, SEE_BRAND, { value: "yes" });
    const value: unknown = Object.create(proto);
    expect(value instanceof StageExecutionError).toBe(false);
  });

  it("does not accept a brand made with a non-registered symbol", () => {
    const proto: object = {};
    Object.defineProperty(proto, Symbol("async-pipeline.StageExecutionError"), { value: true });
    const value: unknown = Object.create(proto);
    expect(value instanceof StageExecutionError).toBe(false);
  });

  it("works both ways with a second, separately evaluated copy of the module", async () => {
    vi.resetModules();
    const copy = await import("../src/index.js");
    expect(copy.StageExecutionError).not.toBe(StageExecutionError);

    const fromCopy = new copy.StageExecutionError("copied", new Error("x"), 1);
    expect(fromCopy).toBeInstanceOf(StageExecutionError);
    expect(fromCopy).toBeInstanceOf(PipelineError);
    expect(new copy.TimeoutError("copied", 5)).toBeInstanceOf(TimeoutError);

    const fromHere = new StageExecutionError("here", new Error("y"), 1);
    expect(fromHere).toBeInstanceOf(copy.StageExecutionError);
    expect(fromHere).toBeInstanceOf(copy.PipelineError);
    expect(fromHere).not.toBeInstanceOf(copy.TimeoutError);
  });

  it("a stage from a second copy rejects with an error this copy recognises", async () => {
    vi.resetModules();
    const copy = await import("../src/index.js");
    const stage = new copy.Stage("copied", (): number => {
      throw new Error("x");
    });
    const error = await rejectionOf(stage.run(0));
    expect(error).toBeInstanceOf(StageExecutionError);
    expect(error).toBeInstanceOf(PipelineError);
  });
});

describe("user subclasses", () => {
  class MyStageError extends StageExecutionError {
    readonly extra = "mine";
  }

  class MyPipelineError extends PipelineError {}

  it("an instance of a user subclass is an instance of the subclass and its bases", () => {
    const error = new MyStageError("mine", new Error("x"), 2);
    expect(error).toBeInstanceOf(MyStageError);
    expect(error).toBeInstanceOf(StageExecutionError);
    expect(error).toBeInstanceOf(PipelineError);
    expect(error).toBeInstanceOf(Error);
    expect(error.extra).toBe("mine");
    expect(error.attempts).toBe(2);
  });

  it("a plain StageExecutionError is not an instance of a user subclass", async () => {
    const error = await failureOf(new Error("x"));
    expect(error).not.toBeInstanceOf(MyStageError);
  });

  it("a branded foreign object is not an instance of a user subclass", () => {
    const Foreign = foreignCopy([PIPELINE_BRAND, SEE_BRAND]);
    expect(new Foreign("x")).not.toBeInstanceOf(MyStageError);
  });

  it("a user subclass of PipelineError uses prototype semantics", () => {
    const mine = new MyPipelineError("mine");
    expect(mine).toBeInstanceOf(MyPipelineError);
    expect(mine).toBeInstanceOf(PipelineError);
    expect(mine).not.toBeInstanceOf(StageExecutionError);
    expect(new StageExecutionError("s", 1, 1)).not.toBeInstanceOf(MyPipelineError);
    expect(new TimeoutError("s", 1)).not.toBeInstanceOf(MyPipelineError);
  });
});
