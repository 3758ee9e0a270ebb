/**
 * Hooks and context: `beforeStage` and `afterStage` run around every stage (for logging,
 * metrics, auditing) without touching the handlers; one context object is shared by every
 * stage and hook of a run, and `map` gives each item its own copy.
 *
 * Run: npx tsx examples/hooks-and-context.ts
 */
import { Pipeline, Stage } from "async-pipeline";
import { setTimeout as sleep } from "node:timers/promises";

// Hooks: the two-parameter and four-parameter forms receive no context.
const logged = new Pipeline(
  [
    new Stage("addOne", async (value: number) => value + 1),
    new Stage("checkPositive", (value: number) => {
      if (value <= 0) throw new RangeError(`${value} is not positive`);
      return value;
    }),
  ],
  {
    beforeStage: (stageName, input) => {
      console.log(`  before ${stageName}: input ${JSON.stringify(input)}`);
    },
    afterStage: (stageName, _input, output, error) => {
      if (error !== undefined)
        console.log(`  after ${stageName}: failed (${(error as Error).message})`);
      else console.log(`  after ${stageName}: output ${JSON.stringify(output)}`);
    },
  },
);
console.log("run(1):");
console.log(`  result ${await logged.run(1)}`);
console.log("run(-5):");
await logged.run(-5).catch(() => undefined);

// Hooks may be async (they are awaited), and a hook that throws is ignored: it never stops the
// pipeline nor replaces a stage's error.
const audit: string[] = [];
const robust = new Pipeline([new Stage("double", (value: number) => value * 2)], {
  beforeStage: async (stageName) => {
    await sleep(5);
    audit.push(`audited ${stageName}`);
  },
  afterStage: () => {
    throw new Error("a broken metrics client");
  },
});
console.log(`async hook and throwing hook: result ${await robust.run(21)}, ${audit.join(", ")}`);

// Context: one object shared by the stages and hooks of a run. A handler opts in by declaring
// a second parameter; beforeStage by declaring three, afterStage by declaring five.
interface RequestContext {
  userId?: number;
  trail?: string[];
}
const withContext = new Pipeline(
  [
    new Stage("login", (value: string, context: RequestContext) => {
      context.userId = 123;
      return value;
    }),
    new Stage(
      "greet",
      (value: string, context: RequestContext) => `${value}, user #${context.userId}`,
    ),
  ],
  {
    beforeStage: (stageName, _input, context) => {
      (context.trail ??= []).push(stageName);
    },
  },
);
const context: RequestContext = {};
console.log(`context run: ${await withContext.run("hello", { context })}`);
console.log(`context afterwards: ${JSON.stringify(context)}`);

// Without a context, each run gets a new empty object.
console.log(`no context given: ${await withContext.run("hi")}`);

// map treats `context` as a template: each item's run gets its own shallow copy, so concurrent
// items never share one object, and the template's own properties never change.
const tagger = new Pipeline([
  new Stage("tag", async (value: number, context: { tenant: string; item?: number }) => {
    context.item = value;
    await sleep(5);
    return `${context.tenant}/${context.item}`;
  }),
]);
const template = { tenant: "acme" };
console.log(
  `map with a context template: ${(await tagger.map([1, 2, 3], 3, { context: template })).join(", ")}`,
);
console.log(`template afterwards: ${JSON.stringify(template)}`);
