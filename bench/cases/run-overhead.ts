/**
 * Case 1: the overhead of `pipeline.run` on a 10-stage pipeline of trivial async handlers,
 * against a hand-written `for` loop of awaits (the floor) and p-pipe; then with both hooks
 * set, with a timeout on every stage, and with `retries` set but never used. Each variant
 * has its own floor, a hand-written loop doing the same job, and the plain loop stays in
 * every set as the absolute reference.
 */
import pPipe from "p-pipe";
import pRetry from "p-retry";
import pTimeout from "p-timeout";
import { ratio, find, type Contender, type Measurement } from "../harness.js";
import { withTimeout } from "../floors.js";
import { Pipeline, Stage } from "../lib.js";
import {
  OURS,
  clockName,
  formatNs,
  formatRate,
  formatRatio,
  formatRatioRange,
  formatSpread,
  score,
  type ChartPanel,
  type Score,
  type Section,
  type Settings,
  type Table,
} from "../report.js";
import { defineCase } from "../suite.js";

type Step = (value: number) => Promise<number>;

const STAGES = 10;
const TIMEOUT_MS = 1_000;
const RETRIES = 3;
const step: Step = async (value) => value + 1;
const steps: readonly Step[] = Array.from({ length: STAGES }, () => step);
const names: readonly string[] = steps.map((_, index) => `stage${String(index)}`);

// Sync no-op hooks. The library reads a hook's declared parameter count (3+ / 5+ passes the
// context), so the parameters are declared, unused.
/* eslint-disable @typescript-eslint/no-unused-vars */
const beforeStage = (_stageName: string, _input: unknown): unknown => undefined;
const afterStage = (
  _stageName: string,
  _input: unknown,
  _output: unknown,
  _error: unknown,
): unknown => undefined;
/* eslint-enable @typescript-eslint/no-unused-vars */

const PLAIN_LOOP = "for loop of awaits";
const PIPE = "p-pipe";
const HOOKED_FLOOR = "loop calling both hooks as the library does";

/** p-pipe's typings have one overload per arity; a list of same-typed steps fits all of them. */
const pipe = pPipe as unknown as (...functions: Step[]) => (value: number) => Promise<number>;

async function plainLoop(input: number): Promise<number> {
  let value = input;
  for (const fn of steps) value = await fn(value);
  return value;
}

/** The least a loop calling both hooks can do: call them. */
async function bareHookedLoop(input: number): Promise<number> {
  let value = input;
  for (let index = 0; index < STAGES; index++) {
    const name = names[index] as string;
    beforeStage(name, value);
    const output = await (steps[index] as Step)(value);
    afterStage(name, value, output, undefined);
    value = output;
  }
  return value;
}

function isPromiseLike(value: unknown): value is PromiseLike<unknown> {
  return (
    typeof value === "object" &&
    value !== null &&
    typeof (value as { then?: unknown }).then === "function"
  );
}

/**
 * One stage with the hooks' contract, by hand: a hook's failure is ignored, an async hook is
 * awaited, and afterStage also runs when the stage fails, with the error.
 */
async function hookedStep(fn: Step, name: string, value: number): Promise<number> {
  try {
    const result = beforeStage(name, value);
    if (isPromiseLike(result)) await result;
  } catch {
    // ignored, as the library does
  }
  let output: number | undefined;
  let error: unknown;
  let failed = false;
  try {
    output = await fn(value);
  } catch (caught) {
    failed = true;
    error = caught;
  }
  try {
    const result = afterStage(name, value, output, error);
    if (isPromiseLike(result)) await result;
  } catch {
    // ignored, as the library does
  }
  if (failed) throw error;
  return output as number;
}

/** The same job as hookedStep, inlined in the loop: the floor. */
async function hookedLoop(input: number): Promise<number> {
  let value = input;
  for (let index = 0; index < STAGES; index++) {
    const name = names[index] as string;
    try {
      const result = beforeStage(name, value);
      if (isPromiseLike(result)) await result;
    } catch {
      // ignored, as the library does
    }
    let output: number | undefined;
    let error: unknown;
    let failed = false;
    try {
      output = await (steps[index] as Step)(value);
    } catch (caught) {
      failed = true;
      error = caught;
    }
    try {
      const result = afterStage(name, value, output, error);
      if (isPromiseLike(result)) await result;
    } catch {
      // ignored, as the library does
    }
    if (failed) throw error;
    value = output as number;
  }
  return value;
}

async function timeoutLoop(input: number): Promise<number> {
  let value = input;
  for (const fn of steps) value = await withTimeout(fn(value), TIMEOUT_MS);
  return value;
}

async function retryLoop(input: number): Promise<number> {
  let value = input;
  for (const fn of steps) {
    for (let attempt = 0; ; attempt++) {
      try {
        value = await fn(value);
        break;
      } catch (error) {
        if (attempt >= RETRIES) throw error;
      }
    }
  }
  return value;
}

interface Variant {
  readonly title: string;
  /** The floor's name, when it is not the plain loop. */
  readonly floorName: string;
  readonly contenders: readonly Contender[];
}

function variants(): Variant[] {
  const check = (output: unknown): boolean => output === STAGES;
  const stages = (options?: { timeout?: number; retries?: number }) =>
    names.map((name, index) => new Stage(name, steps[index] as Step, options));
  const plain: Contender = { name: PLAIN_LOOP, op: () => plainLoop(0), check };
  const ours = (pipeline: { run(input: number): Promise<number> }): Contender => ({
    name: OURS,
    op: () => pipeline.run(0),
    check,
  });

  const plainPipe = pipe(...steps);
  const hookedPipe = pipe(
    ...steps.map(
      (fn, index): Step =>
        (value) =>
          hookedStep(fn, names[index] as string, value),
    ),
  );
  const timeoutPipe = pipe(
    ...steps.map(
      (fn): Step =>
        (value) =>
          pTimeout(fn(value), { milliseconds: TIMEOUT_MS }),
    ),
  );
  const retryPipe = pipe(
    ...steps.map(
      (fn): Step =>
        (value) =>
          pRetry(() => fn(value), { retries: RETRIES, minTimeout: 0 }),
    ),
  );

  return [
    {
      title: "no hooks",
      floorName: PLAIN_LOOP,
      contenders: [
        plain,
        { name: PIPE, op: () => plainPipe(0), check },
        ours(new Pipeline(stages())),
      ],
    },
    {
      title: "beforeStage and afterStage set (sync no-ops)",
      floorName: HOOKED_FLOOR,
      contenders: [
        plain,
        { name: "loop calling both hooks, nothing more", op: () => bareHookedLoop(0), check },
        { name: HOOKED_FLOOR, op: () => hookedLoop(0), check },
        { name: `${PIPE} + the same hook wrapper`, op: () => hookedPipe(0), check },
        ours(new Pipeline(stages(), { beforeStage, afterStage })),
      ],
    },
    {
      title: `timeout: ${String(TIMEOUT_MS)} on every stage (never fires)`,
      floorName: "loop, setTimeout race per stage",
      contenders: [
        plain,
        { name: "loop, setTimeout race per stage", op: () => timeoutLoop(0), check },
        { name: `${PIPE} + p-timeout per stage`, op: () => timeoutPipe(0), check },
        ours(new Pipeline(stages({ timeout: TIMEOUT_MS }))),
      ],
    },
    {
      title: `retries: ${String(RETRIES)} on every stage (never used)`,
      floorName: "loop, try/catch retry per stage",
      contenders: [
        plain,
        { name: "loop, try/catch retry per stage", op: () => retryLoop(0), check },
        { name: `${PIPE} + p-retry per stage`, op: () => retryPipe(0), check },
        ours(new Pipeline(stages({ retries: RETRIES }))),
      ],
    },
  ];
}

function table(variant: Variant, measurement: Measurement, settings: Settings): Table {
  return {
    caption: `run, ${String(STAGES)} stages, ${variant.title}`,
    headers: [
      "implementation",
      `${clockName(settings)} per run (median ±IQR/2)`,
      "wall time per run",
      "runs/s",
      "time ÷ floor",
      "time ÷ plain loop",
      `${OURS} time ÷ this`,
    ],
    align: ["l", "r", "r", "r", "r", "r", "r"],
    rows: measurement.results.map((result) => [
      result.name === variant.floorName ? `${result.name} (floor)` : result.name,
      formatSpread(result.ns, formatNs),
      formatNs(result.wall.median),
      formatRate(result.ns.median),
      formatRatioRange(ratio(measurement, result.name, variant.floorName)),
      formatRatioRange(ratio(measurement, result.name, PLAIN_LOOP)),
      result.name === OURS ? "—" : formatRatioRange(ratio(measurement, OURS, result.name)),
    ]),
  };
}

export default defineCase({
  groups: (settings) =>
    variants().map((variant) => ({
      id: variant.title,
      options: {
        rounds: settings.quick ? 5 : 25,
        sampleMs: settings.quick ? 5 : 40,
        warmupMs: settings.quick ? 20 : 300,
      },
      contenders: () => variant.contenders,
    })),
  section: runOverhead,
});

async function runOverhead(
  settings: Settings,
  measureGroup: (id: string) => Promise<Measurement>,
): Promise<Section> {
  const tables: Table[] = [];
  const summaryRows: string[][] = [];
  const headlines: string[] = [];
  const groups: ChartPanel["groups"][number][] = [];
  const scores: Score[] = [];
  for (const variant of variants()) {
    const measurement = await measureGroup(variant.title);
    tables.push(table(variant, measurement, settings));
    const vsFloor = ratio(measurement, OURS, variant.floorName);
    if (variant.floorName === PLAIN_LOOP) {
      scores.push(
        score(measurement, {
          id: "run-10-vs-loop",
          label: `\`run\`, ${String(STAGES)} async stages ÷ for loop of awaits`,
          ours: OURS,
          reference: PLAIN_LOOP,
          goal: 1.1,
        }),
      );
    }
    const vsPlain = ratio(measurement, OURS, PLAIN_LOOP);
    const alternative = variant.contenders[variant.contenders.length - 2] as Contender;
    const vsAlternative = ratio(measurement, OURS, alternative.name);
    summaryRows.push([
      variant.title,
      formatNs(find(measurement, OURS).ns.median),
      formatRatioRange(vsFloor),
      formatRatioRange(vsPlain),
      formatRatioRange(vsAlternative),
      vsFloor.median <= 1.5 ? "yes" : "**no**",
    ]);
    headlines.push(
      `run, ${variant.title}: ${formatRatio(vsFloor.median)} the hand-written floor` +
        (variant.floorName === PLAIN_LOOP
          ? ""
          : ` (${formatRatio(vsPlain.median)} the plain loop)`) +
        `, ${formatRatio(vsAlternative.median)} ${alternative.name}`,
    );
    groups.push({
      label: variant.title,
      bars: measurement.results.map((result) => {
        const value = ratio(measurement, result.name, PLAIN_LOOP).median;
        return { label: result.name, value, text: formatRatio(value) };
      }),
    });
  }
  const summary: Table = {
    caption: `run overhead summary: ${OURS} time ÷ each reference (target: ≤ 1.5× the floor)`,
    headers: [
      "variant",
      `${OURS} per run`,
      "÷ hand-written floor",
      "÷ plain loop",
      "÷ p-pipe (same job)",
      "within 1.5× of floor",
    ],
    align: ["l", "r", "r", "r", "r", "l"],
    rows: summaryRows,
  };
  return {
    title: "1. `run` overhead",
    intro: [
      `A ${String(STAGES)}-stage pipeline of trivial async handlers (\`async (n) => n + 1\`),`,
      "one `run` per operation, against a hand-written `for` loop of awaits and p-pipe. Each",
      "variant adds a feature and a floor doing the same job by hand: calling both hooks",
      "around each stage, racing each stage against a `setTimeout` that is cleared, and",
      "wrapping each stage in a try/catch retry loop. p-pipe gets the same features from",
      'p-timeout and p-retry, or a hand-written wrapper for the hooks. "As the library does"',
      "means the hooks' contract: a hook's failure is ignored (try/catch), an async hook is",
      "awaited (a thenable check), and afterStage also runs when the stage fails; the loop that",
      "only calls the hooks is shown too.",
    ],
    tables: [summary, ...tables],
    scores,
    notes: [
      "Ratios are paired: each round times every contender once (in a shuffled order) and the",
      "ratio is taken within the round; the table gives the median and, in brackets, the",
      "minimum and maximum of those per-round ratios.",
    ],
    charts: [
      {
        title: "1. run overhead: time per run ÷ plain for loop of awaits (shorter is faster)",
        unit: "× plain loop",
        groups,
        scale: "log",
      },
    ],
    headlines,
  };
}
