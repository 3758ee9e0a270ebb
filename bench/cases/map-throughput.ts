/**
 * Case 2: `map` throughput over 1,000,000 items with a trivial one-stage pipeline, at
 * concurrency 1, 16 and 256, against a hand-written worker pool (the floor), p-map, p-limit
 * with `Promise.all`, and @supercharge/promise-pool. Every contender returns the outputs in
 * input order.
 */
import { PromisePool } from "@supercharge/promise-pool";
import pLimit from "p-limit";
import pMap from "p-map";
import { arrayPool } from "../floors.js";
import { ratio, type Contender, type Measurement } from "../harness.js";
import { Pipeline, Stage } from "../lib.js";
import {
  OURS,
  score,
  clockName,
  formatRate,
  formatRatio,
  formatRatioRange,
  formatSpread,
  type ChartPanel,
  type Score,
  type Section,
  type Settings,
  type Table,
} from "../report.js";
import { defineCase, type ChildSettings } from "../suite.js";

const FLOOR = "hand-written worker pool";
const P_MAP = "p-map";
const P_LIMIT = "p-limit + Promise.all";
const SUPERCHARGE = "@supercharge/promise-pool";

const increment = async (value: number): Promise<number> => value + 1;

/**
 * The contenders of one group: the floor and `async-pipeline` always, then p-map (the main
 * group) or p-limit and @supercharge/promise-pool (the `others` group).
 */
function contenders(items: readonly number[], concurrency: number, others: boolean): Contender[] {
  const pipeline = new Pipeline([new Stage("increment", increment)]);
  const check = (output: unknown): boolean =>
    Array.isArray(output) &&
    output.length === items.length &&
    output[0] === 1 &&
    output[items.length - 1] === items.length;
  const floor: Contender = {
    name: FLOOR,
    op: () => arrayPool(items, concurrency, increment),
    check,
  };
  const ours: Contender = { name: OURS, op: () => pipeline.map(items, concurrency), check };
  if (!others) {
    return [floor, { name: P_MAP, op: () => pMap(items, increment, { concurrency }), check }, ours];
  }
  return [
    floor,
    {
      name: P_LIMIT,
      op: () => {
        const limit = pLimit(concurrency);
        return Promise.all(items.map((item) => limit(() => increment(item))));
      },
      check,
    },
    {
      name: SUPERCHARGE,
      op: async () => {
        const { results } = await PromisePool.withConcurrency(concurrency)
          .for(items)
          .useCorrespondingResults()
          .process(increment);
        return results;
      },
      check,
    },
    ours,
  ];
}

function table(
  concurrency: number,
  count: number,
  measurement: Measurement,
  settings: Settings,
): Table {
  return {
    caption: `map, ${count.toLocaleString("en-US")} items, concurrency ${String(concurrency)}`,
    headers: [
      "implementation",
      `items/s by ${clockName(settings)} (median ±IQR/2)`,
      `${clockName(settings)} per map`,
      "wall time per map",
      "throughput ÷ floor",
      `${OURS} throughput ÷ this`,
    ],
    align: ["l", "r", "r", "r", "r", "r"],
    rows: measurement.results.map((result) => {
      // Throughput ratios are time ratios upside down: floor time ÷ this time.
      const vsFloor = ratio(measurement, FLOOR, result.name);
      return [
        result.name === FLOOR ? `${result.name} (floor)` : result.name,
        formatSpread(result.ns, formatRate),
        `${((result.ns.median * count) / 1e6).toFixed(0)} ms`,
        `${((result.wall.median * count) / 1e6).toFixed(0)} ms`,
        formatRatioRange(vsFloor),
        result.name === OURS ? "—" : formatRatioRange(ratio(measurement, result.name, OURS)),
      ];
    }),
  };
}

const CONCURRENCIES = [1, 16, 256] as const;
/**
 * p-limit and @supercharge/promise-pool take 7 to 25 s per million items: the groups comparing
 * with them map a tenth of the items, so that a full run stays within minutes.
 */
const OTHERS_FRACTION = 0.1;

function itemCount(settings: ChildSettings, others: boolean): number {
  return (settings.quick ? 10_000 : 1_000_000) * (others ? OTHERS_FRACTION : 1);
}

function groupId(concurrency: number, others: boolean): string {
  return `concurrency ${String(concurrency)}${others ? ", p-limit and promise-pool" : ""}`;
}

export default defineCase({
  groups: (settings) =>
    CONCURRENCIES.flatMap((concurrency) =>
      [false, true].map((others) => ({
        id: groupId(concurrency, others),
        options: {
          rounds: settings.quick ? 3 : others ? 5 : 9,
          sampleMs: 0,
          warmupMs: 0,
          unitsPerOp: itemCount(settings, others),
        },
        contenders: () =>
          contenders(
            Array.from({ length: itemCount(settings, others) }, (_, index) => index),
            concurrency,
            others,
          ),
      })),
    ),
  section: mapThroughput,
});

async function mapThroughput(
  settings: Settings,
  measureGroup: (id: string) => Promise<Measurement>,
): Promise<Section> {
  const count = itemCount(settings, false);
  const tables: Table[] = [];
  const summaryRows: string[][] = [];
  const headlines: string[] = [];
  const scores: Score[] = [];
  const groups: ChartPanel["groups"][number][] = [];
  for (const concurrency of CONCURRENCIES) {
    const measurement = await measureGroup(groupId(concurrency, false));
    const others = await measureGroup(groupId(concurrency, true));
    tables.push(table(concurrency, count, measurement, settings));
    tables.push(table(concurrency, itemCount(settings, true), others, settings));
    if (concurrency === 16) {
      scores.push(
        score(measurement, {
          id: "map-array-16-vs-pool",
          label: "`map`, array, concurrency 16 ÷ hand pool",
          ours: OURS,
          reference: FLOOR,
          goal: 1.25,
        }),
      );
    }
    scores.push(
      score(measurement, {
        id: `map-${String(concurrency)}-vs-p-map`,
        label: `\`map\` ÷ p-map, concurrency ${String(concurrency)}`,
        ours: OURS,
        reference: P_MAP,
        goal: 0.25,
      }),
    );
    const ours = measurement.results.find((result) => result.name === OURS);
    const vsPMap = ratio(measurement, P_MAP, OURS);
    const vsFloor = ratio(measurement, FLOOR, OURS);
    summaryRows.push([
      String(concurrency),
      ours === undefined ? "n/a" : formatRate(ours.ns.median),
      formatRatioRange(vsFloor),
      formatRatioRange(vsPMap),
      formatRatioRange(ratio(others, P_LIMIT, OURS)),
      formatRatioRange(ratio(others, SUPERCHARGE, OURS)),
      vsPMap.median >= 3 ? "yes" : "**no**",
    ]);
    headlines.push(
      `map, concurrency ${String(concurrency)}: ${ours === undefined ? "n/a" : formatRate(ours.ns.median)}, ` +
        `${formatRatio(vsPMap.median)} p-map's throughput, ${formatRatio(vsFloor.median)} the hand-written pool's`,
    );
    groups.push({
      label: `concurrency ${String(concurrency)}`,
      bars: [
        ...measurement.results,
        ...others.results.filter(
          (result) => result.name === P_LIMIT || result.name === SUPERCHARGE,
        ),
      ].map((result) => ({
        label: result.name,
        value: 1e9 / result.ns.median / 1e6,
        text: formatRate(result.ns.median),
      })),
    });
  }
  const summary: Table = {
    caption: `map throughput summary: ${OURS} items/s ÷ each alternative's (target: ≥ 3× p-map), median (min–max)`,
    headers: [
      "concurrency",
      `${OURS} items/s`,
      "÷ floor",
      "÷ p-map",
      "÷ p-limit",
      "÷ promise-pool",
      "≥ 3× p-map",
    ],
    align: ["r", "r", "r", "r", "r", "r", "l"],
    rows: summaryRows,
  };
  return {
    title: "2. `map` throughput",
    intro: [
      `${count.toLocaleString("en-US")} items (an array of numbers), a one-stage pipeline whose`,
      "handler is `async (n) => n + 1`, outputs in input order. One operation maps the whole",
      "array; each contender gets one sample per round. The floor is a hand-written pool of",
      "`concurrency` async workers pulling the next index. p-limit gets `Promise.all` over",
      "`items.map((item) => limit(() => fn(item)))`; @supercharge/promise-pool gets",
      "`.useCorrespondingResults()` so that its results are in input order too. p-limit and",
      "@supercharge/promise-pool take seconds per million items, so they run in groups of their",
      `own on ${itemCount(settings, true).toLocaleString("en-US")} items, with the floor and ${OURS} again as`,
      "paired references; their ratios in the summary come from those groups.",
    ],
    tables: [summary, ...tables],
    notes: [
      "Ratios are paired per round; brackets give their minimum and maximum. No GC is forced",
      "between samples: with a forced full GC (`--expose-gc`) before each sample, this library's",
      "samples measured 1.5 to 2 times slower than in a steady state while the hand-written",
      "pool's hardly moved, which would measure V8's recovery from the forced GC rather than",
      "the libraries. Interleaving spreads the cost of garbage collection instead.",
    ],
    scores,
    charts: [
      {
        title: `2. map throughput, ${count.toLocaleString("en-US")} items (longer is faster)`,
        unit: "million items/s",
        groups,
      },
    ],
    headlines,
  };
}
