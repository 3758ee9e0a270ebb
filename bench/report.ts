/** Tables, number formats and the sections each case returns. */
import { ratio, type Measurement, type Summary } from "./harness.js";

export interface Table {
  readonly caption: string;
  readonly headers: readonly string[];
  /** `r` right-aligns a column (numbers). */
  readonly align: readonly ("l" | "r")[];
  readonly rows: readonly (readonly string[])[];
}

/** One bar chart panel of the SVG. */
export interface ChartPanel {
  readonly title: string;
  /** What the bar length means, shown under the title. */
  readonly unit: string;
  /** `log` for values spanning orders of magnitude (ratios, times). Default `linear`. */
  readonly scale?: "linear" | "log" | undefined;
  readonly groups: readonly {
    readonly label: string;
    readonly bars: readonly {
      readonly label: string;
      readonly value: number;
      readonly text: string;
    }[];
  }[];
}

/** What a case hands back: its part of BENCHMARKS.md and of the chart, and its headlines. */
export interface Section {
  readonly title: string;
  readonly intro: readonly string[];
  readonly tables: readonly Table[];
  readonly notes: readonly string[];
  readonly charts: readonly ChartPanel[];
  /** One-line findings, for the console summary and the README. */
  readonly headlines: readonly string[];
  /** Rows of the scorecard at the top of BENCHMARKS.md (issue 12's table), if any. */
  readonly scores?: readonly Score[] | undefined;
}

/**
 * One scorecard row: a paired ratio, `async-pipeline`'s time ÷ a reference's, on both clocks,
 * with its goal. Matched across runs by `id`, so that a saved baseline gives the "before".
 */
export interface Score {
  /** Stable across runs (the baseline is matched by it). */
  readonly id: string;
  readonly label: string;
  /** Time ÷ reference by wall clock, per round. */
  readonly wall: Summary;
  /** Time ÷ reference by process CPU time, per round. */
  readonly cpu: Summary;
  /** The ratio's target, if it has one: the median must be at most this. */
  readonly goal?: number | undefined;
}

/** Sizes and durations, full or quick. */
export interface Settings {
  readonly quick: boolean;
  /** What the cases time: wall time (default) or CPU time of the process. */
  readonly clock: "cpu" | "wall";
  readonly seed: number;
  readonly log: (line: string) => void;
}

/** "CPU time" or "wall time", for column headers. */
export function clockName(settings: Settings): string {
  return settings.clock === "cpu" ? "CPU time" : "wall time";
}

/** The library's name as it appears in every table. */
export const OURS = "async-pipeline";

export function formatNs(ns: number): string {
  if (!Number.isFinite(ns)) return "n/a";
  if (ns >= 1e9) return `${(ns / 1e9).toFixed(2)} s`;
  if (ns >= 1e6) return `${(ns / 1e6).toFixed(2)} ms`;
  if (ns >= 1e3) return `${(ns / 1e3).toFixed(2)} µs`;
  return `${ns.toFixed(0)} ns`;
}

/** A rate from nanoseconds per unit: "1.23 M/s". */
export function formatRate(nsPerUnit: number): string {
  const perSecond = 1e9 / nsPerUnit;
  if (perSecond >= 1e6) return `${(perSecond / 1e6).toFixed(2)} M/s`;
  if (perSecond >= 1e3) return `${(perSecond / 1e3).toFixed(1)} k/s`;
  return `${perSecond.toFixed(0)} /s`;
}

export function formatBytes(bytes: number): string {
  const sign = bytes < 0 ? "−" : "";
  const value = Math.abs(bytes);
  if (value >= 1024 ** 2) return `${sign}${(value / 1024 ** 2).toFixed(1)} MiB`;
  if (value >= 1024) return `${sign}${(value / 1024).toFixed(1)} KiB`;
  return `${sign}${value.toFixed(0)} B`;
}

export function formatRatio(value: number): string {
  if (!Number.isFinite(value)) return "n/a";
  return `${value >= 10 ? value.toFixed(1) : value.toFixed(2)}×`;
}

/** "1.23× (1.10–1.41)": the median of a paired ratio, and its minimum and maximum. */
export function formatRatioRange(summary: Summary): string {
  return `${formatRatio(summary.median)} (${summary.min.toFixed(2)}–${summary.max.toFixed(2)})`;
}

/**
 * A scorecard row from a group's measurement: `ours`' time ÷ `reference`'s, paired per round,
 * on both clocks.
 */
export function score(
  measurement: Measurement,
  row: { id: string; label: string; ours: string; reference: string; goal?: number | undefined },
): Score {
  return {
    id: row.id,
    label: row.label,
    wall: ratio(measurement, row.ours, row.reference, "wall"),
    cpu: ratio(measurement, row.ours, row.reference, "cpu"),
    goal: row.goal,
  };
}

/** "1.23 µs ±4%": the median and half the interquartile range relative to it. */
export function formatSpread(summary: Summary, format: (value: number) => string): string {
  const spread = ((summary.p75 - summary.p25) / 2 / summary.median) * 100;
  return `${format(summary.median)} ±${spread.toFixed(spread < 10 ? 1 : 0)}%`;
}

export function markdownTable(table: Table): string {
  const line = (cells: readonly string[]): string => `| ${cells.join(" | ")} |`;
  const rule = table.align.map((side) => (side === "r" ? "---:" : ":---"));
  return [line(table.headers), line(rule), ...table.rows.map(line)].join("\n");
}

/** A table for the console: aligned columns, no markdown noise. */
export function consoleTable(table: Table): string {
  const widths = table.headers.map((header, column) =>
    Math.max(header.length, ...table.rows.map((row) => (row[column] ?? "").length)),
  );
  const line = (cells: readonly string[]): string =>
    cells
      .map((cell, column) => {
        const width = widths[column] ?? 0;
        return table.align[column] === "r" ? cell.padStart(width) : cell.padEnd(width);
      })
      .join("  ");
  return [
    `  ${table.caption}`,
    `  ${line(table.headers)}`,
    `  ${widths.map((width) => "-".repeat(width)).join("  ")}`,
    ...table.rows.map((row) => `  ${line(row)}`),
  ].join("\n");
}

/**
 * Issue 12's table: one row per score, now (wall, with its extremes, and CPU) against its goal,
 * and against `before` (a saved run's scores, matched by id) when given.
 */
export function scorecard(scores: readonly Score[], before?: readonly Score[]): Table {
  const withBefore = before !== undefined;
  return {
    caption: `${OURS} time ÷ reference, median of paired rounds (min–max)`,
    headers: [
      "case",
      ...(withBefore ? ["before (wall)"] : []),
      "now (wall)",
      "now (CPU)",
      "goal",
      "met",
    ],
    align: ["l", ...(withBefore ? (["r"] as const) : []), "r", "r", "r", "l"],
    rows: scores.map((entry) => {
      const old = before?.find((candidate) => candidate.id === entry.id);
      return [
        entry.label,
        ...(withBefore ? [old === undefined ? "—" : formatRatioRange(old.wall)] : []),
        formatRatioRange(entry.wall),
        formatRatio(entry.cpu.median),
        entry.goal === undefined ? "—" : `≤ ${entry.goal.toFixed(2)}`,
        entry.goal === undefined ? "—" : entry.wall.median <= entry.goal ? "yes" : "**no**",
      ];
    }),
  };
}
