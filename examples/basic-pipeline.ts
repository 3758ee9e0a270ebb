/**
 * Basic pipeline: stages run in order, each receiving the previous stage's output; sync and
 * async handlers mix freely; a failing stage surfaces as a `StageExecutionError`.
 *
 * Run: npx tsx examples/basic-pipeline.ts
 */
import { Pipeline, Stage, StageExecutionError } from "async-pipeline";

// Two stages: an async one and a sync one. `run` is always async.
const pipeline = new Pipeline([
  new Stage("addOne", async (value: number) => value + 1),
  new Stage("multiplyByTwo", (value: number) => value * 2),
]);
console.log(`pipeline.run(10) = ${await pipeline.run(10)}`); // 22

// A single synchronous stage: the stage's `run` still returns a promise.
const addOne = new Stage("addOne", (value: number) => value + 1);
console.log(`addOne.run(1) = ${await addOne.run(1)}`); // 2

// The types chain: Pipeline<string, number, …> is inferred from the stages.
const wordCount = new Pipeline([
  new Stage("split", (text: string) => text.split(/\s+/).filter(Boolean)),
  new Stage("count", (words: string[]) => words.length),
]);
console.log(`words in "the quick brown fox" = ${await wordCount.run("the quick brown fox")}`);

// A failure inside a handler reaches you as a StageExecutionError naming the stage, with the
// original error kept as `originalError` (and `cause`).
const broken = new Pipeline([
  new Stage("broken", (value: number): number => {
    throw new RangeError(`boom at ${value}`);
  }),
]);
try {
  await broken.run(1);
} catch (error) {
  if (error instanceof StageExecutionError) {
    console.log(`caught ${error.name}: ${error.message}`);
    console.log(`  stageName = ${error.stageName}`);
    console.log(`  originalError is a RangeError: ${error.originalError instanceof RangeError}`);
    console.log(`  attempts = ${error.attempts}`);
  }
}

// A pipeline needs at least one stage. `new Pipeline([])` does not even compile; a list built
// at run time is checked when the pipeline is built.
const noStages: Stage<number, number>[] = [];
try {
  new Pipeline(noStages);
} catch (error) {
  console.log(`new Pipeline([]) throws ${String(error)}`);
}
