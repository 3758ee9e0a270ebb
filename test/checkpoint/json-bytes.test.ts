/**
 * The JSON writer of the file checkpoint (json-bytes.ts): for any value it takes, exactly the
 * UTF-8 of `JSON.stringify`; everything it does not take is said so (`NOT_PLAIN`), and a short
 * buffer is said so (`NO_ROOM`). Then `LineBuffer.addValue`, which frames what it writes and
 * falls back to `JSON.stringify` for the rest: the same lines either way.
 */
import fc from "fast-check";
import { afterEach, describe, expect, it } from "vitest";
import { frameLine, LineBuffer } from "../../src/checkpoint/format.js";
import { NO_ROOM, NOT_PLAIN, writeJson } from "../../src/checkpoint/json-bytes.js";
import { assertProperty, TIMEOUT } from "../support/property.js";

const decoder = new TextDecoder();

/** What `writeJson` wrote for `value` given plenty of room, or its negative answer. */
function written(value: unknown): string | number {
  const bytes = new Uint8Array(1 << 16);
  const end = writeJson(value, bytes, 5, bytes.length);
  return end < 0 ? end : decoder.decode(bytes.subarray(5, end));
}

/** The lines a LineBuffer holds after `addValue` of each value. */
function framed(values: readonly unknown[]): string {
  const buffer = new LineBuffer();
  for (const value of values) expect(buffer.addValue(value)).toBe(true);
  return decoder.decode(buffer.bytes);
}

describe("writeJson", () => {
  it.each([
    ["integers", [0, 7, -7, 10, 99, 100, 2 ** 31, 2 ** 32 - 1, -(2 ** 31), 2 ** 53 - 1]],
    [
      "integers around the 32-bit and billion steps",
      [2 ** 31 - 1, 999_999_999, 1e9, 1e9 + 1, 1e12, 1e15 + 7, 4_000_000_000, -(2 ** 53 - 1)],
    ],
    [
      "integers near powers of ten",
      Array.from({ length: 16 }, (_, k) => [10 ** k - 1, 10 ** k, 10 ** k + 1]),
    ],
    ["-0", -0],
    ["large and fractional numbers", [2 ** 53, -(2 ** 53), 1e21, 1e300, 0.1, -2.5e-7, 123.456]],
    ["non-finite numbers (null, as JSON writes them)", [NaN, Infinity, -Infinity]],
    ["strings that need escapes", ['"', "\\", "a\nb\tc", "\u0000\u001f", "\u007f"]],
    ["strings beyond ASCII", ["héllo", "€", "𝄞", "\ud800 lone", "end \udfff"]],
    ["empty things", ["", [], {}]],
    ["objects with integer-like keys (those first, ascending)", { b: 1, 2: "x", a: [1], 1: null }],
    ["values JSON leaves out", { a: undefined, f: () => 1, s: Symbol("s"), kept: true }],
    // eslint-disable-next-line no-sparse-arrays -- a hole is the point
    ["the same in arrays, and holes (null there)", [undefined, () => 1, Symbol("s"), , 4]],
    ["a prototype-less object", Object.assign(Object.create(null) as object, { n: 1 })],
    ["nested records", { i: 3, h: 4_000_000_000, o: { list: [1, "two", { three: [true] }] } }],
  ])("writes %s exactly as JSON.stringify does", (_label, value) => {
    expect(written(value)).toBe(JSON.stringify(value));
  });

  it.each([
    ["a Date", new Date(0)],
    [
      "a class instance",
      new (class Price {
        amount = 1;
      })(),
    ],
    ["an object with toJSON", { toJSON: () => "x" }],
    ["a Map", new Map([[1, 2]])],
    ["a BigInt", 1n],
    ["a plain object holding a Date", { at: new Date(0) }],
    ["an array with toJSON", Object.assign([1], { toJSON: () => "y" })],
    ["undefined", undefined],
    ["a function", () => 1],
    ["a symbol", Symbol("s")],
  ])("leaves %s to JSON.stringify", (_label, value) => {
    expect(written(value)).toBe(NOT_PLAIN);
  });

  it("leaves a cycle, and anything nested deeper than 64, to JSON.stringify", () => {
    const cycle: Record<string, unknown> = {};
    cycle.self = cycle;
    expect(written(cycle)).toBe(NOT_PLAIN);
    let deep: unknown = 1;
    for (let depth = 0; depth < 65; depth++) deep = [deep];
    expect(written(deep)).toBe(NOT_PLAIN);
    let shallow: unknown = 1;
    for (let depth = 0; depth < 64; depth++) shallow = [shallow];
    expect(written(shallow)).toBe(JSON.stringify(shallow));
  });

  it("leaves an object to JSON.stringify when Object.prototype gained an enumerable key", () => {
    const prototype = Object.prototype as Record<string, unknown>;
    prototype.polluted = 1;
    try {
      expect(written({ a: 1 })).toBe(NOT_PLAIN);
    } finally {
      delete prototype.polluted;
    }
    expect(written({ a: 1 })).toBe('{"a":1}');
  });

  it("answers NO_ROOM when the text does not fit before the end, wherever it falls short", () => {
    const value = { i: 12_345, s: "abc", é: ["é", true, null, 1.5], n: [] };
    const text = JSON.stringify(value);
    const size = new TextEncoder().encode(text).length;
    for (let end = 0; end < size; end++) {
      expect(writeJson(value, new Uint8Array(size), 0, end)).toBe(NO_ROOM);
    }
    const bytes = new Uint8Array(size + 24 * 2);
    expect(writeJson(value, bytes, 0, bytes.length)).toBe(size);
    expect(decoder.decode(bytes.subarray(0, size))).toBe(text);
  });

  it(
    "property: writes any JSON value exactly as JSON.stringify does",
    async () => {
      await assertProperty(
        fc.property(fc.jsonValue({ maxDepth: 4, stringUnit: "binary" }), (value) => {
          expect(written(value)).toBe(JSON.stringify(value));
        }),
      );
    },
    TIMEOUT,
  );
});

describe("LineBuffer.addValue", () => {
  it("frames plain and other values as frameLine frames their JSON text", () => {
    const values = [
      { i: 0, h: 3_735_928_559, o: 1 },
      { at: new Date(0), price: 12.5 },
      "é€𝄞",
      [1, [2, [3]]],
    ];
    expect(framed(values)).toBe(values.map((value) => frameLine(JSON.stringify(value))).join(""));
  });

  it("grows for a record longer than its buffer, keeping what it held", () => {
    const big = { text: "x".repeat(200_000), more: "é".repeat(50_000) };
    const values = ["first", big, big];
    expect(framed(values)).toBe(values.map((value) => frameLine(JSON.stringify(value))).join(""));
  });

  it("adds nothing and answers false for a value JSON leaves out", () => {
    const buffer = new LineBuffer();
    expect(buffer.addValue(undefined)).toBe(false);
    expect(buffer.addValue(() => 1)).toBe(false);
    expect(buffer.length).toBe(0);
  });

  it("throws what JSON.stringify throws, keeping the lines before", () => {
    const buffer = new LineBuffer();
    buffer.addValue({ n: 1 });
    const cycle: Record<string, unknown> = { n: 2 };
    cycle.self = cycle;
    expect(() => buffer.addValue(cycle)).toThrow(TypeError);
    expect(() => buffer.addValue({ n: 2n })).toThrow(TypeError);
    expect(decoder.decode(buffer.bytes)).toBe(frameLine('{"n":1}'));
  });

  it("refuses a record appended by a getter of the record being written", () => {
    const buffer = new LineBuffer();
    const value = {
      get sneaky() {
        buffer.addValue({ nested: true });
        return 1;
      },
    };
    expect(() => buffer.addValue(value)).toThrow(/while another one was being written/);
    expect(buffer.length).toBe(0);
    // A getter writing to another buffer is fine: it writes through JSON.stringify.
    const other = new LineBuffer();
    const fine = {
      get n() {
        other.addValue({ nested: [1] });
        return 1;
      },
    };
    expect(framed([fine])).toBe(frameLine('{"n":1}'));
    expect(decoder.decode(other.bytes)).toBe(frameLine('{"nested":[1]}'));
  });
});

afterEach(() => {
  expect(Object.keys(Object.prototype)).toEqual([]);
});

describe("LineBuffer.addOutput", () => {
  /** The record the journal would append for a success, as an object. */
  function recordOf(index: number, hash: number, output: unknown): object {
    return output === undefined ? { i: index, h: hash } : { i: index, h: hash, o: output };
  }

  /** The lines of `addOutput` for each case, and those of `addValue` of its record object. */
  function both(cases: readonly (readonly [number, number, unknown])[]): [string, string] {
    const fields = new LineBuffer();
    for (const [index, hash, output] of cases) fields.addOutput(index, hash, output);
    return [
      decoder.decode(fields.bytes),
      framed(cases.map(([index, hash, output]) => recordOf(index, hash, output))),
    ];
  }

  it("frames a success's record as addValue frames the record object", () => {
    const [fields, object] = both([
      [0, 0, 1],
      [1, 3_735_928_559, undefined],
      [2, 2 ** 31, { price: 12.5, tags: ["a", "é"] }],
      [2 ** 53 - 1, 4_294_967_295, null],
      [3, 7, "\u0000 needs escapes \ud800"],
      [4, 8, new Date(0)],
      [5, 9, { nested: { toJSON: () => "x" } }],
      [6, 10, [undefined, () => 1]],
      [7, 11, "x".repeat(200_000)],
    ]);
    expect(fields).toBe(object);
  });

  it(
    "property: frames any success's record as addValue frames the record object",
    async () => {
      await assertProperty(
        fc.property(
          fc.array(
            fc.tuple(
              fc.maxSafeNat(),
              fc.nat({ max: 2 ** 32 - 1 }),
              fc.option(fc.jsonValue({ maxDepth: 3, stringUnit: "binary" }), {
                nil: undefined,
              }),
            ),
            { maxLength: 8 },
          ),
          (cases) => {
            const [fields, object] = both(cases);
            expect(fields).toBe(object);
          },
        ),
      );
    },
    TIMEOUT,
  );

  it("frames it through JSON.stringify, as addValue does, when Object.prototype lends a key or a toJSON", () => {
    const prototype = Object.prototype as Record<string, unknown>;
    prototype.polluted = 1;
    try {
      const [fields, object] = both([[1, 2, { a: 1 }]]);
      expect(fields).toBe(object);
      expect(fields).toBe(frameLine('{"i":1,"h":2,"o":{"a":1}}'));
    } finally {
      delete prototype.polluted;
    }
    Object.defineProperty(Object.prototype, "toJSON", {
      value: () => "everything",
      configurable: true,
    });
    try {
      const [fields, object] = both([[1, 2, 3]]);
      expect(fields).toBe(object);
      expect(fields).toBe(frameLine('"everything"'));
    } finally {
      delete prototype.toJSON;
    }
  });

  it("throws what addValue throws, keeping the lines before", () => {
    const buffer = new LineBuffer();
    buffer.addOutput(0, 1, "kept");
    expect(() => {
      buffer.addOutput(1, 2, { n: 2n });
    }).toThrow(TypeError);
    const value = {
      get sneaky() {
        buffer.addOutput(9, 9, 9);
        return 1;
      },
    };
    expect(() => {
      buffer.addOutput(2, 3, value);
    }).toThrow(/while another one was being written/);
    expect(decoder.decode(buffer.bytes)).toBe(frameLine('{"i":0,"h":1,"o":"kept"}'));
  });
});
