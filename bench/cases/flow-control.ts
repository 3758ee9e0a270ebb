/**
 * Case 6: what flow control costs. A rate-limited `map` (the limit never binds, so that the
 * figure is the limiter's own cost per attempt, not waiting) against a hand-written pool that
 * checks a sliding window of its own before each start, and against the same `map` without a
 * limit; a limiter and a breaker with a `key` (64 keys, never binding) against the same without
 * one (goal ≤ 1.1×); a breaker with `whenOpen: "wait"` that stays closed against one with
 * `"fail"` (goal: no cost measurable); and `map` with `perKey` against plain `map`, with keys
 * that rarely wait and with keys that make half of the items wait. The keyed variants spread the
 * items over 64 keys (`n % 64`): the stage hands its input to `key`, so each key has its own
 * window or circuit.
 */
import { library, Pipeline, Stage } from "../lib.js";
import { OURS } from "../report.js";
import type { ChildSettings } from "../suite.js";
import { mapped, referenceCase, type Variant } from "../variants.js";

const CONCURRENCY = 16;
/** A limit that never binds at any speed this machine reaches: 100,000 starts per ms. */
const LIMIT = 100_000;
const INTERVAL_MS = 1;

const increment = async (value: number): Promise<number> => value + 1;

function itemCount(settings: ChildSettings): number {
  return settings.quick ? 10_000 : 200_000;
}

function array(count: number): number[] {
  return Array.from({ length: count }, (_, index) => index);
}

/**
 * The floor: `concurrency` workers pulling the next index, each start first checked against a
 * sliding window (a ring of the last `limit` start times, as the library keeps). It never has
 * to wait here, so it has no queue; what it measures is the check itself.
 */
function slidingWindowPool(items: readonly number[]): Promise<number[]> {
  const starts = new Float64Array(LIMIT).fill(-Infinity);
  let oldest = 0;
  const results = new Array<number>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const now = Date.now();
      if ((starts[oldest] as number) + INTERVAL_MS > now) throw new Error("the limit bound");
      starts[oldest] = now;
      oldest = (oldest + 1) % LIMIT;
      const index = next++;
      results[index] = await increment(items[index] as number);
    }
  };
  return Promise.all(Array.from({ length: CONCURRENCY }, worker)).then(() => results);
}

/** Keys of the keyed variants: `n % KEYS`. */
const KEYS = 64;
const byKey = (item: number): number => item % KEYS;

const WINDOW_POOL = "hand-written pool + sliding window";
const PLAIN_MAP = "`map`, no limit";
const PLAIN_PER_KEY = "`map`, no perKey";
const UNKEYED_LIMIT = "`map` + an un-keyed limiter";
const UNKEYED_BREAKER = "`map` + an un-keyed breaker";
const FAILING_BREAKER = '`map` + a breaker, `whenOpen: "fail"`';
const UNKEYED_BOTH = "`map` + an un-keyed limiter and breaker";

function perKeyVariant(id: string, title: string, keys: number, perKey: number): Variant {
  return {
    id,
    title,
    floor: PLAIN_PER_KEY,
    rows: [
      {
        id: `map-${id}-vs-map`,
        label: `\`map\` with \`perKey\` (${title}) ÷ plain \`map\``,
        reference: PLAIN_PER_KEY,
      },
    ],
    contenders: (count) => {
      const items = array(count);
      const check = mapped(count);
      const pipeline = new Pipeline([new Stage("increment", increment)]);
      const options = {
        concurrency: CONCURRENCY,
        perKey: { key: (item: number) => item % keys, concurrency: perKey },
      };
      return [
        { name: PLAIN_PER_KEY, op: () => pipeline.map(items, CONCURRENCY), check },
        { name: OURS, op: () => pipeline.map(items, options), check },
      ];
    },
  };
}

const VARIANTS: readonly Variant[] = [
  {
    id: "rate-limit-16",
    title: `\`map\` with a \`RateLimiter\` that never binds, concurrency ${String(CONCURRENCY)}`,
    floor: WINDOW_POOL,
    rows: [
      {
        id: "map-rate-limit-16-vs-window-pool",
        label: "`map` + `rateLimit` (never binds) ÷ hand pool + sliding window",
        reference: WINDOW_POOL,
      },
      {
        id: "map-rate-limit-16-vs-map",
        label: "`map` + `rateLimit` (never binds) ÷ the same `map` without it",
        reference: PLAIN_MAP,
      },
    ],
    contenders: (count) => {
      const items = array(count);
      const check = mapped(count);
      const plain = new Pipeline([new Stage("increment", increment)]);
      const limiter = new library.RateLimiter({ limit: LIMIT, interval: INTERVAL_MS });
      const limited = new Pipeline([new Stage("increment", increment, { rateLimit: limiter })]);
      return [
        { name: WINDOW_POOL, op: () => slidingWindowPool(items), check },
        { name: PLAIN_MAP, op: () => plain.map(items, CONCURRENCY), check },
        { name: OURS, op: () => limited.map(items, CONCURRENCY), check },
      ];
    },
  },
  {
    id: "keyed-rate-limit-16",
    title: `\`map\` with a \`RateLimiter\` with a \`key\` (${String(KEYS)} keys) that never binds, concurrency ${String(CONCURRENCY)}`,
    floor: UNKEYED_LIMIT,
    rows: [
      {
        id: "map-keyed-rate-limit-16-vs-unkeyed",
        label: "`map` + keyed `rateLimit` (never binds) ÷ the same with an un-keyed limiter",
        reference: UNKEYED_LIMIT,
        goal: 1.1,
      },
    ],
    contenders: (count) => {
      const items = array(count);
      const check = mapped(count);
      const stage = (limiter: InstanceType<typeof library.RateLimiter>) =>
        new Pipeline([new Stage("increment", increment, { rateLimit: limiter })]);
      const unkeyed = stage(new library.RateLimiter({ limit: LIMIT, interval: INTERVAL_MS }));
      const keyed = stage(
        new library.RateLimiter({ limit: LIMIT, interval: INTERVAL_MS, key: byKey }),
      );
      return [
        { name: UNKEYED_LIMIT, op: () => unkeyed.map(items, CONCURRENCY), check },
        { name: OURS, op: () => keyed.map(items, CONCURRENCY), check },
      ];
    },
  },
  {
    id: "keyed-breaker-16",
    title: `\`map\` with a \`CircuitBreaker\` with a \`key\` (${String(KEYS)} keys) that stays closed, concurrency ${String(CONCURRENCY)}`,
    floor: UNKEYED_BREAKER,
    rows: [
      {
        id: "map-keyed-breaker-16-vs-unkeyed",
        label: "`map` + keyed `circuitBreaker` (closed) ÷ the same with an un-keyed breaker",
        reference: UNKEYED_BREAKER,
        goal: 1.1,
      },
    ],
    contenders: (count) => {
      const items = array(count);
      const check = mapped(count);
      const stage = (breaker: InstanceType<typeof library.CircuitBreaker>) =>
        new Pipeline([new Stage("increment", increment, { circuitBreaker: breaker })]);
      const unkeyed = stage(new library.CircuitBreaker({ threshold: 5, cooldown: 1_000 }));
      const keyed = stage(
        new library.CircuitBreaker({ threshold: 5, cooldown: 1_000, key: byKey }),
      );
      return [
        { name: UNKEYED_BREAKER, op: () => unkeyed.map(items, CONCURRENCY), check },
        { name: OURS, op: () => keyed.map(items, CONCURRENCY), check },
      ];
    },
  },
  {
    id: "keyed-limit-and-breaker-16",
    title: `\`map\` with a keyed \`RateLimiter\` and a keyed \`CircuitBreaker\` (${String(KEYS)} keys, \`whenOpen: "wait"\`) that never bind, concurrency ${String(CONCURRENCY)}`,
    floor: UNKEYED_BOTH,
    rows: [
      {
        id: "map-keyed-limit-and-breaker-16-vs-unkeyed",
        label: "`map` + keyed `rateLimit` and `circuitBreaker` (never bind) ÷ the same un-keyed",
        reference: UNKEYED_BOTH,
        goal: 1.1,
      },
    ],
    contenders: (count) => {
      const items = array(count);
      const check = mapped(count);
      const stage = (key: ((item: number) => number) | undefined) => {
        const keyed = key === undefined ? {} : { key };
        return new Pipeline([
          new Stage("increment", increment, {
            rateLimit: new library.RateLimiter({ limit: LIMIT, interval: INTERVAL_MS, ...keyed }),
            circuitBreaker: new library.CircuitBreaker({
              threshold: 5,
              cooldown: 1_000,
              whenOpen: "wait",
              ...keyed,
            }),
          }),
        ]);
      };
      const unkeyed = stage(undefined);
      const keyed = stage(byKey);
      return [
        { name: UNKEYED_BOTH, op: () => unkeyed.map(items, CONCURRENCY), check },
        { name: OURS, op: () => keyed.map(items, CONCURRENCY), check },
      ];
    },
  },
  {
    id: "waiting-breaker-16",
    title: `\`map\` with a \`CircuitBreaker\` with \`whenOpen: "wait"\` that stays closed, concurrency ${String(CONCURRENCY)}`,
    floor: FAILING_BREAKER,
    rows: [
      {
        id: "map-waiting-breaker-16-vs-failing",
        label: '`map` + `circuitBreaker` `whenOpen: "wait"` (closed) ÷ the same with `"fail"`',
        reference: FAILING_BREAKER,
        goal: 1.05,
      },
    ],
    contenders: (count) => {
      const items = array(count);
      const check = mapped(count);
      const stage = (whenOpen: "fail" | "wait") =>
        new Pipeline([
          new Stage("increment", increment, {
            circuitBreaker: new library.CircuitBreaker({ threshold: 5, cooldown: 1_000, whenOpen }),
          }),
        ]);
      const failing = stage("fail");
      const waiting = stage("wait");
      return [
        { name: FAILING_BREAKER, op: () => failing.map(items, CONCURRENCY), check },
        { name: OURS, op: () => waiting.map(items, CONCURRENCY), check },
      ];
    },
  },
  perKeyVariant("per-key-64x4", "64 keys, 4 per key: items rarely wait", 64, 4),
  perKeyVariant("per-key-4x2", "4 keys, 2 per key: half the items wait", 4, 2),
];

export default referenceCase({
  variants: VARIANTS,
  items: itemCount,
  title: "6. Flow control: a rate-limited batch, keyed limits and circuits, `perKey`",
  intro: (count) => [
    `${count.toLocaleString("en-US")} items, a one-stage pipeline whose handler is`,
    `\`async (n) => n + 1\`, concurrency ${String(CONCURRENCY)}; one operation is one whole batch.`,
    `The limiter allows ${LIMIT.toLocaleString("en-US")} starts per ${String(INTERVAL_MS)} ms, so it never`,
    "makes an attempt wait: the figure is what taking a slot costs per attempt. Its floor is a",
    "hand-written pool that checks and records each start in a ring of the last `limit` start",
    "times before it starts the item. A limiter and a breaker with a `key` (64 keys, `n % 64`),",
    "each alone and the two together, are measured against the same without one, a breaker",
    'with `whenOpen: "wait"` against one with `"fail"` (neither',
    "binds nor opens). `perKey` is measured against the same `map` without it,",
    "with keys `n % 64` (4 per key: an item almost never waits) and `n % 4` (2 per key: 8 of",
    `the ${String(CONCURRENCY)} places can be used, and half of the items taken wait for their key).`,
  ],
  chart: (count) =>
    `6. flow control, ${count.toLocaleString("en-US")} items: wall time per item (shorter is faster)`,
});
