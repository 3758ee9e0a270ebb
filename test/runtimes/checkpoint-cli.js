/**
 * Runs the checkpoint smoke suite in Node, Bun or Deno:
 * `<runtime> checkpoint-cli.js <URL of the build's folder>/ <folder for the checkpoints>`.
 * Prints the results as one line of JSON and exits with 0 when every check passed, 1 otherwise.
 */
/* global Deno, process */
import { runCheckpointSmoke } from "./checkpoint.js";

const args = typeof Deno === "undefined" ? process.argv.slice(2) : Deno.args;
const [base, folder] = args;
if (base === undefined || folder === undefined) {
  throw new Error("usage: checkpoint-cli.js <URL of the build's folder>/ <folder>");
}

const checkpoint = await import(new URL("checkpoint.js", base).href);
const core = await import(new URL("index.js", base).href);
const results = await runCheckpointSmoke(checkpoint, core, folder);
console.log(JSON.stringify(results));
const failed = results.some((result) => !result.ok);
if (typeof Deno === "undefined") process.exitCode = failed ? 1 : 0;
else Deno.exitCode = failed ? 1 : 0;
