/**
 * Typed context: give the context a type and the compiler checks every stage, hook and
 * middleware that reads it, and every `run` that passes it. Stage types chain too: a stage that
 * cannot take the previous stage's output does not compile.
 *
 * Run: npx tsx examples/typed-context.ts (type-check: npx tsc -p .)
 */
import { Pipeline, Stage, type Middleware } from "async-pipeline";

interface Order {
  id: string;
  amount: number;
}

// The context this pipeline needs: the tenant is required, the rest is filled in as it runs.
interface CheckoutContext {
  tenant: string;
  currency: string;
  audit: string[];
  discount?: number;
}

// A handler declares its context type on its second parameter; Stage<I, O, C> is inferred.
const validate = new Stage("validate", (order: Order, context: CheckoutContext) => {
  if (order.amount <= 0) throw new RangeError(`order ${order.id}: amount must be positive`);
  context.discount = context.tenant === "acme" ? 0.1 : 0;
  return order;
});

// Or spell the types out on the Stage itself.
const price = new Stage<Order, string, CheckoutContext>("price", (order, context) => {
  const total = order.amount * (1 - (context.discount ?? 0));
  return `${order.id}: ${total.toFixed(2)} ${context.currency}`;
});

// A middleware typed against the context: `context.audit` and `context.tenant` are checked.
const auditing: Middleware<CheckoutContext> = async (next, stageName, value, context) => {
  context.audit.push(`${context.tenant}:${stageName}`);
  return next(value);
};

// Pipeline<Order, string, CheckoutContext>: the input, output and context types are inferred.
const checkout = new Pipeline([validate, price], {
  middlewares: [auditing],
  afterStage: (stageName, _input, _output, error, context) => {
    if (error !== undefined) context.audit.push(`${stageName} failed`);
  },
});

const context: CheckoutContext = { tenant: "acme", currency: "EUR", audit: [] };
const receipt: string = await checkout.run({ id: "o-1", amount: 80 }, { context });
console.log(`receipt: ${receipt}`);
console.log(`audit: ${context.audit.join(", ")}`);

// map: the context template is typed too, and each item gets its own copy of it.
const template: CheckoutContext = { tenant: "globex", currency: "USD", audit: [] };
const receipts = await checkout.mapSettled(
  [
    { id: "o-2", amount: 10 },
    { id: "o-3", amount: -1 },
  ],
  { context: template },
);
for (const entry of receipts) {
  console.log(
    entry.status === "fulfilled" ? `receipt: ${entry.value}` : `failed: ${String(entry.reason)}`,
  );
}

// A class instance works as a context too; each map item's copy keeps its prototype, so its
// methods still work.
class RequestContext {
  readonly lines: string[] = [];
  constructor(readonly requestId: string) {}
  log(line: string): void {
    this.lines.push(`[${this.requestId}] ${line}`);
  }
}
const greet = new Pipeline([
  new Stage("greet", (name: string, context: RequestContext) => {
    context.log(`greeting ${name}`);
    return `hello ${name}`;
  }),
]);
const request = new RequestContext("req-42");
console.log(
  `class context: ${await greet.run("ada", { context: request })}; ${request.lines.join("")}`,
);

// What does not compile. `npx tsc -p .` checks these lines (the @ts-expect-error comments
// fail the check if the errors ever go away); the function is never called.
export function compileErrors(): void {
  // @ts-expect-error: the context has no tenant, currency or audit
  void checkout.run({ id: "o-4", amount: 5 }, { context: {} });
  // @ts-expect-error: the input is an Order, not a string
  void checkout.run("o-5", { context });
  new Pipeline([
    new Stage("length", (text: string) => text.length),
    // @ts-expect-error: "shout" takes a string, but "length" returns a number
    new Stage("shout", (text: string) => text.toUpperCase()),
  ]);
  // @ts-expect-error: a pipeline needs at least one stage
  new Pipeline([]);
}
