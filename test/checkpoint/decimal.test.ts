/**
 * `writeDigits` (src/internal/decimal.ts), which writes the checkpoint's integers (record
 * fields, and the text of number items it hashes): for every integer in [0, 2^53), exactly the
 * ASCII of `String(value)`, ending where it says, and nothing written past that.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { MAX_DIGITS, writeDigits } from "../../src/internal/decimal.js";
import { assertProperty, TIMEOUT } from "../support/property.js";

const decoder = new TextDecoder();
/** A byte `writeDigits` never writes, to tell the bytes it left alone. */
const UNTOUCHED = 0xff;

const bytes = new Uint8Array(3 + MAX_DIGITS + 3);

/** What `writeDigits` wrote for `value` at offset 3, or what it wrote besides. */
function digitsOf(value: number): string {
  bytes.fill(UNTOUCHED);
  const end = writeDigits(value, bytes, 3);
  const outside = [...bytes.subarray(0, 3), ...bytes.subarray(end)];
  if (outside.some((byte) => byte !== UNTOUCHED)) return `wrote outside: ${outside.join(",")}`;
  return decoder.decode(bytes.subarray(3, end));
}

describe("writeDigits", () => {
  it("writes every integer below 200,000 as String does", () => {
    for (let value = 0; value < 200_000; value++) {
      const text = digitsOf(value);
      if (text !== String(value)) expect(text).toBe(String(value));
    }
  });

  it("writes the integers around each power of ten, the 32-bit steps and 2^53 as String does", () => {
    const values = [2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1, 2 ** 32, 2 ** 32 + 1, 2 ** 53 - 1];
    for (let power = 1; power <= 15; power++) {
      values.push(10 ** power - 1, 10 ** power, 10 ** power + 1);
    }
    for (const value of values) expect(digitsOf(value), String(value)).toBe(String(value));
  });

  it("writes the integers around multiples of 10^8 up to 2^53 as String does (the split)", () => {
    const largest = Math.floor((2 ** 53 - 1) / 1e8);
    for (const high of [1, 42, 2 ** 26 - 1, 2 ** 26, 2 ** 26 + 1, largest - 1, largest]) {
      for (const low of [-1, 0, 1, 9_999_999, 10_000_000, 99_999_999]) {
        const value = high * 1e8 + low;
        if (value >= 2 ** 53) continue;
        expect(digitsOf(value), String(value)).toBe(String(value));
      }
    }
  });

  it(
    "property: writes any integer in [0, 2^53) as String does",
    async () => {
      await assertProperty(
        fc.property(
          fc.oneof(fc.nat(), fc.integer({ min: 0, max: 2 ** 32 + 10 }), fc.maxSafeNat()),
          (value) => {
            expect(digitsOf(value)).toBe(String(value));
          },
        ),
      );
    },
    TIMEOUT,
  );
});
