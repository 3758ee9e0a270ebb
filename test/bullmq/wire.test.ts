/** The wire format's pure parts: the JSON-safety check and the round trip of errors. */
import { describe, expect, it } from "vitest";
import { StageExecutionError } from "../../src/index.js";
import {
  failureRecord,
  fromWireError,
  jsonProblem,
  parseDoneEntry,
  settle,
  toWireError,
} from "../../src/bullmq/wire.js";

describe("jsonProblem", () => {
  it("accepts what survives JSON and names the first part that does not", () => {
    expect(
      jsonProblem({ a: [1, "x", true, null], b: Object.create(null) as object }),
    ).toBeUndefined();
    expect(jsonProblem(Infinity)).toBe("value is Infinity");
    expect(jsonProblem(10n)).toBe("value is a bigint");
    expect(jsonProblem({ f: () => 1 })).toBe("value.f is a function");
    expect(jsonProblem([Symbol("s")])).toBe("value[0] is a symbol");
    expect(jsonProblem({ [Symbol("k")]: 1 })).toBe("value has symbol keys");
    class Point {
      x = 1;
    }
    expect(jsonProblem({ p: new Point() })).toBe("value.p is a Point");
    const anonymous = Object.create({ inherited: true }) as object;
    Object.defineProperty(anonymous, "constructor", { value: undefined });
    expect(jsonProblem(anonymous)).toBe("value is an object with a prototype");
    const shared = { n: 1 };
    expect(jsonProblem([shared, shared])).toBeUndefined(); // shared, not circular
  });
});

describe("errors on the wire", () => {
  it("carries a thrown non-Error as an Error with its value", () => {
    expect(toWireError("plain text")).toEqual({
      name: "Error",
      message: "plain text",
      value: "plain text",
    });
    const rebuilt = fromWireError({ name: "Error", message: "plain text" });
    expect(rebuilt).toBeInstanceOf(Error);
    expect(rebuilt.stack).toBeUndefined();
  });

  it("rebuilds built-in classes and keeps custom names", () => {
    expect(fromWireError({ name: "TypeError", message: "m" })).toBeInstanceOf(TypeError);
    const custom = fromWireError({
      name: "HttpError",
      message: "HTTP 503",
      stack: "HttpError: HTTP 503\n    at x",
    });
    expect(custom.name).toBe("HttpError");
    expect(custom.stack).toBe("HttpError: HTTP 503\n    at x");
  });

  it("turns records back into settled results", () => {
    const stage = settle(failureRecord(new StageExecutionError("fetch", "down", 3)));
    expect(stage.status).toBe("rejected");
    const reason = (stage as PromiseRejectedResult).reason as StageExecutionError;
    expect(reason.attempts).toBe(3);
    expect((reason.originalError as Error).message).toBe("down");
    expect(settle(failureRecord(new RangeError("r")))).toEqual({
      status: "rejected",
      reason: new RangeError("r"),
    });
    expect(settle({ ok: 5 })).toEqual({ status: "fulfilled", value: 5 });
    expect(parseDoneEntry("c12")).toEqual({ index: 12, cancelled: true });
    expect(parseDoneEntry("7")).toEqual({ index: 7, cancelled: false });
  });
});
