/**
 * The benchmark entry point: `npm run bench` (full run, writes BENCHMARKS.md,
 * bench/chart.svg and bench/results/latest.json) or `npm run bench -- --quick` (tiny sizes,
 * prints only; CI runs it so that this code cannot rot). `--only=map-throughput,batch-variants` runs a
 * subset (prints only); `--clock=cpu` makes CPU time the headline clock instead of wall time;
 * `--baseline=path.json` compares with another saved run than bench/results/baseline-main.json;
 * `--render` redraws BENCHMARKS.md and the chart from bench/results/latest.json without
 * measuring.
 *
 * Each case is a file under bench/cases (default export: a `BenchCase`, see suite.ts) named in
 * CASES below: adding a case is adding that file and one line here. Every group of contenders
 * runs in a fresh child process, interleaved round by round (harness.ts); the memory case
 * starts its own child per implementation, item count and mode.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { drawChart } from "./chart.js";
import { libraryFile } from "./lib.js";
import { describeMachine, machineLines, type Machine } from "./machine.js";
import {
  consoleTable,
  markdownTable,
  OURS,
  scorecard,
  type Section,
  type Settings,
} from "./report.js";
import { loadCase, measureInChild } from "./suite.js";

/** The cases, in report order: file names under bench/cases, one per line. */
const CASES = [
  "run-overhead", // 1. pipeline.run overhead
  "map-throughput", // 2. map over an array, concurrency 1 / 16 / 256
  "memory", // 3. map memory, 250k and 1M items
  "retry-timeout", // 4. stage.run with a timeout, retries
  "batch-variants", // 5. generator input, mapSettled, stream, timed and retried map
  "flow-control", // 6. a rate-limited map, perKey
  "bullmq", // 7. distributed batches: jobs/s through Redis, memory per job
  "repeated-batches", // 8. 12 batches with a full GC between: slowest ÷ fastest
  "checkpoint", // 9. a checkpointed map: I/O-bound ÷ plain, trivial ÷ JSON-lines floor, memory
  "adaptive-concurrency", // 10. map with adaptiveConcurrency ÷ a fixed concurrency
] as const;

/** The short names `--only` took before the cases were named by file. */
const ALIASES: Readonly<Record<string, string>> = {
  run: "run-overhead",
  map: "map-throughput",
  retry: "retry-timeout",
  batch: "batch-variants",
};

const COMMAND = "npm run bench";
const REPORT = fileURLToPath(new URL("../BENCHMARKS.md", import.meta.url));
const CHART = fileURLToPath(new URL("./chart.svg", import.meta.url));
/** The last full run's figures, for `--render`. */
const SAVED = fileURLToPath(new URL("./results/latest.json", import.meta.url));
/** The "before" of BENCHMARKS.md's scorecard, when present: a saved full run on main. */
const BASELINE = fileURLToPath(new URL("./results/baseline-main.json", import.meta.url));

interface Arguments {
  quick: boolean;
  only: string[] | undefined;
  clock: "cpu" | "wall";
  baseline: string;
}

function parseArguments(argv: readonly string[]): Arguments {
  let quick = false;
  let only: string[] | undefined;
  let clock: "cpu" | "wall" = "wall";
  let baseline = BASELINE;
  for (const argument of argv) {
    if (argument === "--quick") quick = true;
    else if (argument === "--clock=wall" || argument === "--clock=cpu") {
      clock = argument === "--clock=wall" ? "wall" : "cpu";
    } else if (argument.startsWith("--baseline=")) {
      baseline = resolve(argument.slice("--baseline=".length));
    } else if (argument.startsWith("--only=")) {
      only = argument
        .slice("--only=".length)
        .split(",")
        .map((given) => {
          const name = ALIASES[given] ?? given;
          if (!(CASES as readonly string[]).includes(name))
            throw new Error(`unknown case ${given}: ${CASES.join(", ")}`);
          return name;
        });
    } else {
      throw new Error(
        `unknown argument ${argument}: use --quick, --only=${CASES.join(",")}, --clock=cpu, ` +
          "--baseline=file.json, or --render alone",
      );
    }
  }
  return { quick, only, clock, baseline };
}

/** A saved run's figures, or undefined when there is none. */
function readResults(file: string): Results | undefined {
  return existsSync(file) ? (JSON.parse(readFileSync(file, "utf8")) as Results) : undefined;
}

/** Everything BENCHMARKS.md and the chart are drawn from, saved so that they can be redrawn. */
interface Results {
  readonly machine: Machine;
  readonly clock: "cpu" | "wall";
  readonly elapsedMs: number;
  /** 1-minute load average when the run ended. */
  readonly endLoad: number;
  /** Highest 1-minute load average seen during the run (sampled every 5 s). */
  readonly peakLoad?: number | undefined;
  readonly sections: readonly Section[];
}

function markdown(results: Results, baseline: Results | undefined): string {
  const { machine, clock, elapsedMs, endLoad, sections } = results;
  const scores = sections.flatMap((section) => section.scores ?? []);
  const lines: string[] = [
    "# Benchmarks",
    "",
    `<!-- Generated by \`${COMMAND}\` (bench/run.ts). Do not edit by hand: run it again. -->`,
    "",
    `Produced by \`${COMMAND}\` in ${(elapsedMs / 60_000).toFixed(1)} minutes, on:`,
    "",
    ...machineLines(machine).map((line) => `- ${line}`),
    `- Load average (1 min) at the end: ${endLoad.toFixed(2)}` +
      (results.peakLoad === undefined
        ? ""
        : `; highest seen during the run: ${results.peakLoad.toFixed(2)}`),
    "",
    "![Benchmark chart](bench/chart.svg)",
    "",
  ];
  if (scores.length > 0) {
    lines.push(
      "## Scorecard",
      "",
      `${OURS}'s time ÷ the reference's, paired per round (below 1: faster than the reference);`,
      "the median, and in brackets the lowest and highest round. " +
        (baseline === undefined
          ? "No saved baseline (bench/results/baseline-main.json) to compare with."
          : `"Before" is the saved run of ${baseline.machine.date} (src/ at commit ` +
            `${baseline.machine.commit ?? "unknown"}, load average ${baseline.machine.load.toFixed(2)} ` +
            `at its start), bench/results/baseline-main.json.`),
      "",
      markdownTable(
        scorecard(
          scores,
          baseline?.sections.flatMap((section) => section.scores ?? []),
        ),
      ),
      "",
    );
  }
  lines.push(
    "## Method",
    "",
    "- The library is measured as users get it: `npm run build`, then the file the package's",
    '  `"exports"` map names for `import` (`dist/index.js`), loaded by path (not through tsx, which',
    "  would map `async-pipeline` to the TypeScript sources by tsconfig.json's `paths`).",
    "- Every group of contenders (one table below) runs in a fresh child process, one group at",
    "  a time, so that the JIT state and heap one group leaves cannot bias the next. Within a",
    "  group the contenders are interleaved: each round runs every contender once, in a shuffled",
    "  order (seeded, so a run can be repeated), and each contender gets one sample per round. A",
    "  sample is a batch of operations timed together, calibrated after a round-robin warm-up to",
    "  last about 40 ms (per-call cases), or one whole batch of 1,000,000 items (batch cases). No",
    "  GC is forced between samples (see the notes of the `map` throughput case).",
    clock === "cpu"
      ? "- Times are CPU time of the process (`process.cpuUsage()`, user + system, GC threads " +
          "included); wall time is given alongside."
      : "- Times are wall-clock time (`process.hrtime`), the headline clock: the CPU time of the " +
          "process also bills the garbage collector's parallel threads. The scorecard gives the " +
          "CPU-time ratio alongside.",
    "- Absolute figures are the median sample, ± half the interquartile range relative to it.",
    "  Ratios are paired: computed within each round, then summarised by their median and, in",
    "  brackets, their minimum and maximum. `time ÷ floor` above 1 means slower than the floor.",
    "- The memory case runs one child process per implementation, item count and mode.",
    `- Smoke check: \`${COMMAND} -- --quick\` (tiny sizes, under a minute, writes nothing); CI runs it.`,
    "",
    "## Summary",
    "",
    ...sections.flatMap((section) => section.headlines.map((headline) => `- ${headline}`)),
    "",
  );
  for (const section of sections) {
    lines.push(`## ${section.title}`, "", section.intro.join("\n"), "");
    for (const table of section.tables) {
      lines.push(`**${table.caption}**`, "", markdownTable(table), "");
    }
    if (section.notes.length > 0) lines.push(section.notes.join("\n"), "");
  }
  return lines.join("\n");
}

async function main(): Promise<void> {
  if (process.argv[2] === "--render") {
    // Redraws BENCHMARKS.md and the chart from the last full run's figures, measuring nothing.
    const saved = readResults(SAVED);
    if (saved === undefined) throw new Error(`${SAVED} does not exist: run ${COMMAND} first`);
    const { baseline } = parseArguments(process.argv.slice(3));
    write(saved, readResults(baseline));
    return;
  }
  const { quick, only, clock, baseline } = parseArguments(process.argv.slice(2));
  const started = performance.now();
  const machine = describeMachine(libraryFile);
  let peakLoad = machine.load;
  const loadTimer = setInterval(() => {
    peakLoad = Math.max(peakLoad, os.loadavg()[0] ?? 0);
  }, 5_000);
  loadTimer.unref();
  const log = (line: string): void => {
    const seconds = ((performance.now() - started) / 1000).toFixed(1).padStart(6);
    process.stderr.write(`[${seconds} s] ${line}\n`);
  };
  console.log(
    `async-pipeline benchmarks${quick ? " (quick mode: tiny sizes, figures not meaningful)" : ""}`,
  );
  for (const line of machineLines(machine)) console.log(`  ${line}`);
  console.log(
    `  Clock: ${clock === "cpu" ? "CPU time of the process (wall time alongside)" : "wall time (CPU time alongside)"}`,
  );
  console.log("");

  const settings: Settings = { quick, clock, seed: 20_240_601, log };
  const sections: Section[] = [];
  for (const name of only ?? CASES) {
    const benchCase = await loadCase(name);
    const section = await benchCase.section(settings, (id) => measureInChild(name, id, settings));
    sections.push(section);
    console.log(`\n${section.title}`);
    for (const table of section.tables) console.log(`\n${consoleTable(table)}`);
    console.log("");
  }
  clearInterval(loadTimer);
  const elapsedMs = performance.now() - started;
  const saved = readResults(baseline);
  const scores = sections.flatMap((section) => section.scores ?? []);
  if (scores.length > 0) {
    const before = saved?.sections.flatMap((section) => section.scores ?? []);
    console.log(`${consoleTable(scorecard(scores, before))}\n`);
  }
  console.log("Summary");
  for (const section of sections)
    for (const headline of section.headlines) console.log(`  - ${headline}`);
  const endLoad = os.loadavg()[0] ?? NaN;
  console.log(
    `\nDone in ${(elapsedMs / 1000).toFixed(1)} s; load average (1 min) ${machine.load.toFixed(2)} ` +
      `at the start, ${endLoad.toFixed(2)} at the end, ${peakLoad.toFixed(2)} at the highest.`,
  );

  if (quick || only !== undefined) {
    console.log("Quick or partial run: BENCHMARKS.md and bench/chart.svg left as they are.");
    return;
  }
  const results: Results = { machine, clock, elapsedMs, endLoad, peakLoad, sections };
  mkdirSync(dirname(SAVED), { recursive: true });
  writeFileSync(SAVED, `${JSON.stringify(results, null, 1)}\n`);
  write(results, saved);
}

function write(results: Results, baseline: Results | undefined): void {
  const { machine } = results;
  writeFileSync(REPORT, markdown(results, baseline));
  writeFileSync(
    CHART,
    drawChart(
      "async-pipeline benchmarks",
      `${machine.cpu}, ${String(machine.cores)} cores, Node.js ${machine.node}, ${machine.date}; generated by ${COMMAND}`,
      results.sections.flatMap((section) => section.charts),
    ),
  );
  console.log(`Wrote ${REPORT} and ${CHART}.`);
}

await main();
