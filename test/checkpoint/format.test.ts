/**
 * The line format of a checkpoint file: CRC-32 as zlib computes it, framing, and reading back
 * with torn tails and damage told apart.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { crc32 as zlibCrc32 } from "node:zlib";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { CheckpointCorruptError } from "../../src/checkpoint/index.js";
import {
  crc32,
  frameLine,
  LineBuffer,
  readLines,
  type ReadEnd,
} from "../../src/checkpoint/format.js";
import { temporaryFolder } from "./support.js";

let folder: ReturnType<typeof temporaryFolder>;
beforeEach(() => {
  folder = temporaryFolder();
});
afterEach(() => {
  folder.remove();
});

const encoder = new TextEncoder();

/** Every record of the file, and how the read ended. */
function readAll(path: string): { records: unknown[]; end: ReadEnd | undefined } {
  let end: ReadEnd | undefined;
  const records = [...readLines(path, (found) => (end = found))];
  return { records, end };
}

function corruptionOf(path: string): CheckpointCorruptError {
  try {
    readAll(path);
  } catch (error) {
    expect(error).toBeInstanceOf(CheckpointCorruptError);
    return error as CheckpointCorruptError;
  }
  throw new Error("expected a CheckpointCorruptError");
}

describe("crc32", () => {
  it.each(["", "a", '{"i":0,"h":1,"o":"héllo"}', "€𝄞 mixed ✓", "x".repeat(10_000)])(
    "equals zlib's CRC-32 of the UTF-8 bytes of %j",
    (text) => {
      const bytes = encoder.encode(text);
      expect(crc32(bytes)).toBe(zlibCrc32(bytes));
    },
  );

  it("equals zlib's CRC-32 at every length and offset around its 4-byte steps", () => {
    const bytes = encoder.encode("0123456789abcdef€𝄞é{}[]");
    for (let start = 0; start < 5; start++) {
      for (let end = start; end <= bytes.length; end++) {
        expect(crc32(bytes, start, end)).toBe(zlibCrc32(bytes.subarray(start, end)));
      }
    }
  });

  it("matches the standard check value of CRC-32", () => {
    expect(crc32(encoder.encode("123456789")).toString(16)).toBe("cbf43926");
  });
});

describe("LineBuffer", () => {
  it("frames each record as 8 hex digits of CRC-32, a space, the JSON and a newline", () => {
    const buffer = new LineBuffer();
    const texts = ['{"a":1}', '"héllo €𝄞"', "[1,2,3]"];
    for (const text of texts) expect(buffer.addValue(JSON.parse(text))).toBe(true);
    const written = new TextDecoder().decode(buffer.bytes);
    expect(written).toBe(
      texts
        .map((text) => `${crc32(encoder.encode(text)).toString(16).padStart(8, "0")} ${text}\n`)
        .join(""),
    );
    expect(buffer.length).toBe(encoder.encode(written).length);
    buffer.clear();
    expect(buffer.length).toBe(0);
  });

  it("grows past its first 64 KiB, keeping what it held", () => {
    const buffer = new LineBuffer();
    const text = JSON.stringify("é".repeat(50_000));
    buffer.addValue("first");
    buffer.addValue(JSON.parse(text));
    buffer.addValue(JSON.parse(text));
    const lines = new TextDecoder().decode(buffer.bytes).split("\n");
    expect(lines.map((line) => line.slice(9))).toEqual(['"first"', text, text, ""]);
  });

  it("pads a checksum with leading zeros", () => {
    // Found by search: a JSON text whose CRC-32 is below 0x10000000.
    let n = 0;
    while (crc32(encoder.encode(String(n))) >= 0x10000000) n++;
    const text = String(n);
    expect(frameLine(text)).toMatch(/^0[0-9a-f]{7} /);
    writeFileSync(folder.file("c"), frameLine(text));
    expect(readAll(folder.file("c")).records).toEqual([JSON.parse(text)]);
  });
});

describe("readLines", () => {
  it("reads nothing from a missing file, which ends at 0", () => {
    expect(readAll(folder.file("missing"))).toEqual({
      records: [],
      end: { validEnd: 0, torn: false },
    });
  });

  it("reads every record back, across chunks and for lines longer than a chunk", () => {
    const records: unknown[] = [];
    for (let n = 0; n < 30_000; n++) records.push({ i: n, text: "x".repeat(n % 97) });
    records.push({ big: "y".repeat(3 * 1024 * 1024) });
    records.push({ after: "é€𝄞" });
    const text = records.map((record) => frameLine(JSON.stringify(record))).join("");
    writeFileSync(folder.file("c"), text);
    const { records: read, end } = readAll(folder.file("c"));
    expect(read).toEqual(records);
    expect(end).toEqual({ validEnd: encoder.encode(text).length, torn: false });
  }, 30_000);

  it("skips a torn last record (no newline) and says where the valid records end", () => {
    const whole = frameLine('{"n":1}') + frameLine('{"n":2}');
    const torn = frameLine('{"n":3}').slice(0, 12);
    writeFileSync(folder.file("c"), whole + torn);
    expect(readAll(folder.file("c"))).toEqual({
      records: [{ n: 1 }, { n: 2 }],
      end: { validEnd: whole.length, torn: true },
    });
  });

  it("skips a torn tail of zeros (a crash that extended the file without its data)", () => {
    const whole = frameLine('{"n":1}');
    writeFileSync(folder.file("c"), Buffer.concat([Buffer.from(whole), Buffer.alloc(4096)]));
    expect(readAll(folder.file("c"))).toEqual({
      records: [{ n: 1 }],
      end: { validEnd: whole.length, torn: true },
    });
  });

  it("detects a changed byte inside a record, naming the path, the offset and the record", () => {
    const lines = [frameLine('{"n":1}'), frameLine('{"price":12.5}'), frameLine('{"n":3}')];
    writeFileSync(folder.file("c"), lines.join(""));
    const bytes = readFileSync(folder.file("c"));
    const offset = lines[0]!.length;
    bytes[offset + 18] = "7".charCodeAt(0); // 12.5 → 17.5: still valid JSON
    writeFileSync(folder.file("c"), bytes);
    const error = corruptionOf(folder.file("c"));
    expect(error.path).toBe(folder.file("c"));
    expect(error.offset).toBe(offset);
    expect(error.record).toBe(1);
    expect(error.reason).toMatch(/^checksum mismatch/);
    expect(error.message).toContain(`byte ${String(offset)}`);
  });

  it("detects a change in the checksum itself, and in the damaged last complete line", () => {
    const lines = [frameLine('{"n":1}'), frameLine('{"n":2}')];
    const text = lines.join("");
    const flipped = `${text.slice(0, lines[0]!.length)}${text[lines[0]!.length] === "0" ? "1" : "0"}${text.slice(lines[0]!.length + 1)}`;
    writeFileSync(folder.file("c"), flipped);
    expect(corruptionOf(folder.file("c")).offset).toBe(lines[0]!.length);
  });

  it.each([
    ["an empty line", "\n"],
    ["no checksum", '{"n":1}\n'],
    ["a checksum that is not hex", 'abcdefgz {"n":1}\n'],
    ["no space after the checksum", "00000000x1\n"],
    ["a checksum and nothing else", "00000000 \n"],
  ])("refuses %s", (_label, line) => {
    const first = frameLine('{"n":0}');
    writeFileSync(folder.file("c"), first + line + frameLine('{"n":2}'));
    const error = corruptionOf(folder.file("c"));
    expect(error.offset).toBe(first.length);
    expect(error.reason).toMatch(/^not a record/);
  });

  it("refuses a line whose checksum matches but that is not JSON (written by hand)", () => {
    const text = "{not json";
    const crc = crc32(encoder.encode(text)).toString(16).padStart(8, "0");
    writeFileSync(folder.file("c"), `${crc} ${text}\n`);
    const error = corruptionOf(folder.file("c"));
    expect(error.offset).toBe(0);
    expect(error.reason).toMatch(/not JSON/);
    expect(error.cause).toBeInstanceOf(SyntaxError);
  });

  it("closes the file when the reader stops early", () => {
    writeFileSync(folder.file("c"), frameLine("1") + frameLine("2"));
    const reader = readLines(folder.file("c"));
    expect(reader.next().value).toBe(1);
    reader.return(undefined);
    expect(reader.next().done).toBe(true);
  });
});
