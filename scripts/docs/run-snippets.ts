// Runs the code blocks of the documentation against the built package, as a user who pastes one
// into a file of an ES-module project would: each block is a program of its own that must exit
// with code 0, offline, within a time limit. snippets.ts extracts them (and type-checks them);
// scripts/check-docs.ts is the CLI.

import { spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import ts from "typescript";
import { snippetFileName, type Snippet, type SnippetProblem } from "./snippets.js";
import { makeSnippetWorkspace, removeSnippetWorkspace } from "./workspace.js";

/** How {@link runSnippets} runs the blocks. */
export interface RunSnippetsOptions {
  /** Milliseconds a block may run before it counts as hung and is killed. @default 30_000 */
  timeout?: number;
  /** Blocks run at once. @default the number of CPUs, at most 4 */
  concurrency?: number;
}

/**
 * The connections a block may open: loopback only. Loaded into every process a block starts
 * (`NODE_OPTIONS=--import`), it turns a `fetch` or a socket to any other host into an error that
 * says why, so that a block that needs the network fails here rather than on a reader's train.
 */
const OFFLINE_GUARD = `
import net from "node:net";
const local = (host) =>
  host === undefined || host === "" || host === "localhost" || host === "::1" ||
  host === "[::1]" || /^127\\./.test(host);
const refuse = (host) =>
  new Error(\`check:docs runs code blocks offline: a connection to \${host} was refused (give the block a local stand-in: an in-memory function, or a node:http server on 127.0.0.1)\`);
const connect = net.Socket.prototype.connect;
net.Socket.prototype.connect = function (...args) {
  const first = Array.isArray(args[0]) ? args[0][0] : args[0];
  const host =
    typeof first === "object" && first !== null
      ? first.path === undefined ? first.host : undefined
      : typeof args[1] === "string" ? args[1] : undefined;
  if (!local(host)) throw refuse(host);
  return connect.apply(this, args);
};
const fetch = globalThis.fetch;
globalThis.fetch = function (input, init) {
  const url = new URL(typeof input === "object" && "url" in input ? input.url : String(input));
  if (!local(url.hostname)) return Promise.reject(refuse(url.hostname));
  return fetch.call(this, input, init);
};
`;

/** What one block's process did. */
interface Outcome {
  code: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  output: string;
}

/**
 * Runs every block that has no `no-run` marker, each as a program of its own, in a temporary
 * ES-module project whose `node_modules/async-pipeline` is the repository at `root` (so `dist/`
 * must be current). A `ts` block is compiled (types stripped, nothing checked: that is
 * `checkSnippets`'s job) with a source map, so that a stack trace names the Markdown line; a `js`
 * block runs as it is (as CommonJS when it calls `require`); a block that imports `vitest` is a
 * test file, run by vitest. A block fails when it exits with another code than 0 (it threw, a
 * promise rejected unhandled, a top-level `await` never settled), when it runs longer than
 * `timeout`, or when it opens a connection to anything but the loopback interface.
 *
 * Returns one problem per failed block, located at the block's first line (or at the line of
 * the block that threw, when the stack trace names one), with what the process printed.
 */
export async function runSnippets(
  root: string,
  snippets: readonly Snippet[],
  options: RunSnippetsOptions = {},
): Promise<SnippetProblem[]> {
  const timeout = options.timeout ?? 30_000;
  const concurrency = options.concurrency ?? Math.max(1, Math.min(4, availableParallelism()));
  const dir = makeSnippetWorkspace(root);
  try {
    const guard = join(dir, "offline-guard.mjs");
    writeFileSync(guard, OFFLINE_GUARD);
    const env = {
      ...process.env,
      NODE_OPTIONS: `--import=${pathToFileURL(guard).href} --enable-source-maps`,
      NO_COLOR: "1",
      FORCE_COLOR: "0",
    };
    const jobs = snippets.flatMap((snippet, index) =>
      snippet.noRun === undefined ? [{ snippet, index }] : [],
    );
    const problems: SnippetProblem[] = [];
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < jobs.length) {
        const { snippet, index } = jobs[next++] as (typeof jobs)[number];
        const prepared = prepare(root, dir, index, snippet);
        const outcome = await runProcess(prepared.command, dir, env, timeout);
        const problem = problemOf(snippet, prepared, outcome, timeout);
        if (problem !== undefined) problems.push(problem);
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, jobs.length) }, worker));
    return problems.sort(
      (a, b) => a.file.localeCompare(b.file) || a.line - b.line || a.column - b.column,
    );
  } finally {
    removeSnippetWorkspace(dir);
  }
}

/** A block written out: the command that runs it, and the files that name it in its output. */
interface Prepared {
  command: string[];
  /** The file whose lines are the block's: stack frames that name it are located in the block. */
  file: string;
  /** The compiled file, which Node's error banner names by its own lines; `ts` blocks only. */
  compiled?: string;
}

/** Writes one block into `dir` and returns how to run it. */
function prepare(root: string, dir: string, index: number, snippet: Snippet): Prepared {
  if (/\bfrom\s+["']vitest["']/.test(snippet.code)) {
    const file = `snippet-${String(index)}.test.${snippet.language}`;
    writeFileSync(join(dir, file), snippet.code);
    const vitest = join(root, "node_modules", "vitest", "vitest.mjs");
    return { command: [vitest, "run", "--root", dir, "--reporter=default", file], file };
  }
  const file = snippetFileName(index, snippet);
  if (snippet.language === "js") {
    writeFileSync(join(dir, file), snippet.code);
    return { command: [file], file };
  }
  const { outputText } = ts.transpileModule(snippet.code, {
    fileName: file,
    compilerOptions: {
      target: ts.ScriptTarget.ES2022,
      module: ts.ModuleKind.ESNext,
      inlineSourceMap: true,
    },
  });
  const compiled = file.replace(/\.ts$/, ".mjs");
  writeFileSync(join(dir, compiled), outputText);
  return { command: [compiled], file, compiled };
}

function runProcess(
  args: readonly string[],
  cwd: string,
  env: NodeJS.ProcessEnv,
  timeout: number,
): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { cwd, env, stdio: ["ignore", "pipe", "pipe"] });
    const chunks: Buffer[] = [];
    child.stdout.on("data", (chunk: Buffer) => chunks.push(chunk));
    child.stderr.on("data", (chunk: Buffer) => chunks.push(chunk));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill("SIGKILL");
    }, timeout);
    child.on("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, timedOut, output: Buffer.concat(chunks).toString("utf8") });
    });
  });
}

/** The problem a block's run shows, if any, located in its Markdown file. */
function problemOf(
  snippet: Snippet,
  prepared: Prepared,
  outcome: Outcome,
  timeout: number,
): SnippetProblem | undefined {
  if (!outcome.timedOut && outcome.code === 0) return undefined;
  // Stack frames name the block's file (a `ts` block's through the source map): point them at
  // the Markdown. The banner above an uncaught error names the compiled file by its own lines,
  // which are not the block's: it is named as the block, without a line.
  const frames: { line: number; column: number }[] = [];
  let output = outcome.output.replace(
    pathPattern(prepared.file, true),
    (_, line: string, column: string | undefined) => {
      const at = { line: snippet.line + Number(line) - 1, column: Number(column ?? 1) };
      frames.push(at);
      return `${snippet.file}:${String(at.line)}:${String(at.column)}`;
    },
  );
  if (prepared.compiled !== undefined) {
    output = output.replace(pathPattern(prepared.compiled, false), `${snippet.file} (compiled)`);
  }
  const [first] = frames;
  const why = outcome.timedOut
    ? `did not finish within ${String(timeout / 1_000)} s (a timer, server or socket left open? a promise never settled?)`
    : outcome.code === 13
      ? "exited with code 13: a top-level await never settled"
      : outcome.code === null
        ? `was killed by ${String(outcome.signal)}`
        : `exited with code ${String(outcome.code)}`;
  const printed = output.trim().split("\n").slice(-30).join("\n");
  return {
    file: snippet.file,
    line: first?.line ?? snippet.line,
    column: first?.column ?? 1,
    message: `the code block ${why}${printed === "" ? "" : `; it printed:\n${indent(printed)}`}`,
  };
}

/** A path ending in `file` as a stack trace or a banner writes it, with `:line[:column]`. */
function pathPattern(file: string, withLine: boolean): RegExp {
  const name = file.replace(/[.\\]/g, "\\$&");
  const position = withLine ? ":(\\d+)(?::(\\d+))?" : "(?::\\d+)*";
  return new RegExp(`(?:(?:file://)?[^\\s()]*/)?(?<![\\w.-])${name}${position}`, "g");
}

function indent(text: string): string {
  return text
    .split("\n")
    .map((line) => `    ${line}`)
    .join("\n");
}
