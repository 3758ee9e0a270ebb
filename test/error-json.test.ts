import { describe, expect, it } from "vitest";
import {
  errorFromRecord,
  errorToRecord,
  isErrorRecord,
  MAX_CAUSE_DEPTH,
  type ErrorRecord,
} from "../src/internal/error-json.js";

/** What a record looks like after it was stored as JSON and read back. */
function roundTrip(thrown: unknown): Error {
  const record = JSON.parse(JSON.stringify(errorToRecord(thrown))) as unknown;
  expect(isErrorRecord(record)).toBe(true);
  return errorFromRecord(record as ErrorRecord);
}

class HttpError extends Error {
  override name = "HttpError";
  constructor(
    readonly status: number,
    readonly details: { retryable: boolean },
    options?: ErrorOptions,
  ) {
    super(`HTTP ${String(status)}`, options);
  }
}

describe("errors as JSON", () => {
  it("keeps the name, message, stack and the JSON-safe own fields", () => {
    const original = Object.assign(new HttpError(503, { retryable: true }), {
      code: "EUNAVAILABLE",
      at: new Date(0), // not JSON-safe (toJSON): left out
      callback: () => undefined, // not JSON-safe: left out
    });
    const rebuilt = roundTrip(original) as Error & Record<string, unknown>;
    expect(rebuilt).toBeInstanceOf(Error);
    expect(rebuilt.name).toBe("HttpError");
    expect(rebuilt.message).toBe("HTTP 503");
    expect(rebuilt.stack).toBe(original.stack);
    expect(rebuilt.status).toBe(503);
    expect(rebuilt.details).toEqual({ retryable: true });
    expect(rebuilt.code).toBe("EUNAVAILABLE");
    expect("at" in rebuilt).toBe(false);
    expect("callback" in rebuilt).toBe(false);
  });

  it("rebuilds built-in classes", () => {
    expect(roundTrip(new RangeError("r"))).toBeInstanceOf(RangeError);
    expect(roundTrip(new TypeError("t"))).toBeInstanceOf(TypeError);
  });

  it(`keeps a cause chain as Errors, ${String(MAX_CAUSE_DEPTH)} errors deep in all`, () => {
    let thrown: unknown = new Error("level 7");
    for (let level = 6; level >= 1; level--) {
      thrown = new Error(`level ${String(level)}`, { cause: thrown });
    }
    let rebuilt: unknown = roundTrip(thrown);
    const messages: string[] = [];
    while (rebuilt instanceof Error) {
      messages.push(rebuilt.message);
      rebuilt = rebuilt.cause;
    }
    expect(messages).toEqual(["level 1", "level 2", "level 3", "level 4", "level 5"]);
  });

  it("turns a cause that is not an Error into an Error carrying the value", () => {
    const rebuilt = roundTrip(new Error("outer", { cause: { code: 7 } }));
    expect(rebuilt.cause).toBeInstanceOf(Error);
    expect((rebuilt.cause as Error).message).toBe('{"code":7}');
    expect((rebuilt.cause as Error & { value: unknown }).value).toEqual({ code: 7 });
  });

  it("describes a thrown plain object by its JSON, never [object Object]", () => {
    const rebuilt = roundTrip({ reason: "quota", left: 0 }) as Error & { value: unknown };
    expect(rebuilt.message).toBe('{"reason":"quota","left":0}');
    expect(rebuilt.value).toEqual({ reason: "quota", left: 0 });
    expect(rebuilt.stack).toBeUndefined();
  });

  it("describes a value that is not JSON-safe without carrying it", () => {
    const record = errorToRecord(Symbol("odd"));
    expect(record).toEqual({ name: "Error", message: "Symbol(odd)" });
    expect(errorToRecord(undefined)).toEqual({ name: "Error", message: "undefined" });
  });

  it("never throws, whatever the error's getters do", () => {
    const hostile = new Error("hostile");
    Object.defineProperty(hostile, "status", {
      enumerable: true,
      get() {
        throw new Error("getter");
      },
    });
    Object.defineProperty(hostile, "message", {
      get() {
        throw new Error("getter");
      },
    });
    const record = errorToRecord(hostile);
    expect(record.message).toBe("");
    expect(record.fields).toBeUndefined();
  });

  it("recognises records and refuses other shapes", () => {
    expect(isErrorRecord({ name: "E", message: "m" })).toBe(true);
    expect(isErrorRecord({ name: "E" })).toBe(false);
    expect(isErrorRecord({ name: "E", message: "m", cause: { name: 1 } })).toBe(false);
    expect(isErrorRecord(null)).toBe(false);
  });
});
