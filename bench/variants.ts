/**
 * Cases made of variants: each variant is one group of contenders, all timed per item over one
 * whole batch, with scorecard rows against a reference. The case files that measure batches
 * (batch-variants.ts, flow-control.ts) describe their variants and their tables; this module
 * turns variants into groups and measurements into the tables, headlines, scores and chart
 * groups of their section, the same way for each.
 */
import { ratio, type Contender, type Measurement } from "./harness.js";
import {
  OURS,
  formatNs,
  formatRatio,
  formatRatioRange,
  formatSpread,
  score,
  type ChartPanel,
  type Score,
  type Section,
  type Table,
} from "./report.js";
import { defineCase, type BenchCase, type ChildSettings, type Group } from "./suite.js";

/** One group of contenders, timed per item over one whole batch of `count` items. */
export interface Variant {
  readonly id: string;
  readonly title: string;
  /** The contender the others' time is divided by in the variant's table. */
  readonly floor: string;
  readonly rows: readonly { id: string; label: string; reference: string; goal?: number }[];
  readonly contenders: (count: number) => Contender[];
}

/** Checks a `map`-like output: `count` numbers, each its index + 1. */
export function mapped(count: number): (output: unknown) => boolean {
  return (output) =>
    Array.isArray(output) &&
    output.length === count &&
    output.every((value, index) => value === index + 1);
}

/** The groups of `variants`, each batch of `count(variant)` items, one sample per round. */
export function variantGroups<V extends Variant>(
  variants: readonly V[],
  quick: boolean,
  count: (variant: V) => number,
): Group[] {
  return variants.map((variant) => ({
    id: variant.id,
    options: { rounds: quick ? 3 : 9, sampleMs: 0, warmupMs: 0, unitsPerOp: count(variant) },
    contenders: () => variant.contenders(count(variant)),
  }));
}

/** What a section of variants shows, gathered from one measurement per variant. */
export interface VariantResults {
  readonly tables: Table[];
  readonly headlines: string[];
  readonly scores: Score[];
  readonly groups: ChartPanel["groups"][number][];
}

/**
 * Measures every variant in turn: its table (`table`), its scorecard rows, a headline with our
 * time per item and our time ÷ each of `versus(variant)`, and a chart group of its medians.
 */
export async function measureVariants<V extends Variant>(
  variants: readonly V[],
  measureGroup: (id: string) => Promise<Measurement>,
  options: {
    count: (variant: V) => number;
    table: (variant: V, count: number, measurement: Measurement) => Table;
    versus: (variant: V) => readonly string[];
  },
): Promise<VariantResults> {
  const results: VariantResults = { tables: [], headlines: [], scores: [], groups: [] };
  for (const variant of variants) {
    const measurement = await measureGroup(variant.id);
    results.tables.push(options.table(variant, options.count(variant), measurement));
    for (const row of variant.rows) results.scores.push(score(measurement, { ...row, ours: OURS }));
    const perItem = measurement.results.find((result) => result.name === OURS)?.wall.median;
    const versus = options
      .versus(variant)
      .map((name) => `${formatRatio(ratio(measurement, OURS, name).median)} the time of ${name}`);
    results.headlines.push(
      `${variant.title}: ${formatNs(perItem ?? NaN)} per item, ${versus.join(", ")}`,
    );
    results.groups.push({
      label: variant.title.replaceAll("`", ""),
      bars: measurement.results.map((result) => ({
        label: result.name,
        value: result.wall.median,
        text: formatNs(result.wall.median),
      })),
    });
  }
  return results;
}

/**
 * A variant's table with one reference (its `floor`): per contender, the wall time per item
 * (median ± half the IQR), the CPU time per item, and the time ÷ the reference's.
 */
export function referenceTable(variant: Variant, count: number, measurement: Measurement): Table {
  return {
    caption: `${variant.title}, ${count.toLocaleString("en-US")} items`,
    headers: [
      "implementation",
      "wall time per item (median ±IQR/2)",
      "CPU time per item",
      "time ÷ reference",
    ],
    align: ["l", "r", "r", "r"],
    rows: measurement.results.map((result) => [
      result.name === variant.floor ? `${result.name} (reference)` : result.name,
      formatSpread(result.wall, formatNs),
      formatNs(result.cpu.median),
      formatRatioRange(ratio(measurement, result.name, variant.floor)),
    ]),
  };
}

/**
 * A case made of variants measured against one reference each ({@link referenceTable}), all of
 * `items(settings)` items: its groups, and a section with one table per variant, a chart of
 * their medians titled `chart(count)`, and their headlines and scorecard rows.
 */
export function referenceCase(options: {
  readonly variants: readonly Variant[];
  readonly items: (settings: ChildSettings) => number;
  readonly title: string;
  readonly intro: (count: number) => string[];
  readonly chart: (count: number) => string;
}): BenchCase {
  const { variants, items } = options;
  return defineCase({
    groups: (settings) => variantGroups(variants, settings.quick, () => items(settings)),
    section: async (settings, measureGroup): Promise<Section> => {
      const count = items(settings);
      const { tables, headlines, scores, groups } = await measureVariants(variants, measureGroup, {
        count: () => count,
        table: referenceTable,
        versus: (variant) => variant.rows.map((row) => row.reference),
      });
      return {
        title: options.title,
        intro: options.intro(count),
        tables,
        notes: [],
        charts: [
          {
            title: options.chart(count),
            unit: "ns per item",
            groups,
            scale: "linear",
          },
        ],
        headlines,
        scores,
      };
    },
  });
}
