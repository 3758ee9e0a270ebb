import { between, unit } from "./random.js";

/** One order line of the input file, once parsed. */
export interface OrderLine {
  id: string;
  sku: string;
  quantity: number;
}

/**
 * The demo's input: `count` NDJSON lines, the same for the same seed. About 2% of them are
 * damaged (cut short, or with a quantity that is not a positive integer), as real exports are.
 */
export function makeRecords(count: number, seed: number): string[] {
  const lines: string[] = [];
  for (let index = 1; index <= count; index++) {
    const id = `r${String(index).padStart(4, "0")}`;
    const line: OrderLine = {
      id,
      sku: `SKU-${String(between(seed, `${id}:sku`, 100, 999))}`,
      quantity: between(seed, `${id}:quantity`, 1, 12),
    };
    const damage = unit(seed, `${id}:damage`);
    if (damage < 0.01) {
      lines.push(JSON.stringify(line).slice(0, 20)); // cut short: not JSON
    } else if (damage < 0.02) {
      lines.push(JSON.stringify({ ...line, quantity: -line.quantity })); // JSON, but invalid
    } else {
      lines.push(JSON.stringify(line));
    }
  }
  return lines;
}

/** Parses and checks one input line. */
export function parseRecord(line: string): OrderLine {
  const value = JSON.parse(line) as Partial<OrderLine> | null;
  if (
    typeof value !== "object" ||
    value === null ||
    typeof value.id !== "string" ||
    typeof value.sku !== "string" ||
    typeof value.quantity !== "number" ||
    !Number.isInteger(value.quantity) ||
    value.quantity <= 0
  ) {
    throw new InvalidRecordError(line);
  }
  return { id: value.id, sku: value.sku, quantity: value.quantity };
}

/** A line that is JSON but not an order line. */
export class InvalidRecordError extends Error {
  override name = "InvalidRecordError" as const;
  constructor(readonly line: string) {
    super(`invalid record: ${line}`);
  }
}
