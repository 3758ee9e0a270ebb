/**
 * Property-based tests: random pipelines (1 to 5 stages, sync, async and thenable handlers,
 * random delays on fake timers, failures of any type, timeouts, retries, hooks, middleware,
 * random concurrency, random input kinds and abort points) checked against a sequential
 * reference computed from the plan alone. See test/fixtures/scenario.ts for the model.
 */
import fc from "fast-check";
import { afterEach, describe, expect, it, vi } from "vitest";
import {
  armAbort,
  ENOUGH_TIME,
  checkHooks,
  checkStagesRun,
  inputOf,
  makePipeline,
  makeSource,
  matchesFailure,
  matchesSettled,
  reference,
  scenarioArbitrary,
  sourceFails,
  watch,
  withFakeTime,
  World,
  type Expected,
  type Scenario,
  type Settlement,
} from "./fixtures/scenario.js";
import { assertProperty, TIMEOUT } from "./support/property.js";

afterEach(() => {
  vi.useRealTimers();
});

/** The checks every batch form shares once everything has run out. */
function checkAftermath(world: World, settlement: Settlement, itemsStop = true): void {
  expect(settlement.status, "every run settles").not.toBe("pending");
  if (itemsStop) {
    expect(settlement.timersAtSettle, "no library timer is left when the batch settles").toBe(0);
  }
  expect(settlement.listenersAtSettle, "no listener is left on the caller's signal").toBe(0);
  expect(world.sourceClosed, "the input is exhausted or closed").toBe(true);
  checkHooks(world);
  expect(world.violations).toEqual([]);
  expect(vi.getTimerCount(), "nothing is left pending at the end").toBe(0);
}

/**
 * When the abort fired while the batch was pending: it rejected with the reason at that very
 * moment. A run, unlike a batch, awaits its hooks (documented: an async hook delays its run),
 * so with async hooks it settles when they do; and an abort that lands in the afterStage of
 * the stage that ended the run (its last, or a failed one) lets it settle as it would have.
 */
function abortedWhilePending(
  scenario: Scenario,
  settlement: Settlement,
  abort: ReturnType<typeof armAbort>,
  lastOutput?: Expected,
): boolean {
  if (abort.statusAtAbort !== "pending") return false;
  const awaitsHooks = lastOutput !== undefined && scenario.hooks === "async";
  if (awaitsHooks && settlement.reason !== abort.reason) {
    if (lastOutput.ok) {
      expect(settlement.status).toBe("fulfilled");
      expect(settlement.value).toEqual(lastOutput.value);
    } else {
      expect(settlement.status).toBe("rejected");
      expect(matchesFailure(settlement.reason, lastOutput)).toBe(true);
    }
    return true;
  }
  expect(settlement.status).toBe("rejected");
  expect(settlement.reason).toBe(abort.reason);
  if (!awaitsHooks) {
    expect(settlement.at, "rejects at the very moment of the abort").toBe(scenario.abortAt);
  }
  return true;
}

function failingBefore(expected: readonly Expected[], end: number): Expected[] {
  return expected.filter((outcome, item) => !outcome.ok && item < end);
}

describe("property: map", () => {
  it(
    "equals the sequential reference, in input order, within the concurrency bound",
    async () => {
      await assertProperty(
        fc.asyncProperty(scenarioArbitrary(), (scenario) =>
          withFakeTime(async () => {
            const world = new World(scenario);
            const pipeline = makePipeline(world);
            const expected = scenario.items.map((_, item) => reference(scenario, item));
            const abort = armAbort(world, () => settlement);
            const promise = pipeline.map(
              makeSource(world),
              scenario.concurrency,
              abort.controller === undefined ? {} : { signal: abort.controller.signal },
            );
            promise.then(undefined, () => {
              world.stopSeen = true;
            });
            const settlement = watch(world, promise, abort.controller?.signal);
            await vi.advanceTimersByTimeAsync(ENOUGH_TIME);

            checkAftermath(world, settlement);
            if (abortedWhilePending(scenario, settlement, abort)) return;
            const end = sourceFails(scenario) ? scenario.sourceThrowsAt! : scenario.items.length;
            const failing = failingBefore(expected, end);
            if (sourceFails(scenario) || failing.length > 0) {
              expect(settlement.status).toBe("rejected");
              const { reason } = settlement;
              const known =
                (sourceFails(scenario) && reason === world.sourceError) ||
                failing.some((outcome) => matchesFailure(reason, outcome));
              expect(known, `map rejected with ${String(reason)}`).toBe(true);
              return;
            }
            expect(settlement.status).toBe("fulfilled");
            expect(settlement.value).toEqual(
              expected.map((outcome) => (outcome.ok ? outcome.value : undefined)),
            );
            checkStagesRun(world, expected);
          }),
        ),
      );
    },
    TIMEOUT,
  );
});

describe("property: mapSettled", () => {
  it(
    "settles exactly one entry per input, each equal to the sequential reference",
    async () => {
      await assertProperty(
        fc.asyncProperty(scenarioArbitrary(), (scenario) =>
          withFakeTime(async () => {
            const world = new World(scenario);
            const pipeline = makePipeline(world);
            const expected = scenario.items.map((_, item) => reference(scenario, item));
            const abort = armAbort(world, () => settlement);
            const promise = pipeline.mapSettled(
              makeSource(world),
              scenario.concurrency,
              abort.controller === undefined ? {} : { signal: abort.controller.signal },
            );
            promise.then(undefined, () => {
              world.stopSeen = true;
            });
            const settlement = watch(world, promise, abort.controller?.signal);
            await vi.advanceTimersByTimeAsync(ENOUGH_TIME);

            checkAftermath(world, settlement);
            if (abortedWhilePending(scenario, settlement, abort)) return;
            if (sourceFails(scenario)) {
              expect(settlement.status).toBe("rejected");
              expect(settlement.reason).toBe(world.sourceError);
              return;
            }
            expect(settlement.status).toBe("fulfilled");
            const entries = settlement.value as unknown[];
            expect(entries).toHaveLength(expected.length);
            expected.forEach((outcome, item) => {
              expect(item in entries, `an entry for item ${String(item)}`).toBe(true);
              const entry = entries[item];
              expect(matchesSettled(entry, outcome), `entry ${String(item)}`).toBe(true);
            });
            checkStagesRun(world, expected);
          }),
        ),
      );
    },
    TIMEOUT,
  );
});

describe("property: run", () => {
  it(
    "equals the reference, or rejects with the abort reason at the moment of the abort",
    async () => {
      await assertProperty(
        fc.asyncProperty(
          scenarioArbitrary({ minItems: 1, maxItems: 1, sources: ["array"] }),
          (scenario) =>
            withFakeTime(async () => {
              const world = new World(scenario);
              world.sourceClosed = true; // no source here
              const pipeline = makePipeline(world);
              const expected = reference(scenario, 0);
              const abort = armAbort(world, () => settlement);
              const promise = pipeline.run(
                inputOf(0),
                abort.controller === undefined ? {} : { signal: abort.controller.signal },
              );
              const settlement = watch(world, promise, abort.controller?.signal);
              await vi.advanceTimersByTimeAsync(ENOUGH_TIME);

              checkAftermath(world, settlement);
              if (abortedWhilePending(scenario, settlement, abort, expected)) return;
              if (expected.ok) {
                expect(settlement.status).toBe("fulfilled");
                expect(settlement.value).toEqual(expected.value);
              } else {
                expect(settlement.status).toBe("rejected");
                expect(matchesFailure(settlement.reason, expected)).toBe(true);
              }
              checkStagesRun(world, [expected]);
            }),
        ),
      );
    },
    TIMEOUT,
  );
});
