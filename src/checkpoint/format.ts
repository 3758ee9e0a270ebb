/**
 * The line format of a checkpoint file: one record per line, as
 * `<CRC-32 of the JSON, 8 lowercase hex digits> <JSON>\n`. A {@link LineBuffer} frames
 * records into bytes, ready to be written; {@link readLines} reads them back, checking each
 * line's checksum, and tells a torn last line (no newline: the crash came mid-write) from
 * damage.
 *
 * The CRC is CRC-32 as zlib, PNG and `cksum -a crc32b` compute it (reflected polynomial
 * `0xEDB88320`), over the UTF-8 bytes of the JSON text: it detects every change confined to
 * 32 consecutive bits, so any changed byte.
 */
import { closeSync, openSync, readSync } from "node:fs";
import { CheckpointCorruptError } from "../errors/CheckpointCorruptError.js";
import { NOT_PLAIN, writeJson, writeOutputRecord } from "./json-bytes.js";

/** CRC-32 of each byte value, for the table-driven update. */
const CRC_TABLE = (() => {
  const table = new Int32Array(256);
  for (let byte = 0; byte < 256; byte++) {
    let crc = byte;
    for (let bit = 0; bit < 8; bit++) crc = crc & 1 ? 0xedb88320 ^ (crc >>> 1) : crc >>> 1;
    table[byte] = crc;
  }
  return table;
})();

/**
 * The tables of the update four bytes at a time ("slicing by 4"): `CRC_BY_4[k][byte]` is the
 * CRC of `byte` followed by `k` zero bytes.
 */
const [CRC_1, CRC_2, CRC_3] = [1, 2, 3].map((zeros) => {
  const table = new Int32Array(256);
  for (let byte = 0; byte < 256; byte++) {
    let crc = CRC_TABLE[byte] as number;
    for (let step = 0; step < zeros; step++) {
      crc = (CRC_TABLE[crc & 0xff] as number) ^ (crc >>> 8);
    }
    table[byte] = crc;
  }
  return table;
}) as [Int32Array, Int32Array, Int32Array];

/** The CRC-32 of `bytes[start, end)`, as an unsigned 32-bit number. */
export function crc32(bytes: Uint8Array, start = 0, end = bytes.length): number {
  let crc = -1;
  let index = start;
  for (; index + 4 <= end; index += 4) {
    crc ^=
      (bytes[index] as number) |
      ((bytes[index + 1] as number) << 8) |
      ((bytes[index + 2] as number) << 16) |
      ((bytes[index + 3] as number) << 24);
    crc =
      (CRC_3[crc & 0xff] as number) ^
      (CRC_2[(crc >>> 8) & 0xff] as number) ^
      (CRC_1[(crc >>> 16) & 0xff] as number) ^
      (CRC_TABLE[crc >>> 24] as number);
  }
  for (; index < end; index++) {
    crc = (CRC_TABLE[(crc ^ (bytes[index] as number)) & 0xff] as number) ^ (crc >>> 8);
  }
  return ~crc >>> 0;
}

const NEWLINE = 0x0a;
const SPACE = 0x20;
/** The bytes before a record's JSON: 8 hex digits and a space. */
const PREFIX = 9;
/** The lowercase hex digits, as bytes. */
const HEX_BYTES = Uint8Array.from("0123456789abcdef", (char) => char.charCodeAt(0));
const encoder = new TextEncoder();

/**
 * Records framed as lines, in one growing byte buffer: what a file checkpoint has appended and
 * not yet written. A record's JSON is written straight into the buffer (no JSON string in
 * between, for plain data) and its checksum computed over the bytes written.
 */
export class LineBuffer {
  #bytes = new Uint8Array(64 * 1024);
  #length = 0;
  /** Whether a record is being written (a getter of it could append another). */
  #writing = false;

  /** Bytes held. */
  get length(): number {
    return this.#length;
  }

  /** The bytes held, as a view that the next {@link LineBuffer.add} may overwrite. */
  get bytes(): Uint8Array {
    return this.#bytes.subarray(0, this.#length);
  }

  /**
   * Adds one record: `value`'s JSON, written straight into the buffer for plain data (see
   * `json-bytes.ts`), through `JSON.stringify` otherwise. Returns `false`, adding nothing, when
   * JSON leaves `value` out (`undefined`, a function, a symbol); throws what `JSON.stringify`
   * throws (a `BigInt`, a cycle).
   */
  addValue(value: unknown): boolean {
    this.#enter();
    try {
      for (;;) {
        const start = this.#length + PREFIX;
        // The newline goes after the JSON: leave room for it.
        const end = writeJson(value, this.#bytes, start, this.#bytes.length - 1);
        if (end >= 0) {
          this.#seal(start, end, crc32(this.#bytes, start, end));
          return true;
        }
        if (end === NOT_PLAIN) break;
        this.#reserve(this.#bytes.length - this.#length + 1); // NO_ROOM: double, and again
      }
      const json = JSON.stringify(value) as string | undefined;
      if (json === undefined) return false;
      this.#addText(json);
      return true;
    } finally {
      this.#writing = false;
    }
  }

  /**
   * {@link LineBuffer.addValue} of the record `{ i: index, h: hash, o: output }` (without `o`
   * when `output` is `undefined`), without the record object: the same line, the same errors.
   */
  addOutput(index: number, hash: number, output: unknown): void {
    this.#enter();
    try {
      for (;;) {
        const start = this.#length + PREFIX;
        const bytes = this.#bytes;
        const end = writeOutputRecord(index, hash, output, bytes, start, bytes.length - 1);
        if (end >= 0) {
          this.#seal(start, end, crc32(bytes, start, end));
          return;
        }
        if (end === NOT_PLAIN) break;
        this.#reserve(bytes.length - this.#length + 1); // NO_ROOM: double, and again
      }
      const record =
        output === undefined ? { i: index, h: hash } : { i: index, h: hash, o: output };
      this.#addText(JSON.stringify(record));
    } finally {
      this.#writing = false;
    }
  }

  /** Marks a record as being written; throws when one is already (a getter of it appends). */
  #enter(): void {
    if (this.#writing) {
      throw new Error("a checkpoint record was appended while another one was being written");
    }
    this.#writing = true;
  }

  /** Adds one record as its JSON text `json` (what `JSON.stringify` gave). */
  #addText(json: string): void {
    const length = json.length;
    // UTF-8 takes at most 3 bytes per UTF-16 code unit.
    this.#reserve(PREFIX + 3 * length + 1);
    const bytes = this.#bytes;
    const start = this.#length + PREFIX;
    let at = start;
    let crc = -1;
    let index = 0;
    for (; index < length; index++) {
      const code = json.charCodeAt(index);
      if (code >= 0x80) break;
      bytes[at++] = code;
      crc = (CRC_TABLE[(crc ^ code) & 0xff] as number) ^ (crc >>> 8);
    }
    if (index < length) {
      const { written } = encoder.encodeInto(json.slice(index), bytes.subarray(at));
      const end = at + written;
      for (; at < end; at++) {
        crc = (CRC_TABLE[(crc ^ (bytes[at] as number)) & 0xff] as number) ^ (crc >>> 8);
      }
    }
    this.#seal(start, at, ~crc >>> 0);
  }

  /**
   * Completes the line whose JSON is `bytes[start, end)`: its checksum before it, the space,
   * and the newline after it.
   */
  #seal(start: number, end: number, crc: number): void {
    const bytes = this.#bytes;
    bytes[end] = NEWLINE;
    bytes[start - 9] = HEX_BYTES[crc >>> 28] as number;
    bytes[start - 8] = HEX_BYTES[(crc >>> 24) & 0xf] as number;
    bytes[start - 7] = HEX_BYTES[(crc >>> 20) & 0xf] as number;
    bytes[start - 6] = HEX_BYTES[(crc >>> 16) & 0xf] as number;
    bytes[start - 5] = HEX_BYTES[(crc >>> 12) & 0xf] as number;
    bytes[start - 4] = HEX_BYTES[(crc >>> 8) & 0xf] as number;
    bytes[start - 3] = HEX_BYTES[(crc >>> 4) & 0xf] as number;
    bytes[start - 2] = HEX_BYTES[crc & 0xf] as number;
    bytes[start - 1] = SPACE;
    this.#length = end + 1;
  }

  /** Forgets the bytes held (after they were written). */
  clear(): void {
    this.#length = 0;
  }

  #reserve(extra: number): void {
    const needed = this.#length + extra;
    if (needed <= this.#bytes.length) return;
    let size = this.#bytes.length * 2;
    while (size < needed) size *= 2;
    const grown = new Uint8Array(size);
    grown.set(this.#bytes.subarray(0, this.#length));
    this.#bytes = grown;
  }
}

/** The line framing of one record, as a string: for tests and for repairs by hand. */
export function frameLine(json: string): string {
  return `${hex(crc32(encoder.encode(json)))} ${json}\n`;
}

/** How a read of a checkpoint file ended. */
export interface ReadEnd {
  /** The offset just after the last valid record: where the next record goes. */
  readonly validEnd: number;
  /** Whether bytes follow `validEnd`: a torn last record, to cut off before appending. */
  readonly torn: boolean;
}

/** A hex digit's value, or -1. */
function hexValue(byte: number): number {
  if (byte >= 0x30 && byte <= 0x39) return byte - 0x30;
  if (byte >= 0x61 && byte <= 0x66) return byte - 0x61 + 10;
  return -1;
}

const decoder = new TextDecoder();

/**
 * The record in `bytes[start, end)` (a line without its newline), parsed; throws
 * `CheckpointCorruptError` naming `path`, `offset` and `record` when it is not one.
 */
function parseLine(
  bytes: Uint8Array,
  start: number,
  end: number,
  path: string,
  offset: number,
  record: number,
): unknown {
  const where = { path, offset, record };
  let expected = 0;
  let framed = end - start > PREFIX && bytes[start + 8] === SPACE;
  for (let index = 0; framed && index < 8; index++) {
    const value = hexValue(bytes[start + index] as number);
    if (value < 0) framed = false;
    expected = expected * 16 + value;
  }
  if (!framed) {
    throw new CheckpointCorruptError(
      "not a record (a record is 8 hex digits of checksum, a space and JSON on one line)",
      where,
    );
  }
  const actual = crc32(bytes, start + PREFIX, end);
  if (actual !== expected) {
    throw new CheckpointCorruptError(
      `checksum mismatch (the record says ${hex(expected)}, its bytes give ${hex(actual)})`,
      where,
    );
  }
  try {
    return JSON.parse(decoder.decode(bytes.subarray(start + PREFIX, end))) as unknown;
  } catch (error) {
    throw new CheckpointCorruptError("its checksum matches but it is not JSON", where, error);
  }
}

function hex(value: number): string {
  return value.toString(16).padStart(8, "0");
}

/** Bytes read from the file at a time. */
const CHUNK = 1024 * 1024;

/**
 * The records of the checkpoint file at `path`, in order, read in chunks (memory holds one
 * chunk and one record at a time, not the file). A missing file has none. Each line's checksum
 * is checked; damage throws `CheckpointCorruptError`. A last line without its newline is a torn
 * record: not yielded. `onEnd` learns where the valid records end once the file has been read
 * to its end.
 */
export function* readLines(path: string, onEnd?: (end: ReadEnd) => void): Generator {
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch (error) {
    if ((error as { code?: unknown }).code !== "ENOENT") throw error;
    onEnd?.({ validEnd: 0, torn: false });
    return;
  }
  try {
    let buffer = new Uint8Array(CHUNK);
    /** File offset of `buffer[0]`. */
    let base = 0;
    /** Unconsumed bytes are `buffer[start, filled)`. */
    let start = 0;
    let filled = 0;
    let record = 0;
    for (;;) {
      const newline = buffer.subarray(start, filled).indexOf(NEWLINE);
      if (newline >= 0) {
        const end = start + newline;
        yield parseLine(buffer, start, end, path, base + start, record++);
        start = end + 1;
        continue;
      }
      // No full line left in the buffer: keep the partial one and read more after it.
      if (start > 0) {
        buffer.copyWithin(0, start, filled);
        base += start;
        filled -= start;
        start = 0;
      }
      if (filled === buffer.length) {
        const grown = new Uint8Array(buffer.length * 2);
        grown.set(buffer);
        buffer = grown;
      }
      const read = readSync(fd, buffer, filled, buffer.length - filled, base + filled);
      if (read === 0) {
        onEnd?.({ validEnd: base, torn: filled > 0 });
        return;
      }
      filled += read;
    }
  } finally {
    closeSync(fd);
  }
}
