/**
 * Property-based tests of `pipeline.stream`: the same random pipelines as test/property.test.ts,
 * read by a consumer that pauses at random and may leave early, with random `buffer`,
 * `ordered` and `settled`.
 */
import { getEventListeners } from "node:events";
import fc from "fast-check";
import { afterEach, describe, expect, it, vi } from "vitest";
import {
  armAbort,
  checkHooks,
  checkStagesRun,
  ENOUGH_TIME,
  makePipeline,
  makeSource,
  matchesFailure,
  matchesSettled,
  reference,
  scenarioArbitrary,
  sourceFails,
  withFakeTime,
  World,
  type Expected,
  type Val,
} from "./fixtures/scenario.js";
import { assertProperty, NUM_RUNS, TIMEOUT } from "./support/property.js";

afterEach(() => {
  vi.useRealTimers();
});

interface Reader {
  readonly buffer: number | undefined;
  readonly ordered: boolean;
  readonly settled: boolean;
  /** Virtual ms the consumer waits after each value, in turn. */
  readonly pauses: readonly number[];
  /** The consumer leaves the loop after this many values. */
  readonly breakAfter: number | undefined;
}

const readerArbitrary: fc.Arbitrary<Reader> = fc.record({
  buffer: fc.option(fc.oneof(fc.integer({ min: 0, max: 3 }), fc.constant(Infinity)), {
    nil: undefined,
  }),
  ordered: fc.boolean(),
  settled: fc.boolean(),
  pauses: fc.array(fc.constantFrom(0, 0, 10, 25), { minLength: 1, maxLength: 4 }),
  breakAfter: fc.option(fc.integer({ min: 0, max: 10 }), { nil: undefined, freq: 4 }),
});

interface Consumption {
  status: "pending" | "done" | "threw";
  error: unknown;
  received: unknown[];
  receivedAfterAbort: number;
  timersAtEnd: number;
  listenersAtEnd: number;
  /** Whether, when the abort fired, some item had not finished yet. */
  unfinishedAtAbort: boolean | undefined;
  /** Whether the consumer has left the loop (`break`), its `return()` settling or settled. */
  left: boolean;
  /** Whether, when the abort fired, the consumer had already left the loop. */
  leftAtAbort: boolean | undefined;
}

function sameMultiset(
  received: readonly unknown[],
  expected: readonly Expected[],
  matches: (entry: unknown, outcome: Expected) => boolean,
): boolean {
  const used = new Set<number>();
  return received.every((entry) => {
    const index = expected.findIndex((outcome, item) => !used.has(item) && matches(entry, outcome));
    if (index < 0) return false;
    used.add(index);
    return true;
  });
}

const okValue = (entry: unknown, outcome: Expected): boolean =>
  outcome.ok && JSON.stringify(entry) === JSON.stringify(outcome.value);

describe("property: stream", () => {
  it(
    "yields the sequential reference within the concurrency and buffer bounds",
    async () => {
      await assertProperty(
        fc.asyncProperty(fc.tuple(scenarioArbitrary(), readerArbitrary), ([scenario, reader]) =>
          withFakeTime(async () => {
            const world = new World(scenario);
            const buffer = reader.buffer ?? scenario.concurrency;
            world.streamLimit = scenario.concurrency + buffer;
            const pipeline = makePipeline(world);
            const expected = scenario.items.map((_, item) => reference(scenario, item));
            const consumption: Consumption = {
              status: "pending",
              error: undefined,
              received: [],
              receivedAfterAbort: 0,
              timersAtEnd: 0,
              listenersAtEnd: 0,
              unfinishedAtAbort: undefined,
              left: false,
              leftAtAbort: undefined,
            };
            const abort = armAbort(world, () => ({
              status: consumption.status === "pending" ? "pending" : "fulfilled",
              value: undefined,
              reason: undefined,
              at: 0,
              timersAtSettle: 0,
              listenersAtSettle: 0,
            }));
            const signal = abort.controller?.signal;
            if (scenario.abortAt !== undefined) {
              // Registered after the abort itself: reads the state the abort left.
              world.later(scenario.abortAt, () => {
                consumption.unfinishedAtAbort = world.finished < scenario.items.length;
                consumption.leftAtAbort = consumption.left;
              });
            }
            const options = {
              ordered: reader.ordered,
              settled: reader.settled,
              ...(reader.buffer === undefined ? {} : { buffer: reader.buffer }),
              ...(signal === undefined ? {} : { signal }),
            };
            const consume = async (): Promise<void> => {
              let count = 0;
              const stream = reader.settled
                ? pipeline.stream(makeSource(world), scenario.concurrency, {
                    ...options,
                    settled: true,
                  })
                : pipeline.stream(makeSource(world), scenario.concurrency, {
                    ...options,
                    settled: false,
                  });
              for await (const entry of stream) {
                if (world.abortFired) consumption.receivedAfterAbort++;
                world.onReceive();
                consumption.received.push(entry);
                count++;
                if (reader.breakAfter !== undefined && count >= reader.breakAfter) {
                  consumption.left = true;
                  break;
                }
                const pause = reader.pauses[count % reader.pauses.length]!;
                if (pause > 0) await world.sleep(pause);
              }
            };
            const end = (): void => {
              world.stopSeen = true;
              consumption.timersAtEnd = world.libraryTimers();
              consumption.listenersAtEnd =
                signal === undefined ? 0 : getEventListeners(signal, "abort").length;
            };
            void consume().then(
              () => {
                consumption.status = "done";
                end();
              },
              (error: unknown) => {
                consumption.status = "threw";
                consumption.error = error;
                end();
              },
            );
            await vi.advanceTimersByTimeAsync(ENOUGH_TIME);

            expect(consumption.status, "every stream ends").not.toBe("pending");
            expect(consumption.timersAtEnd, "no library timer is left").toBe(0);
            expect(consumption.listenersAtEnd, "no listener is left on the caller's signal").toBe(
              0,
            );
            expect(world.sourceClosed, "the input is exhausted or closed").toBe(true);
            checkHooks(world);
            expect(world.violations).toEqual([]);
            expect(vi.getTimerCount()).toBe(0);

            const { received } = consumption;
            const stoppedEarly = reader.breakAfter !== undefined;
            // What was received is always right, whatever ended the stream.
            if (reader.settled && reader.ordered) {
              received.forEach((entry, index) => {
                expect(matchesSettled(entry, expected[index]!), `entry ${String(index)}`).toBe(
                  true,
                );
              });
            } else if (reader.settled) {
              expect(sameMultiset(received, expected, matchesSettled)).toBe(true);
            } else if (reader.ordered) {
              received.forEach((entry, index) => {
                expect(okValue(entry, expected[index]!), `value ${String(index)}`).toBe(true);
              });
            } else {
              expect(sameMultiset(received, expected, okValue)).toBe(true);
            }

            if (consumption.status === "threw") {
              const { error } = consumption;
              const known =
                (abort.controller !== undefined && error === abort.reason) ||
                (sourceFails(scenario) && error === world.sourceError) ||
                (!reader.settled && expected.some((outcome) => matchesFailure(error, outcome)));
              expect(known, `the stream threw ${String(error)}`).toBe(true);
              if (error === abort.reason) {
                expect(consumption.receivedAfterAbort, "nothing is yielded after the abort").toBe(
                  0,
                );
              }
              return;
            }
            const failures = expected.some((outcome) => !outcome.ok);
            // A consumer that left before the abort ended the stream itself: its `return()`
            // settles once the input is closed (after a pull under way), whatever the signal
            // does meanwhile, so ending normally is right then.
            if (
              abort.statusAtAbort === "pending" &&
              consumption.unfinishedAtAbort === true &&
              consumption.leftAtAbort === false &&
              (reader.settled || !failures)
            ) {
              expect.fail(
                "the stream ended normally although it was aborted with items unfinished",
              );
            }
            if (stoppedEarly) return;
            expect(sourceFails(scenario), "a failing source ends the stream with its error").toBe(
              false,
            );
            expect(received).toHaveLength(expected.length);
            if (!reader.settled) expect(failures).toBe(false);
            if (abort.statusAtAbort === undefined) checkStagesRun(world, expected);
          }),
        ),
      );
    },
    TIMEOUT,
  );

  it(
    "settles one entry per input, in input order, like mapSettled",
    async () => {
      await assertProperty(
        fc.asyncProperty(scenarioArbitrary({ abort: false, sourceThrows: false }), (scenario) =>
          withFakeTime(async () => {
            const world = new World(scenario);
            const pipeline = makePipeline(world);
            const expected = scenario.items.map((_, item) => reference(scenario, item));
            const received: PromiseSettledResult<Val>[] = [];
            let finished = false;
            void (async () => {
              const stream = pipeline.stream(makeSource(world), scenario.concurrency, {
                buffer: Infinity,
                settled: true,
              });
              for await (const entry of stream) received.push(entry);
              finished = true;
            })();
            await vi.advanceTimersByTimeAsync(ENOUGH_TIME);
            expect(finished).toBe(true);
            expect(received).toHaveLength(expected.length);
            received.forEach((entry, index) => {
              expect(matchesSettled(entry, expected[index]!), `entry ${String(index)}`).toBe(true);
            });
            checkStagesRun(world, expected);
            expect(world.violations).toEqual([]);
          }),
        ),
        { numRuns: Math.ceil(NUM_RUNS / 3) },
      );
    },
    TIMEOUT,
  );
});
