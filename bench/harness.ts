/**
 * An interleaved timing loop. tinybench (like most harnesses) runs each task to completion
 * before the next one, so a change in machine state (CPU frequency, a noisy neighbour, heap
 * growth, JIT tier-up) lands on whichever task happens to be running. Here every contender
 * runs once per round, in a shuffled order, for `rounds` rounds, in the same process: each
 * round yields one sample per contender, and ratios are computed per round (paired), then
 * summarised by their minimum, quartiles, median and maximum. `npm run bench` runs each group of
 * contenders in a fresh child process (see suite.ts), so that one group's JIT and heap state does
 * not bias another's.
 */

/** One thing being measured. */
export interface Contender {
  /** Shown in tables and charts. */
  readonly name: string;
  /** One operation. Awaited when it returns a promise. */
  readonly op: () => unknown;
  /** Checks one operation's output, once, before timing (a wrong result fails the bench). */
  readonly check?: ((output: unknown) => boolean) | undefined;
}

export interface MeasureOptions {
  /** Samples per contender (one per round). */
  readonly rounds: number;
  /** Target duration of one sample; the batch size (ops per sample) is calibrated to it. */
  readonly sampleMs: number;
  /** Round-robin warm-up time per contender before calibration. */
  readonly warmupMs: number;
  /** Work units per op (items per `map` call, attempts per retried call) for per-unit figures. */
  readonly unitsPerOp?: number | undefined;
  /** Seed of the shuffle, so that a run can be repeated exactly. */
  readonly seed?: number | undefined;
  /**
   * Force a full GC before each sample (needs `--expose-gc`). Off by default, and no case uses
   * it: after a forced full GC, the next sample of a library with deep call chains measured
   * 1.5 to 2 times slower than in a steady state (the hand-written floors hardly moved), which
   * measures V8's recovery from the GC rather than the code. Interleaving spreads the cost of
   * garbage collection over the contenders instead.
   */
  readonly collectBetweenSamples?: boolean | undefined;
  /**
   * What `samples` and `ns` are computed from: `wall` (the default), `process.hrtime`; or
   * `cpu`, `process.cpuUsage()` (user + system time of the whole process, GC threads included,
   * so it bills a contender for the collector's parallel threads too). Microsecond resolution:
   * for samples of milliseconds or more. Both clocks are recorded either way.
   */
  readonly clock?: "wall" | "cpu" | undefined;
  /** Called after each round (progress output). */
  readonly onRound?: ((round: number) => void) | undefined;
}

/** Order statistics of a set of samples. */
export interface Summary {
  readonly median: number;
  readonly p25: number;
  readonly p75: number;
  readonly min: number;
  readonly max: number;
}

export interface ContenderResult {
  readonly name: string;
  /** Ops per sample, as calibrated. */
  readonly batch: number;
  /** Nanoseconds per work unit, one per round, on the measurement's clock. */
  readonly samples: readonly number[];
  /** Of `samples` (ns per unit). */
  readonly ns: Summary;
  /** Wall-clock nanoseconds per work unit, one per round, whatever the clock. */
  readonly wallSamples: readonly number[];
  /** Process CPU nanoseconds per work unit, one per round, whatever the clock. */
  readonly cpuSamples: readonly number[];
  /** Of `wallSamples`. */
  readonly wall: Summary;
  /** Of `cpuSamples`. */
  readonly cpu: Summary;
}

export interface Measurement {
  readonly results: readonly ContenderResult[];
  readonly rounds: number;
  readonly unitsPerOp: number;
  readonly clock: "wall" | "cpu";
  /** Total wall time of the measurement, ms. */
  readonly elapsedMs: number;
}

export function summarize(values: readonly number[]): Summary {
  const sorted = [...values].sort((a, b) => a - b);
  return {
    median: quantile(sorted, 0.5),
    p25: quantile(sorted, 0.25),
    p75: quantile(sorted, 0.75),
    min: sorted[0] ?? NaN,
    max: sorted[sorted.length - 1] ?? NaN,
  };
}

function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return NaN;
  const position = (sorted.length - 1) * q;
  const low = Math.floor(position);
  const high = Math.ceil(position);
  const a = sorted[low] as number;
  const b = sorted[high] as number;
  return a + (b - a) * (position - low);
}

/**
 * The per-round ratio `a / b` of two contenders' times (so > 1 means `a` is slower),
 * summarised. Paired by round, which cancels drift that affects both within a round.
 */
export function ratio(
  measurement: Measurement,
  a: string,
  b: string,
  clock?: "wall" | "cpu",
): Summary {
  const pick = (result: ContenderResult): readonly number[] =>
    clock === undefined ? result.samples : clock === "cpu" ? result.cpuSamples : result.wallSamples;
  const first = pick(find(measurement, a));
  const second = pick(find(measurement, b));
  return summarize(first.map((value, index) => value / (second[index] as number)));
}

export function find(measurement: Measurement, name: string): ContenderResult {
  const result = measurement.results.find((entry) => entry.name === name);
  if (result === undefined) throw new Error(`no contender named ${name}`);
  return result;
}

/** A small deterministic PRNG (mulberry32), for reproducible shuffles. */
export function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function shuffle<T>(items: T[], next: () => number): T[] {
  for (let index = items.length - 1; index > 0; index--) {
    const other = Math.floor(next() * (index + 1));
    [items[index], items[other]] = [items[other] as T, items[index] as T];
  }
  return items;
}

const gc = (globalThis as { gc?: () => void }).gc;

/** Collects garbage when `--expose-gc` is on, so that one contender's garbage is not billed to the next. */
export function collect(): void {
  gc?.();
}

function isPromiseLike(value: unknown): value is PromiseLike<unknown> {
  return (
    value !== null &&
    (typeof value === "object" || typeof value === "function") &&
    typeof (value as { then?: unknown }).then === "function"
  );
}

/** Runs `op` `count` times in sequence; returns the elapsed wall and CPU nanoseconds. */
async function timeBatch(op: () => unknown, count: number): Promise<{ wall: number; cpu: number }> {
  const cpuStart = process.cpuUsage();
  const start = process.hrtime.bigint();
  for (let index = 0; index < count; index++) {
    const output = op();
    if (isPromiseLike(output)) await output;
  }
  const wall = Number(process.hrtime.bigint() - start);
  const cpu = process.cpuUsage(cpuStart);
  return { wall, cpu: (cpu.user + cpu.system) * 1000 };
}

/** Measures the contenders interleaved; see the module comment. */
export async function measure(
  contenders: readonly Contender[],
  options: MeasureOptions,
): Promise<Measurement> {
  const started = performance.now();
  const unitsPerOp = options.unitsPerOp ?? 1;
  // One checked call each: a wrong output fails the bench, and its time is a first estimate.
  const estimate = new Map<string, { ns: number; ops: number }>();
  for (const contender of contenders) {
    const start = process.hrtime.bigint();
    const output = await contender.op();
    estimate.set(contender.name, { ns: Number(process.hrtime.bigint() - start), ops: 1 });
    if (contender.check !== undefined && !contender.check(output)) {
      throw new Error(`${contender.name}: wrong output ${String(output)}`);
    }
  }

  // Warm-up, round-robin, with growing batches; refines the estimate of each op's cost.
  const warmupEnd = performance.now() + options.warmupMs * contenders.length;
  while (performance.now() < warmupEnd) {
    for (const contender of contenders) {
      const entry = estimate.get(contender.name) as { ns: number; ops: number };
      const count = Math.ceil(entry.ops / 2);
      entry.ns += (await timeBatch(contender.op, count)).wall;
      entry.ops += count;
    }
  }

  const batches = contenders.map((contender) => {
    const entry = estimate.get(contender.name) as { ns: number; ops: number };
    const perOp = entry.ns / entry.ops;
    return Math.max(1, Math.round((options.sampleMs * 1e6) / perOp));
  });

  const wallSamples = contenders.map((): number[] => []);
  const cpuSamples = contenders.map((): number[] => []);
  const next = random(options.seed ?? 1);
  const order = contenders.map((_, index) => index);
  for (let round = 0; round < options.rounds; round++) {
    for (const index of shuffle(order, next)) {
      const contender = contenders[index] as Contender;
      const batch = batches[index] as number;
      if (options.collectBetweenSamples === true) collect();
      const { wall, cpu } = await timeBatch(contender.op, batch);
      (wallSamples[index] as number[]).push(wall / batch / unitsPerOp);
      (cpuSamples[index] as number[]).push(cpu / batch / unitsPerOp);
    }
    options.onRound?.(round);
  }
  return {
    results: contenders.map((contender, index) => {
      const wall = wallSamples[index] as number[];
      const cpu = cpuSamples[index] as number[];
      const samples = options.clock === "cpu" ? cpu : wall;
      return {
        name: contender.name,
        batch: batches[index] as number,
        samples,
        ns: summarize(samples),
        wallSamples: wall,
        cpuSamples: cpu,
        wall: summarize(wall),
        cpu: summarize(cpu),
      };
    }),
    rounds: options.rounds,
    unitsPerOp,
    clock: options.clock ?? "wall",
    elapsedMs: performance.now() - started,
  };
}
