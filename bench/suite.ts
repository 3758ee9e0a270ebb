/**
 * What a benchmark case is, and how its groups are measured: each group of contenders in a
 * fresh child process (group-child.ts), one child at a time, so that the JIT state, the heap
 * and the timers one group leaves behind cannot bias the next group's figures.
 *
 * A case is one file under bench/cases whose default export is a {@link BenchCase}, listed by
 * file name in run.ts. The parent calls `section(settings, measure)`; each `measure(id)` starts
 * a child, which imports the same file, calls `groups(settings)` again, builds that one
 * group's contenders (so a million-item input is only ever built in the child) and measures
 * them interleaved (harness.ts).
 */
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { Contender, Measurement, MeasureOptions } from "./harness.js";
import type { Section, Settings } from "./report.js";

/** The settings a child needs to rebuild a case's groups: all of them but the logger. */
export type ChildSettings = Omit<Settings, "log">;

/** One set of contenders compared with each other, interleaved, in one child process. */
export interface Group {
  /** Unique within its case; names the group to the child. */
  readonly id: string;
  /** Rounds, sample length, warm-up, units per op. The seed and clock come from the settings. */
  readonly options: Omit<MeasureOptions, "seed" | "clock" | "onRound">;
  /** Builds the contenders, in the child only. */
  readonly contenders: () => readonly Contender[] | Promise<readonly Contender[]>;
}

/** The default export of a file under bench/cases. */
export interface BenchCase {
  /** The case's groups; called in the parent (for their ids) and again in the child. */
  readonly groups: (settings: ChildSettings) => readonly Group[];
  /** Measures what it needs (`measure(id)` runs one group in a child) and reports it. */
  readonly section: (
    settings: Settings,
    measure: (id: string) => Promise<Measurement>,
  ) => Promise<Section>;
}

/** Identity, for type checking a case's default export. */
export function defineCase(benchCase: BenchCase): BenchCase {
  return benchCase;
}

/** The module of the case named `name` (a file name under bench/cases, without extension). */
export async function loadCase(name: string): Promise<BenchCase> {
  const module = (await import(`./cases/${name}.js`)) as { default?: BenchCase };
  if (module.default === undefined) throw new Error(`bench/cases/${name}.ts has no default export`);
  return module.default;
}

/** A seed per group, so that every group's shuffle differs and a run can be repeated. */
export function groupSeed(settings: ChildSettings, caseName: string, id: string): number {
  let hash = settings.seed >>> 0;
  for (const character of `${caseName}/${id}`) {
    hash = Math.imul(hash ^ (character.codePointAt(0) ?? 0), 16_777_619) >>> 0;
  }
  return hash;
}

const CHILD = fileURLToPath(new URL("./group-child.ts", import.meta.url));
const ROOT = fileURLToPath(new URL("..", import.meta.url));

/** Runs group `id` of case `caseName` in a fresh child process and returns its measurement. */
export function measureInChild(
  caseName: string,
  id: string,
  settings: Settings,
): Promise<Measurement> {
  const { log, ...childSettings } = settings;
  log(`${caseName}: ${id}`);
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ["--import", "tsx", CHILD, caseName, id, JSON.stringify(childSettings)],
      // tsx is resolved from the working directory: the package root.
      { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] },
    );
    let output = "";
    child.stdout.setEncoding("utf8");
    child.stdout.on("data", (chunk: string) => {
      output += chunk;
    });
    child.stderr.setEncoding("utf8");
    child.stderr.on("data", (chunk: string) => {
      for (const line of chunk.split("\n")) if (line !== "") log(`  ${line}`);
    });
    child.on("error", reject);
    child.on("close", (code) => {
      if (code !== 0) {
        reject(new Error(`group ${caseName}/${id} exited with ${String(code)}`));
        return;
      }
      resolve(JSON.parse(output) as Measurement);
    });
  });
}
