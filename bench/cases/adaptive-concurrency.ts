/**
 * Case 10: what `adaptiveConcurrency` costs a batch (issue 23's goal: at most 1.1× the time of a
 * fixed concurrency on trivial items). `map` with `adaptiveConcurrency({ min: 16, max: 16 })`,
 * a limit that cannot move, against `map` at a fixed 16: the same places, so the figure is the
 * controller's own cost per item (its gauge's bookkeeping, a window and a clock read about once
 * per 16 items, the pool's places under it). And `map` with `adaptiveConcurrency()` as it
 * comes, which starts at 1 and finds its own limit for trivial items, against the same fixed 16.
 * The goals against a service whose capacity is unknown are the simulator's
 * (docs/adaptive-concurrency.md), not this case's.
 */
import { library, Pipeline, Stage } from "../lib.js";
import { OURS } from "../report.js";
import type { ChildSettings } from "../suite.js";
import { mapped, referenceCase, type Variant } from "../variants.js";

const CONCURRENCY = 16;

const increment = async (value: number): Promise<number> => value + 1;

function itemCount(settings: ChildSettings): number {
  return settings.quick ? 10_000 : 200_000;
}

const FIXED = `\`map\`, concurrency ${String(CONCURRENCY)}`;

function adaptiveVariant(
  id: string,
  title: string,
  make: () => InstanceType<typeof library.AdaptiveConcurrency>,
  goal: number | undefined,
): Variant {
  return {
    id,
    title,
    floor: FIXED,
    rows: [
      {
        id: `map-${id}-vs-fixed`,
        label: `\`map\` + ${title} ÷ \`map\` at a fixed ${String(CONCURRENCY)}`,
        reference: FIXED,
        ...(goal === undefined ? {} : { goal }),
      },
    ],
    contenders: (count) => {
      const items = Array.from({ length: count }, (_, index) => index);
      const check = mapped(count);
      const pipeline = new Pipeline([new Stage("increment", increment)]);
      // One controller for every batch of the group, as a user keeps one: it keeps its limit.
      const controller = make();
      return [
        { name: FIXED, op: () => pipeline.map(items, CONCURRENCY), check },
        { name: OURS, op: () => pipeline.map(items, { concurrency: controller }), check },
      ];
    },
  };
}

const VARIANTS: readonly Variant[] = [
  adaptiveVariant(
    "adaptive-pinned-16",
    `\`adaptiveConcurrency({ min: ${String(CONCURRENCY)}, max: ${String(CONCURRENCY)} })\``,
    () => library.adaptiveConcurrency({ min: CONCURRENCY, max: CONCURRENCY }),
    1.1,
  ),
  adaptiveVariant(
    "adaptive-free",
    "`adaptiveConcurrency()`",
    () => library.adaptiveConcurrency(),
    undefined,
  ),
];

export default referenceCase({
  variants: VARIANTS,
  items: itemCount,
  title: "10. Adaptive concurrency: what the controller costs",
  intro: (count) => [
    `${count.toLocaleString("en-US")} items, a one-stage pipeline whose handler is`,
    "`async (n) => n + 1`; one operation is one whole batch. `adaptiveConcurrency` pinned at",
    `${String(CONCURRENCY)} (\`min\` = \`max\`) against a fixed concurrency of ${String(CONCURRENCY)}: the same`,
    "places, so the ratio is the controller's own cost per item (goal: at most 1.1×). Then",
    "`adaptiveConcurrency()` as it comes (from 1, finding its own limit for trivial items; one",
    "controller for the whole group, so it keeps what it learned) against the same fixed 16.",
  ],
  chart: (count) =>
    `10. adaptive concurrency, ${count.toLocaleString("en-US")} items: wall time per item (shorter is faster)`,
});
