/**
 * What `adaptiveConcurrency`'s gauge costs per item, before the pool is wired to it (phase B
 * of issue 23, whose goal is ≤ 1.1× a fixed concurrency on trivial items):
 * `npx tsx bench/adaptive-overhead.ts` (`--quick`: a few rounds).
 *
 * Three hand-written pools run the same trivial async items (`async (n) => n + 1`) the way the
 * library's pool starts them (start while there is room, look again when an item finishes):
 * one with a fixed limit of 16, one asking a gauge of `adaptiveConcurrency({ min: 16, max: 16 })`
 * (the gauge's bookkeeping, windows and clock reads at a limit that cannot move), and one
 * asking a gauge of `adaptiveConcurrency()` (the limit it finds for trivial items). Interleaved
 * and paired per round (bench/harness.ts). Reads the sources through tsx: the gauge is not
 * part of the package's API. `--clock=cpu` measures process CPU time instead of wall time.
 */
import { measure, ratio, type Contender } from "./harness.js";
import { adaptiveConcurrency } from "../src/index.js";
import { gaugeOf, type LimitGauge } from "../src/internal/limits.js";

const quick = process.argv.includes("--quick");
const ITEMS = quick ? 2_000 : 20_000;
const FIXED = 16;

const increment = async (value: number): Promise<number> => value + 1;
const items = Array.from({ length: ITEMS }, (_, index) => index);

/** The floor: start while fewer than 16 run, and again as each finishes. */
function fixedPool(): Promise<number[]> {
  const results = new Array<number>(items.length);
  return new Promise((resolve) => {
    let next = 0;
    let running = 0;
    let settled = 0;
    const fill = (): void => {
      while (next < items.length && running < FIXED) {
        const index = next++;
        running++;
        void increment(items[index] as number).then((value) => {
          results[index] = value;
          running--;
          if (++settled === items.length) resolve(results);
          else fill();
        });
      }
    };
    fill();
  });
}

/** The same pool asking `gauge` for room and telling it of each start and finish. */
function gaugedPool(gauge: LimitGauge): Promise<number[]> {
  const results = new Array<number>(items.length);
  return new Promise((resolve) => {
    let next = 0;
    let settled = 0;
    const fill = (): void => {
      while (next < items.length && gauge.inFlight < gauge.limit) {
        const index = next++;
        gauge.started();
        void increment(items[index] as number).then((value) => {
          results[index] = value;
          gauge.finished();
          if (++settled === items.length) {
            gauge.release();
            resolve(results);
          } else fill();
        });
      }
    };
    fill();
  });
}

const pinned = adaptiveConcurrency({ min: FIXED, max: FIXED });
const free = adaptiveConcurrency();
const check = (output: unknown): boolean =>
  Array.isArray(output) && output.length === ITEMS && output[ITEMS - 1] === ITEMS;

const FLOOR = `hand-written pool, fixed ${String(FIXED)}`;
const PINNED = `same pool + adaptiveConcurrency({ min: ${String(FIXED)}, max: ${String(FIXED)} })`;
const FREE = "same pool + adaptiveConcurrency()";
const contenders: Contender[] = [
  { name: FLOOR, op: fixedPool, check },
  { name: PINNED, op: () => gaugedPool(pinned[gaugeOf](false, undefined)), check },
  { name: FREE, op: () => gaugedPool(free[gaugeOf](false, undefined)), check },
];

const measurement = await measure(contenders, {
  rounds: quick ? 5 : 30,
  sampleMs: quick ? 20 : 100,
  warmupMs: quick ? 50 : 500,
  unitsPerOp: ITEMS,
  seed: 23,
  clock: process.argv.includes("--clock=cpu") ? "cpu" : "wall",
});

for (const result of measurement.results) {
  console.log(`${result.name}: ${result.ns.median.toFixed(0)} ns per item (median)`);
}
for (const name of [PINNED, FREE]) {
  const { median, min, max } = ratio(measurement, name, FLOOR);
  console.log(
    `${name} ÷ floor: ${median.toFixed(3)}× (min ${min.toFixed(3)}, max ${max.toFixed(3)})`,
  );
}
console.log(`adaptiveConcurrency() settled at a limit of ${String(free.limit)} for trivial items`);
