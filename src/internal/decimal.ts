/**
 * The decimal digits of an integer, written straight into bytes: what `String(value)` gives for
 * an integer in [0, 2^53), without making the string. The checkpoint writes two or three such
 * numbers per finished item (its index, its hash, often its output) and hashes the text of
 * number items; a digit at a time, with a float division each, this was most of that cost.
 */

/** The most digits {@link writeDigits} writes: 2^53 - 1 has 16. */
export const MAX_DIGITS = 16;

const ZERO = 0x30;
const TEN_8 = 100_000_000;
const UINT32_LIMIT = 2 ** 32;

/** `"00"`, `"01"`, … `"99"` as bytes: the two digits of each value below 100. */
const PAIRS = (() => {
  const pairs = new Uint8Array(200);
  for (let value = 0; value < 100; value++) {
    pairs[2 * value] = ZERO + Math.floor(value / 10);
    pairs[2 * value + 1] = ZERO + (value % 10);
  }
  return pairs;
})();

/**
 * Writes the decimal digits of `value`, an integer in [0, 2^53), into `bytes` from `at` (room
 * for {@link MAX_DIGITS} bytes is the caller's to leave): the ASCII of `String(value)`. Returns
 * where the digits end.
 */
export function writeDigits(value: number, bytes: Uint8Array, at: number): number {
  if (value < UINT32_LIMIT) return writeUint32(value >>> 0, bytes, at);
  // Below 2^53 the quotient by 10^8 is below 2^27, where a double tells a quotient 10^-8
  // short of an integer from that integer: the floor is exact.
  const high = Math.floor(value / TEN_8);
  return writeEight(value - high * TEN_8, bytes, writeUint32(high, bytes, at));
}

/** How many decimal digits `value` (an integer in [0, 2^32)) has. */
function digitCount(value: number): number {
  if (value < 100_000) {
    if (value < 100) return value < 10 ? 1 : 2;
    return value < 1_000 ? 3 : value < 10_000 ? 4 : 5;
  }
  if (value < 10_000_000) return value < 1_000_000 ? 6 : 7;
  return value < 100_000_000 ? 8 : value < 1_000_000_000 ? 9 : 10;
}

/** {@link writeDigits} of an integer in [0, 2^32): two digits at a time, from the last. */
function writeUint32(value: number, bytes: Uint8Array, at: number): number {
  const end = at + digitCount(value);
  let digit = end;
  while (value >= 100) {
    const rest = (value / 100) >>> 0;
    const pair = (value - rest * 100) << 1;
    bytes[--digit] = PAIRS[pair + 1] as number;
    bytes[--digit] = PAIRS[pair] as number;
    value = rest;
  }
  if (value >= 10) {
    bytes[digit - 1] = PAIRS[(value << 1) + 1] as number;
    bytes[digit - 2] = PAIRS[value << 1] as number;
  } else {
    bytes[digit - 1] = ZERO + value;
  }
  return end;
}

/** Writes `value`, an integer in [0, 10^8), as exactly 8 digits (leading zeros included). */
function writeEight(value: number, bytes: Uint8Array, at: number): number {
  const end = at + 8;
  let digit = end;
  for (let count = 0; count < 4; count++) {
    const rest = (value / 100) | 0;
    const pair = (value - rest * 100) << 1;
    bytes[--digit] = PAIRS[pair + 1] as number;
    bytes[--digit] = PAIRS[pair] as number;
    value = rest;
  }
  return end;
}
