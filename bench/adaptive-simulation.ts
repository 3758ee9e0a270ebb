/**
 * The figures of docs/adaptive-concurrency.md: `npx tsx bench/adaptive-simulation.ts`
 * (`--quick`: three capacities, ours and AIMD only). Every batch runs against the simulated
 * service of test/support/simulator.ts in virtual time (the virtual clock of
 * simulator-clock.ts, since vitest's fake timers need a vitest run), so the figures are the
 * same on any machine and in any run, and match what the adaptive tests measure.
 *
 * It prints three Markdown tables: each algorithm against each capacity (throughput ÷ the
 * best fixed concurrency's, 429s, convergence), `adaptiveConcurrency` against three shapes
 * of latency, and `adaptiveConcurrency` when the capacity halves or doubles mid-batch.
 *
 * `adaptiveConcurrency` and the fixed concurrencies run through the real `Pipeline` (as a
 * batch's `concurrency`, and as the one key's `perKey.concurrency`); the other algorithms,
 * which are gauges and nothing more, through the batch driver (test/support/simulator-batch.ts).
 * Not a case of `npm run bench` (bench/run.ts): it measures no time of this machine's.
 */
import { adaptiveConcurrency } from "../src/index.js";
import type { LimitGauge } from "../src/internal/limits.js";
import { curves, type LatencyCurve } from "../test/support/simulator.js";
import { Aimd, Gradient2, Vegas, Windowed } from "../test/support/simulator-candidates.js";
import { VirtualClock } from "../test/support/simulator-clock.js";
import {
  adaptiveOnShift,
  bestFixed,
  CAPACITIES,
  runAdaptive,
  runAlgorithm,
  SHIFTS,
  steadyScenario,
  type AlgorithmFigures,
} from "../test/support/simulator-figures.js";

const quick = process.argv.includes("--quick");

const clock = new VirtualClock();
const advance = (ms: number): Promise<void> => clock.advance(ms);

/** The algorithms `adaptiveConcurrency` is compared with, each a fresh gauge per batch. */
const ALGORITHMS: readonly { readonly name: string; readonly gauge: () => LimitGauge }[] = [
  { name: "AIMD", gauge: () => new Aimd() },
  { name: "Vegas", gauge: () => new Vegas() },
  { name: "Gradient2", gauge: () => new Gradient2() },
  { name: "Vegas, windowed", gauge: () => new Windowed(new Vegas()) },
  { name: "Gradient2, windowed", gauge: () => new Windowed(new Gradient2()) },
];

const capacities: readonly number[] = quick ? [4, 25, 100] : CAPACITIES;
const algorithms = quick ? ALGORITHMS.slice(0, 1) : ALGORITHMS;

function percent(value: number): string {
  return Number.isFinite(value) ? `${(100 * value).toFixed(1)}%` : "–";
}

function cell(result: AlgorithmFigures): string {
  const convergence = Number.isFinite(result.convergence) ? result.convergence.toFixed(0) : "never";
  const failed = result.figures.failed > 0 ? `, ${String(result.figures.failed)} failed` : "";
  return `${percent(result.steadyRatio)} · ${percent(result.figures.steadyRejectedShare)} · ${convergence}${failed}`;
}

function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const lines = [header, header.map(() => "---"), ...rows];
  return lines.map((line) => `| ${line.join(" | ")} |`).join("\n");
}

async function comparison(): Promise<string> {
  const rows: string[][] = algorithms.map((algorithm) => [algorithm.name]);
  const bestRow = ["best fixed concurrency"];
  const oursRow = ["`adaptiveConcurrency`"];
  const wholeRow = ["`adaptiveConcurrency`: 429s over the whole batch, ramp included"];
  const keyedRow = ["`adaptiveConcurrency` as `perKey.concurrency` (one key)"];
  for (const capacity of capacities) {
    const scenario = steadyScenario(capacity);
    const best = await bestFixed(scenario, advance);
    bestRow.push(String(best.concurrency));
    const ours = await runAdaptive(scenario, adaptiveConcurrency(), best, advance);
    oursRow.push(cell(ours));
    wholeRow.push(percent(ours.figures.rejectedShare));
    keyedRow.push(cell(await runAdaptive(scenario, adaptiveConcurrency(), best, advance, true)));
    for (const [index, algorithm] of algorithms.entries()) {
      const result = await runAlgorithm(scenario, algorithm.gauge(), best, advance);
      (rows[index] as string[]).push(cell(result));
    }
  }
  return table(
    ["algorithm", ...capacities.map((capacity) => `C = ${String(capacity)}`)],
    [bestRow, oursRow, wholeRow, keyedRow, ...rows],
  );
}

async function shapes(): Promise<string> {
  const named: readonly [string, LatencyCurve][] = [
    ["quadratic (1 + load², the tests')", curves.quadratic],
    ["queue (flat to 70%, then ∝ load)", curves.queue],
    ["flat (the 429 is the only sign)", curves.flat],
  ];
  const rows: string[][] = [];
  for (const [name, curve] of named) {
    const row = [name];
    for (const capacity of capacities) {
      const scenario = steadyScenario(capacity, curve);
      const best = await bestFixed(scenario, advance);
      row.push(cell(await runAdaptive(scenario, adaptiveConcurrency(), best, advance)));
    }
    rows.push(row);
  }
  return table(["latency", ...capacities.map((capacity) => `C = ${String(capacity)}`)], rows);
}

async function shifts(): Promise<string> {
  const rows: string[][] = [];
  for (const [from, to] of quick ? SHIFTS.slice(0, 2) : SHIFTS) {
    const { best, result, controller } = await adaptiveOnShift(from, to, advance);
    rows.push([
      `${String(from)} → ${String(to)}`,
      String(best.concurrency),
      percent(result.lastThirdRatio),
      percent(result.figures.rejectedShare),
      String(controller.limit),
    ]);
  }
  return table(
    [
      "capacity",
      "best fixed for the new one",
      "last third ÷ its throughput",
      "429s, whole batch",
      "limit at the end",
    ],
    rows,
  );
}

clock.install();
try {
  const started = process.hrtime.bigint();
  const sections = [
    ["Throughput ÷ the best fixed concurrency's · 429s · round trips to 90%", await comparison()],
    ["`adaptiveConcurrency` against three shapes of latency", await shapes()],
    ["`adaptiveConcurrency` when the capacity changes mid-batch", await shifts()],
  ] as const;
  for (const [title, body] of sections) console.log(`### ${title}\n\n${body}\n`);
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  console.log(`(${seconds.toFixed(1)} s of real time)`);
} finally {
  clock.uninstall();
}
