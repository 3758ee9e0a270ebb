/**
 * Case 5: the batch forms other than `map` over an array, each over 1,000,000 items with a
 * trivial async mapper, against a minimal hand-written floor doing the same job and p-map's
 * closest equivalent: `map` over a generator at concurrency 1, `mapSettled`, `stream` with
 * backpressure, `map` with a timeout on every attempt, and `map` whose items fail once and
 * are retried.
 */
import pMap, { pMapIterable, pMapSettled } from "p-map";
import pRetry from "p-retry";
import pTimeout from "p-timeout";
import { arrayPool, withTimeout } from "../floors.js";
import { ratio, type Contender, type Measurement } from "../harness.js";
import { Pipeline, Stage } from "../lib.js";
import {
  OURS,
  formatNs,
  formatRatioRange,
  formatSpread,
  type Section,
  type Settings,
  type Table,
} from "../report.js";
import { defineCase, type ChildSettings, type Group } from "../suite.js";
import {
  mapped,
  measureVariants,
  variantGroups,
  type Variant as BatchVariant,
} from "../variants.js";

type Mapper = (value: number) => Promise<number>;

const CONCURRENCY = 16;
const TIMEOUT_MS = 1_000;
/** Thrown by the flaky mapper: made once, so that its stack trace is not part of the cost. */
const TRANSIENT = new Error("transient failure");

const increment: Mapper = async (value) => value + 1;

function itemCount(settings: ChildSettings): number {
  return settings.quick ? 10_000 : 1_000_000;
}

function* numbers(count: number): Generator<number> {
  for (let index = 0; index < count; index++) yield index;
}

/** The floor of `map` over an iterable: workers pulling the next item from one iterator. */
async function iteratorPool(items: Iterable<number>, concurrency: number): Promise<number[]> {
  const iterator = items[Symbol.iterator]();
  const results: number[] = [];
  let next = 0;
  const worker = async (): Promise<void> => {
    for (let step = iterator.next(); step.done !== true; step = iterator.next()) {
      const index = next++;
      results[index] = await increment(step.value);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return results;
}

/** The floor of `mapSettled`: the array pool, writing a settled result per item. */
function settledPool(
  items: readonly number[],
  concurrency: number,
): Promise<PromiseSettledResult<number>[]> {
  return arrayPool(items, concurrency, async (item): Promise<PromiseSettledResult<number>> => {
    try {
      return { status: "fulfilled", value: await increment(item) };
    } catch (reason) {
      return { status: "rejected", reason };
    }
  });
}

/**
 * A mapper whose first attempt fails for 30% of the items (those whose value ends in 0, 1 or
 * 2) and whose second attempt succeeds. `reset()` before each batch forgets the failures.
 */
function flaky(count: number): { mapper: Mapper; reset: () => void } {
  const failed = new Uint8Array(count);
  return {
    mapper: async (value) => {
      if (value % 10 < 3 && failed[value] === 0) {
        failed[value] = 1;
        throw TRANSIENT;
      }
      return value + 1;
    },
    reset: () => {
      failed.fill(0);
    },
  };
}

/** Consumes an async iterable, returning the sum of what it yields. */
async function sum(iterable: AsyncIterable<number>): Promise<number> {
  let total = 0;
  for await (const value of iterable) total += value;
  return total;
}

interface Variant extends BatchVariant {
  /** The p-map-based alternative, if the group has one. */
  readonly alternative?: string | undefined;
  /** Of the case's item count, when not all of it. */
  readonly fraction?: number | undefined;
}

const GENERATOR_POOL = "hand-written pool over the generator";
const SETTLED_POOL = "hand-written pool writing settled results";
const TIMEOUT_POOL = "hand-written pool + setTimeout race";
const RETRY_POOL = "hand-written pool + try/catch retry";
const P_MAP_ITERABLE = `p-map pMapIterable, backpressure ${String(2 * CONCURRENCY)}`;

/**
 * p-timeout and p-retry take tens of microseconds per item (p-timeout makes its `TimeoutError`
 * eagerly), so the groups comparing with them map a tenth of the items, to keep the full run
 * within minutes; the hand-written floor runs there too, as a common reference.
 */
const ALTERNATIVE_FRACTION = 0.1;

function timedOurs(items: readonly number[]): Contender {
  const pipeline = new Pipeline([new Stage("timed", increment, { timeout: TIMEOUT_MS })]);
  return { name: OURS, op: () => pipeline.map(items, CONCURRENCY) };
}

/** The timeout floor: the array pool, racing each attempt against a cleared timer. */
function timeoutPool(items: readonly number[]): Contender {
  return {
    name: TIMEOUT_POOL,
    op: () => arrayPool(items, CONCURRENCY, (item) => withTimeout(increment(item), TIMEOUT_MS)),
  };
}

/** The retry floor: the array pool, retrying once in a `catch`, with its own flaky mapper. */
function retryPool(items: readonly number[]): Contender {
  const floor = flaky(items.length);
  return {
    name: RETRY_POOL,
    op: () => {
      floor.reset();
      return arrayPool(items, CONCURRENCY, async (item) => {
        try {
          return await floor.mapper(item);
        } catch {
          return floor.mapper(item);
        }
      });
    },
  };
}

function retryingOurs(items: readonly number[]): Contender {
  const ours = flaky(items.length);
  const pipeline = new Pipeline([new Stage("flaky", ours.mapper, { retries: 1, retryDelay: 0 })]);
  return {
    name: OURS,
    op: () => {
      ours.reset();
      return pipeline.map(items, CONCURRENCY);
    },
  };
}

function array(count: number): number[] {
  return Array.from({ length: count }, (_, index) => index);
}

const VARIANTS: readonly Variant[] = [
  {
    id: "generator-1",
    title: "`map` over a generator, concurrency 1",
    floor: GENERATOR_POOL,
    alternative: "p-map",
    rows: [
      {
        id: "map-generator-1-vs-pool",
        label: "`map`, generator, concurrency 1 ÷ hand pool",
        reference: GENERATOR_POOL,
        goal: 1.2,
      },
    ],
    contenders: (count) => {
      const pipeline = new Pipeline([new Stage("increment", increment)]);
      const check = mapped(count);
      return [
        { name: GENERATOR_POOL, op: () => iteratorPool(numbers(count), 1), check },
        { name: "p-map", op: () => pMap(numbers(count), increment, { concurrency: 1 }), check },
        { name: OURS, op: () => pipeline.map(numbers(count), 1), check },
      ];
    },
  },
  {
    id: "settled-16",
    title: `\`mapSettled\`, array, concurrency ${String(CONCURRENCY)}`,
    floor: SETTLED_POOL,
    alternative: "p-map pMapSettled",
    rows: [
      {
        id: "map-settled-16-vs-pool",
        label: `\`mapSettled\`, concurrency ${String(CONCURRENCY)} ÷ hand pool writing settled results`,
        reference: SETTLED_POOL,
        goal: 1.1,
      },
      {
        id: "map-settled-16-vs-p-map",
        label: `\`mapSettled\`, concurrency ${String(CONCURRENCY)} ÷ p-map \`pMapSettled\``,
        reference: "p-map pMapSettled",
      },
    ],
    contenders: (count) => {
      const items = array(count);
      const pipeline = new Pipeline([new Stage("increment", increment)]);
      const check = (output: unknown): boolean =>
        Array.isArray(output) &&
        output.length === count &&
        (output as PromiseSettledResult<number>[]).every(
          (entry, index) => entry.status === "fulfilled" && entry.value === index + 1,
        );
      return [
        { name: SETTLED_POOL, op: () => settledPool(items, CONCURRENCY), check },
        {
          name: "p-map pMapSettled",
          op: () => pMapSettled(items, increment, { concurrency: CONCURRENCY }),
          check,
        },
        { name: OURS, op: () => pipeline.mapSettled(items, CONCURRENCY), check },
      ];
    },
  },
  {
    id: "stream-16",
    title: `\`stream\`, array, concurrency ${String(CONCURRENCY)}, ${String(CONCURRENCY)} results buffered`,
    floor: P_MAP_ITERABLE,
    alternative: P_MAP_ITERABLE,
    rows: [
      {
        id: "stream-16-vs-p-map-iterable",
        label: `\`stream\`, concurrency ${String(CONCURRENCY)} ÷ p-map \`pMapIterable\` (same read-ahead)`,
        reference: P_MAP_ITERABLE,
        goal: 0.45,
      },
    ],
    contenders: (count) => {
      const items = array(count);
      const pipeline = new Pipeline([new Stage("increment", increment)]);
      const expected = (count * (count + 1)) / 2;
      const check = (output: unknown): boolean => output === expected;
      return [
        {
          // The same read-ahead: pMapIterable's `backpressure` counts the items taken and not
          // yet read, as `concurrency + buffer` does.
          name: P_MAP_ITERABLE,
          op: () =>
            sum(
              pMapIterable(items, increment, {
                concurrency: CONCURRENCY,
                backpressure: 2 * CONCURRENCY,
              }),
            ),
          check,
        },
        {
          name: OURS,
          op: () => sum(pipeline.stream(items, CONCURRENCY, { buffer: CONCURRENCY })),
          check,
        },
      ];
    },
  },
  {
    id: "timeout-16",
    title: `\`map\` with \`timeout: ${String(TIMEOUT_MS)}\` on every attempt (never fires), concurrency ${String(CONCURRENCY)}`,
    floor: TIMEOUT_POOL,
    rows: [
      {
        id: "map-timeout-16-vs-pool",
        label: `\`map\` with a ${String(TIMEOUT_MS / 1000)} s \`timeout\` (never fires) ÷ hand pool + setTimeout race`,
        reference: TIMEOUT_POOL,
        goal: 1.35,
      },
    ],
    contenders: (count) => {
      const items = array(count);
      const check = mapped(count);
      return [timeoutPool(items), timedOurs(items)].map((contender) => ({ ...contender, check }));
    },
  },
  {
    id: "timeout-16-p-map",
    title: `\`map\` with \`timeout: ${String(TIMEOUT_MS)}\` on every attempt, against p-map + p-timeout`,
    floor: TIMEOUT_POOL,
    alternative: "p-map + p-timeout",
    fraction: ALTERNATIVE_FRACTION,
    rows: [
      {
        id: "map-timeout-16-vs-p-map",
        label: `\`map\` with a ${String(TIMEOUT_MS / 1000)} s \`timeout\` ÷ p-map + p-timeout`,
        reference: "p-map + p-timeout",
      },
    ],
    contenders: (count) => {
      const items = array(count);
      const check = mapped(count);
      return [
        { ...timeoutPool(items), check },
        {
          name: "p-map + p-timeout",
          op: () =>
            pMap(items, (item) => pTimeout(increment(item), { milliseconds: TIMEOUT_MS }), {
              concurrency: CONCURRENCY,
            }),
          check,
        },
        { ...timedOurs(items), check },
      ];
    },
  },
  {
    id: "retry-16",
    title: `\`map\` where 30% of the items fail once, \`retries: 1\`, \`retryDelay: 0\`, concurrency ${String(CONCURRENCY)}`,
    floor: RETRY_POOL,
    rows: [
      {
        id: "map-retry-16-vs-pool",
        label: "`map`, 30% of items fail once, `retries: 1` ÷ hand pool + try/catch",
        reference: RETRY_POOL,
        goal: 1.1,
      },
    ],
    contenders: (count) => {
      const items = array(count);
      const check = mapped(count);
      return [retryPool(items), retryingOurs(items)].map((contender) => ({ ...contender, check }));
    },
  },
  {
    id: "retry-16-p-map",
    title: "`map` where 30% of the items fail once, against p-map + p-retry",
    floor: RETRY_POOL,
    alternative: "p-map + p-retry",
    fraction: ALTERNATIVE_FRACTION,
    rows: [
      {
        id: "map-retry-16-vs-p-map",
        label: "`map`, 30% of items fail once, `retries: 1` ÷ p-map + p-retry",
        reference: "p-map + p-retry",
      },
    ],
    contenders: (count) => {
      const items = array(count);
      const check = mapped(count);
      // One flaky mapper per contender, reset at the start of each of its batches.
      const alternative = flaky(count);
      const pRetried: Contender = {
        name: "p-map + p-retry",
        op: () => {
          alternative.reset();
          return pMap(
            items,
            (item) => pRetry(() => alternative.mapper(item), { retries: 1, minTimeout: 0 }),
            { concurrency: CONCURRENCY },
          );
        },
      };
      return [retryPool(items), pRetried, retryingOurs(items)].map((contender) => ({
        ...contender,
        check,
      }));
    },
  },
];

function table(variant: Variant, count: number, measurement: Measurement): Table {
  return {
    caption: `${variant.title}, ${count.toLocaleString("en-US")} items`,
    headers: [
      "implementation",
      "wall time per item (median ±IQR/2)",
      "wall time per batch",
      "CPU time per batch",
      "time ÷ floor",
      `${OURS} time ÷ this`,
    ],
    align: ["l", "r", "r", "r", "r", "r"],
    rows: measurement.results.map((result) => [
      result.name === variant.floor ? `${result.name} (floor)` : result.name,
      formatSpread(result.wall, formatNs),
      formatNs(result.wall.median * count),
      formatNs(result.cpu.median * count),
      formatRatioRange(ratio(measurement, result.name, variant.floor)),
      result.name === OURS ? "—" : formatRatioRange(ratio(measurement, OURS, result.name)),
    ]),
  };
}

function variantCount(variant: Variant, settings: ChildSettings): number {
  return Math.round(itemCount(settings) * (variant.fraction ?? 1));
}

export default defineCase({
  groups: (settings): Group[] =>
    variantGroups(VARIANTS, settings.quick, (variant) => variantCount(variant, settings)),
  section: batchVariants,
});

async function batchVariants(
  settings: Settings,
  measureGroup: (id: string) => Promise<Measurement>,
): Promise<Section> {
  const count = itemCount(settings);
  const { tables, headlines, scores, groups } = await measureVariants(VARIANTS, measureGroup, {
    count: (variant) => variantCount(variant, settings),
    table,
    // The floor, then the alternative when it is another contender.
    versus: (variant) =>
      variant.alternative === undefined || variant.alternative === variant.floor
        ? [variant.floor]
        : [variant.floor, variant.alternative],
  });
  return {
    title: "5. Batch variants: generator input, `mapSettled`, `stream`, timeouts, retries",
    intro: [
      `${count.toLocaleString("en-US")} items, a one-stage pipeline whose handler is`,
      "`async (n) => n + 1`; one operation is one whole batch, each contender gets one sample",
      "per round. The floors are minimal hand-written worker pools doing the same job: pulling",
      "from the same generator; writing `{ status, value }` per item; racing each attempt",
      "against a `setTimeout` that is cleared; retrying once in a `catch`. The alternatives are",
      "p-map with p-timeout or p-retry (`minTimeout: 0`) around the mapper, `pMapSettled`, and",
      `\`pMapIterable\` with \`backpressure: ${String(2 * CONCURRENCY)}\`, the same read-ahead as`,
      `\`stream(items, ${String(CONCURRENCY)}, { buffer: ${String(CONCURRENCY)} })\` (at most`,
      `${String(2 * CONCURRENCY)} items taken and not yet read). The stream consumers sum what`,
      "they read. In the retry variant, the first attempt fails for the items whose value ends",
      "in 0, 1 or 2 (a pre-made `Error`, so that no stack trace is captured), the second succeeds.",
      "p-timeout and p-retry take tens of microseconds per item, so the groups comparing with",
      `them map ${(count * ALTERNATIVE_FRACTION).toLocaleString("en-US")} items, with the floor as a common reference.`,
    ],
    tables,
    notes: [],
    charts: [
      {
        title: `5. batch variants, ${count.toLocaleString("en-US")} items: wall time per item (shorter is faster)`,
        unit: "ns per item",
        groups,
        scale: "log",
      },
    ],
    headlines,
    scores,
  };
}
