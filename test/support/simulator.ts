/**
 * A simulated service for the adaptive-concurrency tests and the bench: it has a capacity C
 * that the batch is not told, answers 429 past C requests in flight, slows down as it nears
 * C, and jitters every latency from a seeded PRNG. It runs on the global timers and clock
 * (`setTimeout`, `performance.now()`), looked up when used, so that vitest's fake timers (or
 * the bench's virtual clock, simulator-clock.ts) run it in virtual time: deterministic, and
 * as fast as the CPU allows. No vitest import here.
 *
 * Every pending completion waits in one binary heap behind one global timer: fake timers
 * scan every pending timer on each tick, so a timer per request would make a simulation of
 * 400 requests in flight 30 times slower.
 */
// The bench's PRNG (mulberry32, for its shuffles): a 32-bit seed, the same sequence.
import { random as seededRandom } from "../../bench/harness.js";

/** A standard normal draw from two uniform ones (Box–Muller). */
function normal(random: () => number): number {
  const u = 1 - random();
  const v = random();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}

interface Event {
  readonly at: number;
  readonly order: number;
  readonly run: () => void;
}

/**
 * Callbacks at given times in virtual time, behind a single global timer: the earliest
 * event's. Events due at the same time run in the order they were scheduled.
 */
export class EventQueue {
  readonly #heap: Event[] = [];
  #order = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #armedAt = Infinity;

  /** Runs `run` `delay` ms from now (a whole number ≥ 1: fake timers count whole ms). */
  after(delay: number, run: () => void): void {
    const at = performance.now() + Math.max(1, Math.round(delay));
    this.#push({ at, order: this.#order++, run });
    if (at < this.#armedAt) this.#arm(at);
  }

  /** Events waiting. */
  get size(): number {
    return this.#heap.length;
  }

  #arm(at: number): void {
    if (this.#timer !== undefined) globalThis.clearTimeout(this.#timer);
    this.#armedAt = at;
    this.#timer = globalThis.setTimeout(this.#fire, at - performance.now());
  }

  readonly #fire = (): void => {
    this.#timer = undefined;
    this.#armedAt = Infinity;
    const time = performance.now();
    while (this.#heap.length > 0 && (this.#heap[0] as Event).at <= time) {
      (this.#pop() as Event).run();
    }
    if (this.#heap.length > 0) this.#arm((this.#heap[0] as Event).at);
  };

  #push(event: Event): void {
    const heap = this.#heap;
    heap.push(event);
    let index = heap.length - 1;
    while (index > 0) {
      const parent = (index - 1) >> 1;
      if (!before(event, heap[parent] as Event)) break;
      heap[index] = heap[parent] as Event;
      index = parent;
    }
    heap[index] = event;
  }

  #pop(): Event | undefined {
    const heap = this.#heap;
    const top = heap[0];
    const last = heap.pop() as Event;
    if (heap.length === 0) return top;
    let index = 0;
    for (;;) {
      const left = index * 2 + 1;
      if (left >= heap.length) break;
      const right = left + 1;
      const child =
        right < heap.length && before(heap[right] as Event, heap[left] as Event) ? right : left;
      if (!before(heap[child] as Event, last)) break;
      heap[index] = heap[child] as Event;
      index = child;
    }
    heap[index] = last;
    return top;
  }
}

function before(a: Event, b: Event): boolean {
  return a.at < b.at || (a.at === b.at && a.order < b.order);
}

/**
 * How much slower than its base latency the service answers at a load (requests in flight
 * over capacity, in (0, 1]).
 */
export type LatencyCurve = (load: number) => number;

/** The latency curves the figures are given for. */
export const curves = {
  /** Twice as slow at capacity, smoothly: `1 + load²` (the default). */
  quadratic: (load) => 1 + load * load,
  /**
   * Flat until 70% of capacity, then in proportion to the load (1.43× at capacity): requests
   * past 70% queue for the service's workers, so throughput stops growing there.
   */
  queue: (load) => Math.max(1, load / 0.7),
  /** No slowdown at all: the only sign of the capacity is the 429. */
  flat: () => 1,
} as const satisfies Record<string, LatencyCurve>;

/** The error a request past capacity fails with. */
export class TooManyRequests extends Error {
  override name = "TooManyRequests";
  readonly status = 429;
  constructor() {
    super("429 Too Many Requests");
  }
}

/** A simulated service; see the module comment. */
export interface ServiceOptions {
  /** Requests in flight it serves; the next one is answered 429. */
  capacity: number;
  /** Latency at no load, ms. @default 100 */
  baseLatency?: number;
  /** How latency grows with load. @default curves.quadratic */
  curve?: LatencyCurve;
  /** σ of the log-normal factor on every latency (mean 1). @default 0.25 */
  jitter?: number;
  /** How long a 429 takes, as a fraction of the base latency (jittered too). @default 0.2 */
  rejectLatency?: number;
  /** The PRNG's seed. @default 1 */
  seed?: number;
  /** Change the capacity to `capacity` when `after` requests have succeeded. */
  shift?: { readonly after: number; readonly capacity: number } | undefined;
}

/** What a service saw. */
export interface ServiceStats {
  readonly attempts: number;
  readonly rejected: number;
  /** The virtual time each request was made at, in order. */
  readonly attemptTimes: readonly number[];
  /** The virtual time each 429 was decided at (when its request was made), in order. */
  readonly rejectionTimes: readonly number[];
  /** The virtual time each successful request ended at, in order. */
  readonly completions: readonly number[];
  /** Requests in flight at most, at any time. */
  readonly peak: number;
}

export class SimulatedService {
  readonly #queue = new EventQueue();
  readonly #random: () => number;
  readonly #base: number;
  readonly #curve: LatencyCurve;
  readonly #jitter: number;
  readonly #reject: number;
  readonly #shift: ServiceOptions["shift"];
  #capacity: number;
  #inFlight = 0;
  #attempts = 0;
  #rejected = 0;
  #peak = 0;
  readonly #completions: number[] = [];
  readonly #attemptTimes: number[] = [];
  readonly #rejectionTimes: number[] = [];

  constructor(options: ServiceOptions) {
    this.#capacity = options.capacity;
    this.#base = options.baseLatency ?? 100;
    this.#curve = options.curve ?? curves.quadratic;
    this.#jitter = options.jitter ?? 0.25;
    this.#reject = options.rejectLatency ?? 0.2;
    this.#random = seededRandom(options.seed ?? 1);
    this.#shift = options.shift;
  }

  /** The capacity now. */
  get capacity(): number {
    return this.#capacity;
  }

  get stats(): ServiceStats {
    return {
      attempts: this.#attempts,
      rejected: this.#rejected,
      attemptTimes: this.#attemptTimes,
      rejectionTimes: this.#rejectionTimes,
      completions: this.#completions,
      peak: this.#peak,
    };
  }

  /** The event queue, for a driver's own waits (one timer for everything). */
  get queue(): EventQueue {
    return this.#queue;
  }

  /** One request: resolves after its latency, or rejects with a {@link TooManyRequests}. */
  call(): Promise<void> {
    this.#attempts++;
    const time = performance.now();
    this.#attemptTimes.push(time);
    return new Promise<void>((resolve, reject) => {
      if (this.#inFlight >= this.#capacity) {
        this.#rejected++;
        this.#rejectionTimes.push(time);
        this.#queue.after(this.#base * this.#reject * this.#factor(), () => {
          reject(new TooManyRequests());
        });
        return;
      }
      const inFlight = ++this.#inFlight;
      if (inFlight > this.#peak) this.#peak = inFlight;
      const latency = this.#base * this.#curve(inFlight / this.#capacity) * this.#factor();
      this.#queue.after(latency, () => {
        this.#inFlight--;
        this.#completions.push(performance.now());
        if (this.#completions.length === this.#shift?.after) this.#capacity = this.#shift.capacity;
        resolve();
      });
    });
  }

  #factor(): number {
    const sigma = this.#jitter;
    return sigma === 0 ? 1 : Math.exp(sigma * normal(this.#random) - (sigma * sigma) / 2);
  }
}

/** How many of the sorted `times` fall within [from, to). */
export function countWithin(times: readonly number[], from: number, to: number): number {
  return lowerBound(times, to) - lowerBound(times, from);
}

function lowerBound(times: readonly number[], value: number): number {
  let low = 0;
  let high = times.length;
  while (low < high) {
    const middle = (low + high) >> 1;
    if ((times[middle] as number) < value) low = middle + 1;
    else high = middle;
  }
  return low;
}

/**
 * Successful requests per ms between the `from`-th and the `to`-th completion (counted from
 * 1): the throughput of that stretch of a batch.
 */
export function throughput(completions: readonly number[], from: number, to: number): number {
  const start = completions[from - 1] as number;
  const end = completions[to - 1] as number;
  return (to - from) / (end - start);
}
