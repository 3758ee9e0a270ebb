/**
 * Settings and the runner shared by the property-based suites (test/property*.test.ts).
 *
 * A property that fails prints its seed, the path of the shrunk counterexample, the
 * counterexample itself and the command that replays exactly that case:
 *
 * ```sh
 * PROPERTY_SEED=1663301666 PROPERTY_PATH="1189:1:0" npx vitest run test/property-stream.test.ts -t "…"
 * ```
 *
 * Environment: `PROPERTY_RUNS` (runs per property, default 150), `PROPERTY_SEED` and
 * `PROPERTY_PATH` (replay one case), `PROPERTY_VERBOSE` (1: also list every failing value met
 * while shrinking; 2: every value run).
 */
import { randomInt } from "node:crypto";
import fc from "fast-check";
import { expect, onTestFailed } from "vitest";

/** Runs per property; `PROPERTY_RUNS` overrides the default. */
export const NUM_RUNS = Number(process.env.PROPERTY_RUNS ?? 150);

/**
 * Real time one run of a property may take before it counts as hung (and fails with its
 * counterexample). A run takes about 3 ms on an idle machine and under 40 ms on a 2-core
 * machine with both cores busy and coverage on; a hung one never ends.
 */
export const RUN_TIMEOUT = 10_000;

/**
 * The vitest timeout of a property test of `runs` runs: 20 s, plus 100 ms a run. On a 2-core
 * machine with both cores busy, coverage on and the whole suite running beside it, 150 runs of
 * the heaviest property take under 10 s of the 35 s this gives.
 */
export function propertyTimeout(runs: number = NUM_RUNS): number {
  return 20_000 + runs * 100;
}

/** The vitest timeout of a property test of {@link NUM_RUNS} runs. */
export const TIMEOUT = propertyTimeout();

/** Settings of {@link assertProperty}. */
export interface PropertyRunOptions {
  /** @default NUM_RUNS */
  readonly numRuns?: number;
}

const seedFromEnvironment = optionalNumber("PROPERTY_SEED");
const pathFromEnvironment = process.env.PROPERTY_PATH;
const verbosity =
  [fc.VerbosityLevel.None, fc.VerbosityLevel.Verbose][optionalNumber("PROPERTY_VERBOSE") ?? 0] ??
  fc.VerbosityLevel.VeryVerbose;

/**
 * Checks `property` with fast-check, and when it fails, throws an error that holds fast-check's
 * report (seed, path, counterexample, the property's own error as `cause`) and the command that
 * replays that very case. Each call draws its seed up front, so that a failure fast-check does
 * not see (the test's own timeout, an unhandled rejection during the test) prints the seed too.
 *
 * The whole check is interrupted, as a failure with the seed, a few seconds before the test's
 * vitest timeout (`propertyTimeout(numRuns)`, which the test must be given); a single run that
 * takes longer than {@link RUN_TIMEOUT} fails with its counterexample.
 */
export async function assertProperty<Ts extends [unknown, ...unknown[]]>(
  property: fc.IAsyncPropertyWithHooks<Ts> | fc.IPropertyWithHooks<Ts>,
  options: PropertyRunOptions = {},
): Promise<void> {
  const numRuns = options.numRuns ?? NUM_RUNS;
  const seed = seedFromEnvironment ?? randomInt(-(2 ** 31), 2 ** 31);
  const path = pathFromEnvironment;
  let reported = false;
  onTestFailed(() => {
    if (reported) return;
    console.error(
      `property failed outside fast-check's report (a timeout or an unhandled error); its seed: ${String(seed)}\n` +
        `replay: ${replayCommand(seed, undefined)}`,
    );
  });
  const plugins: fc.UniversalPlugin[] = [
    fc.interruptAfterTimeLimit(propertyTimeout(numRuns) - 5_000, { failOnInterrupt: true }),
  ];
  if (property.isAsync()) plugins.push(fc.timeout(RUN_TIMEOUT));
  const details = await fc.check(property, {
    numRuns,
    seed,
    ...(path === undefined ? {} : { path, endOnFailure: true }),
    verbose: verbosity,
    plugins,
  });
  if (!details.failed) return;
  reported = true;
  const report = await fc.asyncDefaultReportMessage(details);
  const replayPath = details.counterexamplePath ?? undefined;
  throw new Error(`${report ?? "property failed"}\n\nreplay: ${replayCommand(seed, replayPath)}`, {
    cause: details.errorInstance,
  });
}

/** The shell command that runs the current test again with `seed` (and `path`). */
function replayCommand(seed: number, path: string | undefined): string {
  const { testPath, currentTestName } = expect.getState();
  const file = testPath === undefined ? "<test file>" : testPath.replace(`${process.cwd()}/`, "");
  const name = (currentTestName ?? "").split(" > ").pop() ?? "";
  const variables = [
    `PROPERTY_SEED=${String(seed)}`,
    ...(path === undefined ? [] : [`PROPERTY_PATH="${path}"`]),
  ];
  return `${variables.join(" ")} npx vitest run ${file} -t ${JSON.stringify(name)}`;
}

function optionalNumber(name: string): number | undefined {
  const value = process.env[name];
  if (value === undefined || value === "") return undefined;
  const number = Number(value);
  if (!Number.isFinite(number)) throw new TypeError(`${name} must be a number, got ${value}`);
  return number;
}
