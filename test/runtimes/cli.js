/**
 * Runs the smoke suite in Node, Bun or Deno: `<runtime> cli.js <URL of the build's folder>/`.
 * Prints the results as one line of JSON and exits with 0 when every check passed, 1 otherwise.
 */
/* global Deno, process */
import { runSmoke } from "./smoke.js";

const args = typeof Deno === "undefined" ? process.argv.slice(2) : Deno.args;
const base = args[0];
if (base === undefined) throw new Error("usage: cli.js <URL of the build's folder>/");

const [core, middlewares] = await Promise.all([
  import(new URL("index.js", base).href),
  import(new URL("middlewares.js", base).href),
]);
const results = await runSmoke(core, middlewares);
console.log(JSON.stringify(results));
const failed = results.some((result) => !result.ok);
if (typeof Deno === "undefined") process.exitCode = failed ? 1 : 0;
else Deno.exitCode = failed ? 1 : 0;
