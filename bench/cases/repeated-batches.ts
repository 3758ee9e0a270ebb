/**
 * Case 8: repeated batches with a full GC between them. Each run is a child process
 * (repeated-child.ts) doing 12 batches of `map` (or `stream`) over 1,000,000 items; the
 * figure is the slowest batch ÷ the fastest, per run. V8 drops the hidden classes of a class
 * once no instance is alive, which a full GC between two batches achieves: if the per-batch
 * objects (the pool, its task, the stream) had several shapes, the functions that handle them
 * would turn megamorphic batch after batch and slow down (they did: 3 to 5 times, from about
 * the seventh batch, before every per-batch object was given one shape).
 */
import { fileURLToPath } from "node:url";
import { summarize, type Summary } from "../harness.js";
import {
  formatRatioRange,
  type Score,
  type Section,
  type Settings,
  type Table,
} from "../report.js";
import { spawnJson } from "../spawn-json.js";
import { defineCase } from "../suite.js";

const CHILD = fileURLToPath(new URL("../repeated-child.ts", import.meta.url));
const FORMS = ["map", "stream"] as const;
type Form = (typeof FORMS)[number];

function runChild(form: Form, items: number): Promise<number[]> {
  return spawnJson<number[]>(CHILD, [form, String(items)], `repeated-batches child (${form})`, [
    "--expose-gc",
  ]);
}

export default defineCase({
  // Measured by its own children, not by the harness: no groups.
  groups: () => [],
  section: async (settings: Settings): Promise<Section> => {
    const items = settings.quick ? 20_000 : 1_000_000;
    const runs = settings.quick ? 1 : 3;
    const rows: string[][] = [];
    const scores: Score[] = [];
    const headlines: string[] = [];
    for (const form of FORMS) {
      const spreads: number[] = [];
      for (let run = 0; run < runs; run++) {
        settings.log(`repeated-batches: ${form}, run ${String(run + 1)} of ${String(runs)}`);
        const times = await runChild(form, items);
        const spread = Math.max(...times) / Math.min(...times);
        spreads.push(spread);
        rows.push([
          `\`${form}\``,
          String(run + 1),
          times.map((time) => time.toFixed(0)).join(" "),
          spread.toFixed(2),
        ]);
      }
      const summary: Summary = summarize(spreads);
      scores.push({
        id: `repeated-${form}`,
        label: `12 batches of \`${form}\` with a full GC between: slowest ÷ fastest`,
        wall: summary,
        cpu: summary,
        goal: 1.15,
      });
      headlines.push(
        `${form}: 12 batches with a full GC between, slowest ÷ fastest ${formatRatioRange(summary)}`,
      );
    }
    const table: Table = {
      caption: `12 batches of ${items.toLocaleString("en-US")} items each, concurrency 16, a full GC before each batch`,
      headers: ["form", "run", "wall time per batch (ms)", "slowest ÷ fastest"],
      align: ["l", "r", "l", "r"],
      rows,
    };
    return {
      title: "Repeated batches",
      intro: [
        "Batch after batch in one process, with a full GC forced before each: V8 forgets the hidden classes of objects no longer alive, so per-batch objects of several shapes would leave the hot functions megamorphic and slower from batch to batch. Slowest batch ÷ fastest, per run of 12 (wall time; the scorecard's CPU column repeats it).",
      ],
      tables: [table],
      notes: [],
      charts: [],
      headlines,
      scores,
    };
  },
});
