import { describe, expect, it, vi } from "vitest";
import { Stage, type Handler, type StageOptions } from "../src/index.js";

const handler = (value: number): number => value;

function build(options: Record<string, unknown>): Stage<number, number> {
  return new Stage("s", handler, options);
}

type ErrorClass = typeof RangeError | typeof TypeError;

function expectInvalid(
  options: Record<string, unknown>,
  kind: ErrorClass,
  message: string | RegExp,
): void {
  let caught: unknown;
  try {
    build(options);
  } catch (error) {
    caught = error;
  }
  expect(caught, `expected ${Object.keys(options).join()} to be rejected`).toBeInstanceOf(kind);
  expect((caught as Error).message).toMatch(message);
}

describe("Stage options: timeout", () => {
  it.each([0, -1, -0, -Infinity])("rejects %s with a RangeError", (timeout) => {
    expectInvalid({ timeout }, RangeError, /^timeout must be greater than 0/);
  });

  it("rejects NaN with a RangeError naming timeout", () => {
    expectInvalid({ timeout: NaN }, RangeError, /timeout/);
  });

  it("rejects Infinity with a RangeError naming timeout", () => {
    expectInvalid({ timeout: Infinity }, RangeError, /timeout/);
  });

  it.each([["5"], [null], [true], [{}], [5n]])("rejects %o with a TypeError", (timeout) => {
    expectInvalid({ timeout }, TypeError, /timeout/);
  });

  it("accepts a small positive and a fractional timeout", () => {
    expect(build({ timeout: 1 }).timeout).toBe(1);
    expect(build({ timeout: 0.5 }).timeout).toBe(0.5);
  });
});

describe("Stage options: retries", () => {
  it("rejects -1 with a RangeError", () => {
    expectInvalid({ retries: -1 }, RangeError, /^retries must be greater than or equal to 0/);
  });

  it.each([1.5, NaN, Infinity])("rejects %s with a RangeError naming retries", (retries) => {
    expectInvalid({ retries }, RangeError, /retries/);
  });

  it.each([["2"], [null], [false]])("rejects %o with a TypeError", (retries) => {
    expectInvalid({ retries }, TypeError, /retries/);
  });

  it("accepts 0 and a large integer", () => {
    expect(build({ retries: 0 }).retries).toBe(0);
    expect(build({ retries: 1_000 }).retries).toBe(1_000);
  });
});

describe("Stage options: retryDelay", () => {
  it("rejects -1 with a RangeError", () => {
    expectInvalid({ retryDelay: -1 }, RangeError, /^retryDelay must be greater than or equal to 0/);
  });

  it.each([NaN, Infinity])("rejects %s with a RangeError naming retryDelay", (retryDelay) => {
    expectInvalid({ retryDelay }, RangeError, /retryDelay/);
  });

  it("rejects a string with a TypeError", () => {
    expectInvalid({ retryDelay: "100" }, TypeError, /retryDelay/);
  });
});

describe("Stage options: backoff", () => {
  it("rejects an unknown string with a RangeError listing the choices", () => {
    expectInvalid({ backoff: "linear" }, RangeError, /backoff must be "fixed" or "exponential"/);
  });

  it.each([[5], [null], [true]])("rejects %o with a TypeError", (backoff) => {
    expectInvalid({ backoff }, TypeError, /backoff must be "fixed" or "exponential"/);
  });

  it("is case-sensitive", () => {
    expectInvalid({ backoff: "Exponential" }, RangeError, /backoff/);
  });
});

describe("Stage options: maxRetryDelay", () => {
  it("rejects -1 with a RangeError", () => {
    expectInvalid(
      { maxRetryDelay: -1 },
      RangeError,
      /^maxRetryDelay must be greater than or equal to 0/,
    );
  });

  it.each([NaN, Infinity])("rejects %s with a RangeError naming maxRetryDelay", (value) => {
    expectInvalid({ maxRetryDelay: value }, RangeError, /maxRetryDelay/);
  });

  it("rejects a string with a TypeError", () => {
    expectInvalid({ maxRetryDelay: "1" }, TypeError, /maxRetryDelay/);
  });
});

describe("Stage options: jitter", () => {
  it.each([["yes"], [1], [null]])("rejects %o with a TypeError", (jitter) => {
    expectInvalid({ jitter }, TypeError, /jitter/);
  });
});

describe("Stage options: callbacks", () => {
  it.each([[true], ["fn"], [{}], [null]])("rejects shouldRetry %o with a TypeError", (value) => {
    expectInvalid({ shouldRetry: value }, TypeError, /shouldRetry/);
  });

  it.each([[true], ["fn"], [{}], [null]])("rejects onRetry %o with a TypeError", (value) => {
    expectInvalid({ onRetry: value }, TypeError, /onRetry/);
  });
});

describe("Stage options: the options argument itself", () => {
  it.each([[null], ["fast"], [5]])("rejects options %o with a TypeError", (options) => {
    expect(() => new Stage("s", handler, options as unknown as StageOptions)).toThrow(TypeError);
  });

  it("accepts undefined and an empty object", () => {
    expect(new Stage("s", handler, undefined).retries).toBe(0);
    expect(new Stage("s", handler, {}).retries).toBe(0);
  });
});

describe("Stage constructor: name and handler", () => {
  it("rejects an empty name with a RangeError naming name", () => {
    expect(() => new Stage("", handler)).toThrow(RangeError);
    expect(() => new Stage("", handler)).toThrow(/name/);
  });

  it.each<[unknown]>([[5], [undefined], [null], [{}], [Symbol("n")]])(
    "rejects a non-string name %o with a TypeError",
    (name) => {
      expect(() => new Stage(name as string, handler)).toThrow(TypeError);
      expect(() => new Stage(name as string, handler)).toThrow(/name/);
    },
  );

  it.each([[undefined], [null], ["handler"], [42], [{}]])(
    "rejects a non-function handler %o with a TypeError",
    (value) => {
      const bad = value as Handler<number, number>;
      expect(() => new Stage("s", bad)).toThrow(TypeError);
      expect(() => new Stage("s", bad)).toThrow(/handler/);
    },
  );

  it("validates synchronously, before any run", () => {
    const spy = vi.fn(handler);
    expect(() => new Stage("s", spy, { retries: -1 })).toThrow(RangeError);
    expect(spy).not.toHaveBeenCalled();
  });
});

describe("stage.run: argument checks", () => {
  it("rejects (does not throw) when signal is not an AbortSignal", async () => {
    const spy = vi.fn(handler);
    const stage = new Stage("s", spy);
    let result: Promise<number> | undefined;
    expect(() => {
      result = stage.run(1, { signal: {} as AbortSignal });
    }).not.toThrow();
    await expect(result).rejects.toThrow(TypeError);
    await expect(result).rejects.toThrow(/signal/);
    expect(spy).not.toHaveBeenCalled();
  });

  it.each([
    ["a string", "signal"],
    ["null", null],
    ["a number", 1],
  ])("rejects a signal that is %s with a TypeError", async (_label, signal) => {
    const stage = new Stage("s", handler);
    await expect(stage.run(1, { signal: signal as unknown as AbortSignal })).rejects.toThrow(
      TypeError,
    );
  });

  it("rejects when context is not an object", async () => {
    const spy = vi.fn(handler);
    const stage = new Stage("s", spy);
    const result = stage.run(1, { context: 5 as unknown as object });
    await expect(result).rejects.toThrow(TypeError);
    await expect(result).rejects.toThrow(/context/);
    expect(spy).not.toHaveBeenCalled();
  });

  it("rejects when the run options are not an object", async () => {
    const stage = new Stage("s", handler);
    await expect(stage.run(1, "options" as unknown as undefined)).rejects.toThrow(TypeError);
  });

  it("accepts an explicit undefined signal and context", async () => {
    const stage = new Stage("s", handler);
    await expect(stage.run(3, { signal: undefined, context: undefined })).resolves.toBe(3);
  });
});
