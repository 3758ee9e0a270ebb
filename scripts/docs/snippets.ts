// Extracts the code blocks of the documentation and type-checks them against the built package
// (run-snippets.ts runs them). The CLI is scripts/check-docs.ts; this module holds the parts a
// test can call.

import { writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import ts from "typescript";
import { makeSnippetWorkspace, removeSnippetWorkspace } from "./workspace.js";

/** The fence languages that are checked, and the file extension each becomes. */
const checked: Record<string, "ts" | "js"> = {
  ts: "ts",
  typescript: "ts",
  js: "js",
  javascript: "js",
};

/** One fenced code block of a Markdown file. */
export interface Snippet {
  /** The Markdown file, as given to {@link extractSnippets}. */
  file: string;
  /** Line of the Markdown file (from 1) that holds the block's first line of code. */
  line: number;
  /** `"ts"` or `"js"`. */
  language: "ts" | "js";
  /** The block's code, without the fences. */
  code: string;
  /**
   * Why the block is type-checked but not run, when its fence says so (`\`\`\`ts no-run (needs a
   * Redis server)`); absent for a block that runs.
   */
  noRun?: string;
}

/** A type error in a snippet, located in its Markdown file. */
export interface SnippetProblem {
  file: string;
  line: number;
  column: number;
  message: string;
}

/**
 * The fenced ```ts / ```js blocks (and their long names) of one Markdown text, in order. Other
 * fences (```sh, ```text) are not code to check. A fence may be indented (in a list item); the
 * indentation is removed from the code.
 *
 * After the language, a checked block's fence may say `no-run (why)`: the block is then
 * type-checked but not run, and the reason is required, so that the Markdown source says why
 * (`\`\`\`ts no-run (needs a Redis server)`). Anything else there is refused, so that a misspelt
 * marker cannot go unnoticed.
 */
export function extractSnippets(file: string, markdown: string): Snippet[] {
  const snippets: Snippet[] = [];
  const lines = markdown.split("\n");
  let open:
    { fence: string; indent: number; language: string; meta: string; line: number } | undefined;
  let body: string[] = [];
  for (const [index, text] of lines.entries()) {
    if (open === undefined) {
      const start = /^( *)(`{3,}|~{3,})\s*([\w-]*)(.*)$/.exec(text);
      if (start === null) continue;
      const [, indent = "", fence = "", language = "", meta = ""] = start;
      open = {
        fence,
        indent: indent.length,
        language: language.toLowerCase(),
        meta: meta.trim(),
        line: index + 2,
      };
      body = [];
      continue;
    }
    if (isClosingFence(text, open.fence)) {
      const language = checked[open.language];
      if (language !== undefined) {
        const code = body.map((line) =>
          line.slice(Math.min(open?.indent ?? 0, leadingSpaces(line))),
        );
        const snippet: Snippet = { file, line: open.line, language, code: `${code.join("\n")}\n` };
        const noRun = noRunReason(file, open.line - 1, open.meta);
        if (noRun !== undefined) snippet.noRun = noRun;
        snippets.push(snippet);
      }
      open = undefined;
      continue;
    }
    body.push(text);
  }
  if (open !== undefined)
    throw new Error(`${file}:${String(open.line - 1)}: code fence never closed`);
  return snippets;
}

/** The reason of a `no-run (why)` fence marker, `undefined` for none; throws for anything else. */
function noRunReason(file: string, line: number, meta: string): string | undefined {
  if (meta === "") return undefined;
  const reason = /^no-run\s*\((.*\S.*)\)$/.exec(meta)?.[1];
  if (reason === undefined) {
    throw new Error(
      `${file}:${String(line)}: after the language a fence may only say \`no-run (why)\`, got ${JSON.stringify(meta)}`,
    );
  }
  return reason.trim();
}

/** A closing fence: only the opening fence's character, at least as many times. */
function isClosingFence(text: string, fence: string): boolean {
  const trimmed = text.trim();
  return trimmed.length >= fence.length && trimmed === fence.charAt(0).repeat(trimmed.length);
}

function leadingSpaces(line: string): number {
  return line.length - line.trimStart().length;
}

/** The module name of a snippet's file: `.ts`, `.mjs`, or `.cjs` for a script that uses `require`. */
export function snippetFileName(index: number, snippet: Snippet): string {
  if (snippet.language === "ts") return `snippet-${String(index)}.ts`;
  return `snippet-${String(index)}.${/\brequire\(/.test(snippet.code) ? "cjs" : "mjs"}`;
}

/**
 * Type-checks every snippet as a module of its own, under `strict`, with `async-pipeline` and its
 * subpaths resolved through the package's own `exports` to the build in `<root>/dist` (so the
 * build must be current). Other imports (`node:*`, `@opentelemetry/*`) resolve to the repository's
 * `node_modules`. Returns the problems, located in the Markdown files.
 */
export function checkSnippets(root: string, snippets: readonly Snippet[]): SnippetProblem[] {
  const dir = makeSnippetWorkspace(root);
  try {
    const files = new Map<string, Snippet>();
    for (const [index, snippet] of snippets.entries()) {
      const path = join(dir, snippetFileName(index, snippet));
      writeFileSync(path, snippet.code);
      files.set(path, snippet);
    }
    const program = ts.createProgram([...files.keys()], {
      strict: true,
      target: ts.ScriptTarget.ES2022,
      lib: ["lib.es2022.d.ts", "lib.dom.d.ts"],
      module: ts.ModuleKind.NodeNext,
      moduleResolution: ts.ModuleResolutionKind.NodeNext,
      moduleDetection: ts.ModuleDetectionKind.Force,
      types: ["node"],
      allowJs: true,
      checkJs: true,
      noEmit: true,
      skipLibCheck: true,
    });
    const problems: SnippetProblem[] = [];
    for (const diagnostic of ts.getPreEmitDiagnostics(program)) {
      const message = ts.flattenDiagnosticMessageText(diagnostic.messageText, "\n");
      const source = diagnostic.file;
      const snippet = source === undefined ? undefined : files.get(source.fileName);
      if (source === undefined || snippet === undefined || diagnostic.start === undefined) {
        const where = source === undefined ? "" : `${relative(dir, source.fileName)}: `;
        problems.push({ file: "(compiler)", line: 0, column: 0, message: `${where}${message}` });
        continue;
      }
      const position = source.getLineAndCharacterOfPosition(diagnostic.start);
      problems.push({
        file: snippet.file,
        line: snippet.line + position.line,
        column: position.character + 1,
        message,
      });
    }
    return problems.sort(
      (a, b) => a.file.localeCompare(b.file) || a.line - b.line || a.column - b.column,
    );
  } finally {
    removeSnippetWorkspace(dir);
  }
}
