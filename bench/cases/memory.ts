/**
 * Case 3: `map` memory over a generator of small numbers, against p-map (and the
 * hand-written pool as the floor), one child process per library, item count and mode, so
 * that figures do not mix. See memory-child.ts for what each child measures.
 */
import { fileURLToPath } from "node:url";
import {
  beyondResults,
  LIBRARIES,
  type LibraryName,
  type MemoryReport,
  type Mode,
} from "../memory-report.js";
import {
  OURS,
  formatBytes,
  type ChartPanel,
  type Section,
  type Settings,
  type Table,
} from "../report.js";
import { spawnJson } from "../spawn-json.js";
import { defineCase } from "../suite.js";

const CONCURRENCY = 16;
const CHILD = fileURLToPath(new URL("../memory-child.ts", import.meta.url));

function runChild(library: LibraryName, items: number, mode: Mode): Promise<MemoryReport> {
  return spawnJson<MemoryReport>(
    CHILD,
    [library, String(items), String(CONCURRENCY), mode],
    `memory child for ${library} (${String(items)} items)`,
    ["--expose-gc"],
  );
}

/** Least-squares slope of bytes against items. */
function slope(points: readonly { items: number; bytes: number }[]): number {
  const n = points.length;
  const meanX = points.reduce((sum, point) => sum + point.items, 0) / n;
  const meanY = points.reduce((sum, point) => sum + point.bytes, 0) / n;
  let numerator = 0;
  let denominator = 0;
  for (const point of points) {
    numerator += (point.items - meanX) * (point.bytes - meanY);
    denominator += (point.items - meanX) ** 2;
  }
  return numerator / denominator;
}

/** A number with two decimals and a real minus sign. */
function formatSigned(value: number): string {
  const text = Math.abs(value).toFixed(2);
  return value < 0 && Number(text) !== 0 ? `−${text}` : text;
}

function finalReference(report: MemoryReport): number {
  return report.reference[report.reference.length - 1]?.bytes ?? NaN;
}

/** Measures in child processes of its own (memory-child.ts): no timed groups. */
export default defineCase({ groups: () => [], section: mapMemory });

async function mapMemory(settings: Settings): Promise<Section> {
  // 250k and 1M: memory beyond the results array must stay flat between the two.
  const counts = settings.quick ? [5_000, 20_000] : [250_000, 1_000_000];
  const reports = new Map<string, MemoryReport>();
  const key = (library: string, items: number, mode: Mode): string =>
    `${library}/${String(items)}/${mode}`;
  const jobs = counts.flatMap((items) =>
    (["peak", "live"] as const).flatMap((mode) =>
      LIBRARIES.map((library) => ({ library, items, mode })),
    ),
  );
  // One child at a time, so that they do not compete for the cores; two at once in quick
  // mode, whose figures only show that the code runs.
  const parallel = settings.quick ? 2 : 1;
  let next = 0;
  const worker = async (): Promise<void> => {
    for (let job = jobs[next++]; job !== undefined; job = jobs[next++]) {
      const { library, items, mode } = job;
      settings.log(`map memory: ${library}, ${items.toLocaleString("en-US")} items, ${mode}`);
      reports.set(key(library, items, mode), await runChild(library, items, mode));
    }
  };
  await Promise.all(Array.from({ length: parallel }, worker));
  const get = (library: string, items: number, mode: Mode): MemoryReport => {
    const report = reports.get(key(library, items, mode));
    if (report === undefined) throw new Error(`missing ${key(library, items, mode)}`);
    return report;
  };
  const label = (library: string): string =>
    library === LIBRARIES[0] ? `${library} (floor)` : library;

  const peakRows: string[][] = [];
  const liveRows: string[][] = [];
  for (const items of counts) {
    for (const library of LIBRARIES) {
      const peak = get(library, items, "peak");
      const results = finalReference(peak);
      peakRows.push([
        label(library),
        items.toLocaleString("en-US"),
        formatBytes(peak.peak.heapUsed - peak.baseline.heapUsed),
        formatBytes(peak.peak.rss),
        formatBytes(peak.peak.rss - peak.baseline.rss),
        formatBytes(results),
        formatBytes(peak.peak.heapUsed - peak.baseline.heapUsed - results),
        `${peak.elapsedMs.toFixed(0)} ms`,
      ]);
      const live = beyondResults(get(library, items, "live"));
      const first = live[0];
      const last = live[live.length - 1];
      const most = Math.max(...live.map((point) => point.bytes));
      liveRows.push([
        label(library),
        items.toLocaleString("en-US"),
        first === undefined ? "n/a" : formatBytes(first.bytes),
        last === undefined ? "n/a" : formatBytes(last.bytes),
        formatBytes(most),
        `${formatSigned(slope(live))} B`,
      ]);
    }
  }
  const largest = counts[counts.length - 1] as number;
  const smallest = counts[0] as number;
  const beyondMax = (library: string, items: number): number =>
    Math.max(...beyondResults(get(library, items, "live")).map((point) => point.bytes));
  const peakGroups: ChartPanel["groups"][number][] = [];
  const liveGroups: ChartPanel["groups"][number][] = [];
  for (const items of counts) {
    peakGroups.push({
      label: `${items.toLocaleString("en-US")} items`,
      bars: LIBRARIES.map((library) => {
        const peak = get(library, items, "peak");
        const bytes = peak.peak.heapUsed - peak.baseline.heapUsed;
        return { label: library, value: bytes / 1024 ** 2, text: formatBytes(bytes) };
      }),
    });
    liveGroups.push({
      label: `${items.toLocaleString("en-US")} items`,
      bars: LIBRARIES.map((library) => {
        const bytes = beyondMax(library, items);
        return { label: library, value: bytes / 1024, text: formatBytes(bytes) };
      }),
    });
  }

  const oursPeak = get(OURS, largest, "peak");
  const pMapPeak = get("p-map", largest, "peak");
  const headlines = [
    `map memory, ${largest.toLocaleString("en-US")} items from a generator: ${OURS} peak heap ` +
      `${formatBytes(oursPeak.peak.heapUsed - oursPeak.baseline.heapUsed)} over baseline ` +
      `(p-map ${formatBytes(pMapPeak.peak.heapUsed - pMapPeak.baseline.heapUsed)}), peak RSS ` +
      `${formatBytes(oursPeak.peak.rss)} (p-map ${formatBytes(pMapPeak.peak.rss)})`,
    `map memory beyond the results array, after GC: ${OURS} at most ` +
      `${formatBytes(beyondMax(OURS, smallest))} at ${smallest.toLocaleString("en-US")} items and ` +
      `${formatBytes(beyondMax(OURS, largest))} at ${largest.toLocaleString("en-US")} items ` +
      `(${formatSigned(slope(beyondResults(get(OURS, largest, "live"))))} bytes per item); p-map ` +
      `${formatBytes(beyondMax("p-map", smallest))} and ${formatBytes(beyondMax("p-map", largest))}`,
  ];

  const peakTable: Table = {
    caption: `map memory, peak (process.memoryUsage() every 1,000 items, no forced GC), concurrency ${String(CONCURRENCY)}`,
    headers: [
      "implementation",
      "items",
      "peak heapUsed − baseline",
      "peak RSS",
      "peak RSS − baseline",
      "results array alone",
      "peak heap − baseline − results",
      "time",
    ],
    align: ["l", "r", "r", "r", "r", "r", "r", "r"],
    rows: peakRows,
  };
  const liveTable: Table = {
    caption: `map memory, live (forced GC every tenth of the input), beyond baseline and results array`,
    headers: [
      "implementation",
      "items",
      "at 10% of the input",
      "at the end",
      "largest",
      "growth per item",
    ],
    align: ["l", "r", "r", "r", "r", "r"],
    rows: liveRows,
  };
  return {
    title: "3. `map` memory",
    intro: [
      "`map` over a generator yielding `i % 100`, concurrency " +
        `${String(CONCURRENCY)}, handler \`async (n) => n + 1\`, against p-map and a hand-written`,
      "worker pool pulling from the same iterator. Each figure comes from a child process of its",
      "own (`node --expose-gc --import tsx bench/memory-child.ts …`), one per implementation,",
      "item count and mode. Baseline: `heapUsed`/`rss` after imports, a warm-up run on 10,000",
      'items and a forced GC. "Results array alone" is the heap that a plain array of the same',
      "numbers, filled in order, holds: measured in the same child, so that what the",
      "implementation holds beyond its results can be told apart. The baseline RSS includes",
      "tsx's loader thread, the same for every implementation.",
    ],
    tables: [peakTable, liveTable],
    notes: [
      '"Live" figures: at each tenth of the input the generator forces a GC and reads',
      "`heapUsed`; the table gives that minus the baseline minus the results array's size at the",
      'same count. "Growth per item" is the least-squares slope of that over the checkpoints:',
      "zero means the memory held beyond the results array does not grow with the item count.",
      "Peak figures without a forced GC include garbage not yet collected, so they depend on",
      "V8's heap sizing more than on the implementation.",
    ],
    charts: [
      {
        title: `3a. map memory: peak heapUsed over the baseline, concurrency ${String(CONCURRENCY)}`,
        unit: "MiB, sampled every 1,000 items without a forced GC (garbage included)",
        groups: peakGroups,
      },
      {
        title: "3b. map memory: live heap beyond the results array, after a forced GC",
        unit: "KiB, the largest of ten checkpoints (zero or less draws no bar)",
        groups: liveGroups,
      },
    ],
    headlines,
  };
}
