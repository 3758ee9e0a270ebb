// `npm run check:docs`: checks README.md and docs/*.md against the built package (run
// `npm run build` first).
//
// - Every ```ts and ```js block is type-checked under `strict`, as a module of its own that
//   imports `async-pipeline` as a user would. A block must compile as it stands: imports
//   included, and anything it leaves to the reader declared in the block itself
//   (`declare const items: string[];`). A line that must not compile is marked
//   `// @ts-expect-error`, which fails if the line compiles after all. Signatures and other
//   pseudo-code go in ```text blocks.
// - Every such block is then run, as a program of its own in an ES-module project, offline: it
//   must exit with code 0 within the time limit. A block that cannot run offline says so and
//   why after its language (```ts no-run (needs a Redis server)), and is only type-checked.
// - Every relative link must lead to a file of the repository, and a `#fragment` to a heading.
//
// Prints each problem as `README.md:123:5: message` and exits with code 1 when there is any.
// `SNIPPET_TIMEOUT` (ms, default 30000) bounds each block's run.

import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { checkLinks } from "./docs/links.js";
import { runSnippets } from "./docs/run-snippets.js";
import { checkSnippets, extractSnippets } from "./docs/snippets.js";

const root = fileURLToPath(new URL("..", import.meta.url));

if (!existsSync(join(root, "dist", "index.js")) || !existsSync(join(root, "dist", "index.d.ts"))) {
  console.error("check-docs: dist/ is missing; run `npm run build` first");
  process.exit(1);
}

const guides = existsSync(join(root, "docs")) ? readdirSync(join(root, "docs")) : [];
const markdown = [
  "README.md",
  ...guides
    .filter((name) => name.endsWith(".md"))
    .sort()
    .map((name) => `docs/${name}`),
];

const snippets = markdown.flatMap((file) =>
  extractSnippets(file, readFileSync(join(root, file), "utf8")),
);
const compileProblems = checkSnippets(root, snippets);
// A block that does not compile is not run: its type errors say what is wrong.
const compiled = snippets.filter(
  (snippet) =>
    !compileProblems.some(
      (problem) =>
        problem.file === snippet.file &&
        problem.line >= snippet.line &&
        problem.line < snippet.line + snippet.code.split("\n").length,
    ),
);
const timeout =
  process.env.SNIPPET_TIMEOUT === undefined ? {} : { timeout: Number(process.env.SNIPPET_TIMEOUT) };
const runProblems = await runSnippets(root, compiled, timeout);
const problems = [
  ...compileProblems,
  ...runProblems,
  ...checkLinks(root, markdown).map((problem) => ({ ...problem, column: 1 })),
];

for (const { file, line, column, message } of problems) {
  console.error(`${file}:${String(line)}:${String(column)}: ${message}`);
}
if (problems.length > 0) {
  console.error(`check-docs: ${String(problems.length)} problem(s)`);
  process.exit(1);
}
const ran = snippets.filter((snippet) => snippet.noRun === undefined).length;
console.log(
  `check-docs: ${String(snippets.length)} code blocks in ${String(markdown.length)} files compile under strict, ` +
    `${String(ran)} of them run offline (${String(snippets.length - ran)} marked no-run); links resolve`,
);
