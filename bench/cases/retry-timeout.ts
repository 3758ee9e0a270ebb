/**
 * Case 4: what a timeout and a retry cost per attempt, against p-timeout and p-retry doing
 * the same job, and a hand-written floor. Measured on `stage.run`, one stage, no pipeline.
 */
import pRetry from "p-retry";
import pTimeout from "p-timeout";
import { ratio, type Contender, type Measurement } from "../harness.js";
import { Stage } from "../lib.js";
import {
  OURS,
  clockName,
  formatNs,
  formatRatio,
  formatRatioRange,
  formatSpread,
  type ChartPanel,
  type Section,
  type Settings,
  type Table,
} from "../report.js";
import { defineCase } from "../suite.js";

type Handler = (value: number) => Promise<number>;

const TIMEOUT_MS = 1_000;
/** Attempts per call in the retry scenarios: four failures, then a success. */
const ATTEMPTS = 5;
const RETRIES = ATTEMPTS - 1;
/** Thrown by the flaky handlers: made once, so that its stack trace is not part of the cost. */
const TRANSIENT = new Error("transient failure");

const succeed: Handler = async (value) => value + 1;

/** A handler whose calls fail four times out of five, starting afresh for each contender. */
function flaky(): Handler {
  let calls = 0;
  return async (value) => {
    calls++;
    if (calls % ATTEMPTS !== 0) throw TRANSIENT;
    return value + 1;
  };
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => {
      reject(new Error(`timed out after ${String(ms)} ms`));
    }, ms);
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}

async function retryLoop(attempt: () => Promise<number>): Promise<number> {
  for (let failures = 0; ; failures++) {
    try {
      return await attempt();
    } catch (error) {
      if (failures >= RETRIES) throw error;
    }
  }
}

interface Scenario {
  readonly title: string;
  readonly floorName: string;
  readonly alternativeName: string;
  readonly attempts: number;
  readonly contenders: readonly Contender[];
}

function scenarios(): Scenario[] {
  const check = (output: unknown): boolean => output === 2;
  const timeoutOnly = new Stage("timed", succeed, { timeout: TIMEOUT_MS });
  const bare = new Stage("bare", succeed);
  const retryHandlers = { floor: flaky(), alternative: flaky(), ours: flaky() };
  const retryStage = new Stage("flaky", retryHandlers.ours, { retries: RETRIES });
  const bothHandlers = { floor: flaky(), alternative: flaky(), ours: flaky() };
  const bothStage = new Stage("flaky", bothHandlers.ours, {
    retries: RETRIES,
    timeout: TIMEOUT_MS,
  });
  return [
    {
      title: `timeout ${String(TIMEOUT_MS)} ms, one attempt that succeeds`,
      floorName: "setTimeout race, cleared",
      alternativeName: "p-timeout",
      attempts: 1,
      contenders: [
        { name: "setTimeout race, cleared", op: () => withTimeout(succeed(1), TIMEOUT_MS), check },
        {
          name: "p-timeout",
          op: () => pTimeout(succeed(1), { milliseconds: TIMEOUT_MS }),
          check,
        },
        { name: `${OURS}, no timeout (reference)`, op: () => bare.run(1), check },
        { name: OURS, op: () => timeoutOnly.run(1), check },
      ],
    },
    {
      title: `retries ${String(RETRIES)}, no delay: four failures then a success`,
      floorName: "try/catch loop",
      alternativeName: "p-retry",
      attempts: ATTEMPTS,
      contenders: [
        { name: "try/catch loop", op: () => retryLoop(() => retryHandlers.floor(1)), check },
        {
          name: "p-retry",
          op: () => pRetry(() => retryHandlers.alternative(1), { retries: RETRIES, minTimeout: 0 }),
          check,
        },
        { name: OURS, op: () => retryStage.run(1), check },
      ],
    },
    {
      title: `retries ${String(RETRIES)} and timeout ${String(TIMEOUT_MS)} ms on each attempt`,
      floorName: "try/catch loop + setTimeout race",
      alternativeName: "p-retry + p-timeout",
      attempts: ATTEMPTS,
      contenders: [
        {
          name: "try/catch loop + setTimeout race",
          op: () => retryLoop(() => withTimeout(bothHandlers.floor(1), TIMEOUT_MS)),
          check,
        },
        {
          name: "p-retry + p-timeout",
          op: () =>
            pRetry(() => pTimeout(bothHandlers.alternative(1), { milliseconds: TIMEOUT_MS }), {
              retries: RETRIES,
              minTimeout: 0,
            }),
          check,
        },
        { name: OURS, op: () => bothStage.run(1), check },
      ],
    },
  ];
}

function table(scenario: Scenario, measurement: Measurement, settings: Settings): Table {
  return {
    caption: `${scenario.title} (${String(scenario.attempts)} attempt${scenario.attempts === 1 ? "" : "s"} per call)`,
    headers: [
      "implementation",
      `${clockName(settings)} per attempt (median ±IQR/2)`,
      `${clockName(settings)} per call`,
      "wall time per call",
      "time ÷ floor",
      `${OURS} time ÷ this`,
    ],
    align: ["l", "r", "r", "r", "r", "r"],
    rows: measurement.results.map((result) => [
      result.name === scenario.floorName ? `${result.name} (floor)` : result.name,
      formatSpread(result.ns, formatNs),
      formatNs(result.ns.median * scenario.attempts),
      formatNs(result.wall.median * scenario.attempts),
      formatRatioRange(ratio(measurement, result.name, scenario.floorName)),
      result.name === OURS ? "—" : formatRatioRange(ratio(measurement, OURS, result.name)),
    ]),
  };
}

export default defineCase({
  groups: (settings) =>
    scenarios().map((scenario) => ({
      id: scenario.title,
      options: {
        rounds: settings.quick ? 5 : 25,
        sampleMs: settings.quick ? 5 : 40,
        warmupMs: settings.quick ? 20 : 300,
        unitsPerOp: scenario.attempts,
      },
      contenders: () => scenario.contenders,
    })),
  section: retryTimeout,
});

async function retryTimeout(
  settings: Settings,
  measureGroup: (id: string) => Promise<Measurement>,
): Promise<Section> {
  const tables: Table[] = [];
  const headlines: string[] = [];
  const groups: ChartPanel["groups"][number][] = [];
  for (const scenario of scenarios()) {
    const measurement = await measureGroup(scenario.title);
    tables.push(table(scenario, measurement, settings));
    const ours = measurement.results.find((result) => result.name === OURS);
    const vsAlternative = ratio(measurement, OURS, scenario.alternativeName);
    const vsFloor = ratio(measurement, OURS, scenario.floorName);
    headlines.push(
      `${scenario.title}: ${ours === undefined ? "n/a" : formatNs(ours.ns.median)} per attempt, ` +
        `${formatRatio(vsFloor.median)} the hand-written floor, ${formatRatio(vsAlternative.median)} ${scenario.alternativeName}`,
    );
    groups.push({
      label: scenario.title,
      bars: measurement.results.map((result) => ({
        label: result.name,
        value: result.ns.median / 1e3,
        text: formatNs(result.ns.median),
      })),
    });
  }
  return {
    title: "4. Retry and timeout cost per attempt",
    intro: [
      "One stage run with `stage.run(1)` (handler `async (n) => n + 1`) against p-timeout and",
      "p-retry doing the same job, and a hand-written floor: a `setTimeout` raced against the",
      "attempt and cleared, a try/catch loop. The retry scenarios fail four attempts out of five",
      "(no delay between attempts; p-retry with `minTimeout: 0`, which sets no timer) and report",
      "the time per attempt, i.e. the time per call ÷ 5. The failing handlers throw one",
      "pre-made `Error`, so that capturing a stack trace is not part of anyone's cost.",
    ],
    tables,
    notes: [
      "p-timeout creates its `TimeoutError` (and captures its stack trace) eagerly on every call;",
      `${OURS} creates one only when a timeout fires.`,
    ],
    charts: [
      {
        title: "4. retry and timeout: time per attempt (shorter is faster)",
        unit: "µs per attempt",
        groups,
        scale: "log",
      },
    ],
    headlines,
  };
}
