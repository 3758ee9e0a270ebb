/**
 * Case 9: what a checkpoint costs a batch (issue 22). Two timed groups, and the memory of a
 * checkpointed `map` in child processes of its own (memory-child.ts):
 *
 * - items that each wait 1 ms (a timer, standing in for an I/O wait) at concurrency 64: a
 *   checkpointed `map` ÷ the same `map` without a checkpoint (goal ≤ 1.05);
 * - trivial items (`async (n) => n + 1`) at concurrency 16: a checkpointed `map` ÷ a
 *   hand-written floor, the array pool appending the same JSON lines (`{"i","h","o"}`, the
 *   item's hash included) and `fsync`ing them every `flushEvery` (`JournalFloor`), goal ≤ 1.5;
 * - memory beyond the results array after a forced GC, 250k and 1M items from a generator,
 *   checkpointed: flat (no growth per item).
 *
 * Every checkpointed batch starts from an empty checkpoint (`clearOnSuccess: true` deletes the
 * file when the batch completes; the floor deletes its own), in a temporary folder.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { arrayPool, JournalFloor } from "../floors.js";
import { ratio, type Measurement } from "../harness.js";
import { loadCheckpoint, Pipeline, Stage } from "../lib.js";
import { beyondResults, CHECKPOINTED, type MemoryReport, type Mode } from "../memory-report.js";
import {
  OURS,
  formatBytes,
  formatNs,
  formatRatioRange,
  formatSpread,
  type Section,
  type Settings,
  type Table,
} from "../report.js";
import { spawnJson } from "../spawn-json.js";
import { defineCase, type ChildSettings, type Group } from "../suite.js";
import { mapped, measureVariants, variantGroups, type Variant } from "../variants.js";

const FLUSH_EVERY = 200;
const PLAIN = "the same map, no checkpoint";
const FLOOR = `hand pool + JSON lines, fsync every ${String(FLUSH_EVERY)} ms`;

const increment = async (value: number): Promise<number> => value + 1;
const waitOneMs = (value: number): Promise<number> =>
  new Promise((resolve) => {
    setTimeout(() => {
      resolve(value + 1);
    }, 1);
  });

function array(count: number): number[] {
  return Array.from({ length: count }, (_, index) => index);
}

/** The FNV-1a hash the journal stores per item (over the item's JSON text). */
function hashOf(item: unknown): number {
  const text = JSON.stringify(item) ?? "undefined";
  let hash = 0x811c9dc5;
  for (let at = 0; at < text.length; at++) hash = Math.imul(hash ^ text.charCodeAt(at), 0x01000193);
  return hash >>> 0;
}

/** A temporary folder for one group's checkpoint files, removed when the process exits. */
function folder(): (name: string) => string {
  const dir = mkdtempSync(join(tmpdir(), "async-pipeline-bench-checkpoint-"));
  process.once("exit", () => {
    rmSync(dir, { recursive: true, force: true });
  });
  return (name) => join(dir, name);
}

/** `map` with a checkpoint that starts empty each batch. */
async function checkpointed(
  handler: (value: number) => Promise<number>,
  concurrency: number,
  path: string,
): Promise<(items: readonly number[]) => Promise<number[]>> {
  const { fileCheckpoint } = await loadCheckpoint();
  const pipeline = new Pipeline([new Stage("work", handler)]);
  return (items) =>
    pipeline.map(items, {
      concurrency,
      checkpoint: fileCheckpoint(path, { flushEvery: FLUSH_EVERY, clearOnSuccess: true }),
    });
}

/** The floor: the array pool, each finished item's record appended to a {@link JournalFloor}. */
async function floor(items: readonly number[], concurrency: number, path: string) {
  const journal = new JournalFloor(path, FLUSH_EVERY);
  journal.append(JSON.stringify({ format: "floor", stages: ["work"] }));
  // The items are their own indexes (0, 1, 2, …).
  const results = await arrayPool(items, concurrency, async (item) => {
    const output = await increment(item);
    journal.append(JSON.stringify({ i: item, h: hashOf(item), o: output }));
    return output;
  });
  journal.append(JSON.stringify({ complete: true }));
  journal.close();
  rmSync(path);
  return results;
}

const VARIANTS: readonly (Variant & { readonly count: (quick: boolean) => number })[] = [
  {
    id: "io-64",
    title: "`map`, items that each wait 1 ms, concurrency 64, with a file checkpoint",
    floor: PLAIN,
    count: (quick) => (quick ? 640 : 12_800),
    rows: [
      {
        id: "checkpoint-io-64-vs-plain",
        label: "`map` with a checkpoint, items waiting 1 ms, concurrency 64 ÷ without",
        reference: PLAIN,
        goal: 1.05,
      },
    ],
    contenders: () => [],
  },
  {
    id: "trivial-16",
    title: "`map`, trivial items, concurrency 16, with a file checkpoint",
    floor: FLOOR,
    count: (quick) => (quick ? 10_000 : 200_000),
    rows: [
      {
        id: "checkpoint-trivial-16-vs-floor",
        label: `\`map\` with a checkpoint, trivial items ÷ hand pool appending JSON lines, fsync every ${String(FLUSH_EVERY)} ms`,
        reference: FLOOR,
        goal: 1.5,
      },
    ],
    contenders: () => [],
  },
];

/** The groups' contenders need the built checkpoint entry point, loaded asynchronously. */
async function contenders(id: string, count: number) {
  const file = folder();
  const items = array(count);
  const check = mapped(count);
  if (id === "io-64") {
    const plain = new Pipeline([new Stage("work", waitOneMs)]);
    const ours = await checkpointed(waitOneMs, 64, file("io.ckpt"));
    return [
      { name: PLAIN, op: () => plain.map(items, 64), check },
      { name: OURS, op: () => ours(items), check },
    ];
  }
  const ours = await checkpointed(increment, 16, file("trivial.ckpt"));
  return [
    { name: FLOOR, op: () => floor(items, 16, file("floor.jsonl")), check },
    { name: OURS, op: () => ours(items), check },
  ];
}

function count(id: string, settings: ChildSettings): number {
  const variant = VARIANTS.find((candidate) => candidate.id === id);
  if (variant === undefined) throw new Error(`no variant ${id}`);
  return variant.count(settings.quick);
}

function table(variant: Variant, items: number, measurement: Measurement): Table {
  return {
    caption: `${variant.title}, ${items.toLocaleString("en-US")} items`,
    headers: [
      "implementation",
      "wall time per item (median ±IQR/2)",
      "wall time per batch",
      "CPU time per batch",
      `time ÷ ${variant.floor}`,
    ],
    align: ["l", "r", "r", "r", "r"],
    rows: measurement.results.map((result) => [
      result.name === variant.floor ? `${result.name} (reference)` : result.name,
      formatSpread(result.wall, formatNs),
      formatNs(result.wall.median * items),
      formatNs(result.cpu.median * items),
      formatRatioRange(ratio(measurement, result.name, variant.floor)),
    ]),
  };
}

const MEMORY_CHILD = fileURLToPath(new URL("../memory-child.ts", import.meta.url));

function memoryChild(items: number, mode: Mode): Promise<MemoryReport> {
  return spawnJson<MemoryReport>(
    MEMORY_CHILD,
    [CHECKPOINTED, String(items), "16", mode],
    `memory child for a checkpointed map (${String(items)} items)`,
    ["--expose-gc"],
  );
}

export default defineCase({
  groups: (settings): Group[] =>
    variantGroups(VARIANTS, settings.quick, (variant) => count(variant.id, settings)).map(
      (group) => ({
        ...group,
        contenders: () => contenders(group.id, count(group.id, settings)),
      }),
    ),
  section: async (settings: Settings, measureGroup): Promise<Section> => {
    const { tables, headlines, scores, groups } = await measureVariants(VARIANTS, measureGroup, {
      count: (variant) => count(variant.id, settings),
      table,
      versus: (variant) => [variant.floor],
    });
    const sizes = settings.quick ? [5_000, 20_000] : [250_000, 1_000_000];
    const memoryRows: string[][] = [];
    const largest: number[] = [];
    for (const items of sizes) {
      settings.log(`checkpoint memory: ${items.toLocaleString("en-US")} items`);
      const points = beyondResults(await memoryChild(items, "live"));
      const most = Math.max(...points.map((point) => point.bytes));
      largest.push(most);
      memoryRows.push([
        items.toLocaleString("en-US"),
        formatBytes(points[0]?.bytes ?? NaN),
        formatBytes(points[points.length - 1]?.bytes ?? NaN),
        formatBytes(most),
      ]);
    }
    headlines.push(
      `checkpointed map memory beyond the results array, after GC: at most ` +
        sizes
          .map(
            (items, at) =>
              `${formatBytes(largest[at] ?? NaN)} at ${items.toLocaleString("en-US")} items`,
          )
          .join(", "),
    );
    tables.push({
      caption: `\`map\` with a file checkpoint over a generator, concurrency 16: heap beyond the baseline and the results array, after a forced GC at each tenth of the input`,
      headers: ["items", "at 10% of the input", "at the end", "largest"],
      align: ["r", "r", "r", "r"],
      rows: memoryRows,
    });
    return {
      title: "9. Checkpoints",
      intro: [
        "What `checkpoint: fileCheckpoint(path)` costs a `map`: with items that wait 1 ms (a timer,",
        "standing in for I/O) at concurrency 64, against the same `map` without a checkpoint; with",
        "trivial items at concurrency 16, against a hand-written pool that appends the same JSON",
        `lines (the item's index, hash and output) and \`fsync\`s them every ${String(FLUSH_EVERY)} ms`,
        "(no checksum, no lock). Each batch starts from an empty checkpoint. Then the memory a",
        "checkpointed `map` holds beyond its results array (memory-child.ts, as in case 3).",
      ],
      tables,
      notes: [],
      charts: [{ title: "9. Checkpoints: wall time per item", unit: "ns per item", groups }],
      headlines,
      scores,
    };
  },
});
