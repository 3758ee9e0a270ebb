import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { anchorsOf, checkLinks, githubAnchor, typedocAnchor } from "../scripts/docs/links.js";
import { runSnippets } from "../scripts/docs/run-snippets.js";
import { checkSnippets, extractSnippets, type SnippetProblem } from "../scripts/docs/snippets.js";

// The documentation check of `npm test` (scripts/check-docs.ts): the parts that decide which
// code is compiled, where a failure is reported, and which links count as broken. Compiling
// against the package itself needs dist/, which `npm test` builds after this suite, so the
// snippets compiled here import nothing from it.

const root = fileURLToPath(new URL("..", import.meta.url));

describe("extractSnippets", () => {
  it("takes ts and js blocks, with the Markdown line of their first line of code", () => {
    const markdown = [
      "# Title", // 1
      "", // 2
      "```ts", // 3
      "const a = 1;", // 4
      "```", // 5
      "```sh", // 6
      "npm test", // 7
      "```", // 8
      "```text", // 9
      "new Stage(name, handler)", // 10
      "```", // 11
      "- a list item:", // 12
      "", // 13
      "  ```js", // 14
      "  const b = 2;", // 15
      "  ```", // 16
      "````typescript", // 17
      "```", // 18
      "````", // 19
    ].join("\n");
    expect(extractSnippets("README.md", markdown)).toEqual([
      { file: "README.md", line: 4, language: "ts", code: "const a = 1;\n" },
      { file: "README.md", line: 15, language: "js", code: "const b = 2;\n" },
      { file: "README.md", line: 18, language: "ts", code: "```\n" },
    ]);
  });

  it("reads a no-run marker and its reason after the language, and refuses anything else there", () => {
    const markdown =
      "```ts no-run (needs a Redis server)\nconst a = 1;\n```\n```js\nconst b = 2;\n```\n";
    expect(extractSnippets("docs/x.md", markdown)).toEqual([
      {
        file: "docs/x.md",
        line: 2,
        language: "ts",
        code: "const a = 1;\n",
        noRun: "needs a Redis server",
      },
      { file: "docs/x.md", line: 5, language: "js", code: "const b = 2;\n" },
    ]);
    expect(() => extractSnippets("docs/x.md", "text\n```ts no-run\nconst a = 1;\n```\n")).toThrow(
      'docs/x.md:2: after the language a fence may only say `no-run (why)`, got "no-run"',
    );
    expect(() => extractSnippets("docs/x.md", "```ts norun (typo)\nconst a = 1;\n```\n")).toThrow(
      "docs/x.md:1: after the language",
    );
  });

  it("refuses a fence that is never closed", () => {
    expect(() => extractSnippets("docs/x.md", "text\n```ts\nconst a = 1;\n")).toThrow(
      "docs/x.md:2: code fence never closed",
    );
  });
});

describe("checkSnippets", () => {
  // One compilation for every case (a TypeScript program with Node's types takes seconds).
  const sources: Record<string, string> = {
    "docs/guide.md":
      "Intro\n\n```ts\nexport const ok = 1;\n```\n\n```ts\n\nconst n: number = 'one';\n```\n",
    "clash.md":
      "```ts\nconst name = 1;\nawait Promise.resolve(name);\n```\n```ts\nconst name = 'x';\n```\n",
    "strict.md": "```ts\nexport function f(x) {\n  return x;\n}\n```\n",
    "expect.md": "```ts\n// @ts-expect-error: fine after all\nexport const n: number = 1;\n```\n",
    "cjs.md": '```js\nconst { join } = require("node:path");\njoin(1);\n```\n',
  };
  let problems: SnippetProblem[] = [];
  beforeAll(() => {
    const snippets = Object.entries(sources).flatMap(([file, text]) => extractSnippets(file, text));
    problems = checkSnippets(root, snippets);
  }, 120_000);
  const of = (file: string) => problems.filter((problem) => problem.file === file);

  it("reports a type error at its Markdown file, line and column, under strict", () => {
    expect(of("docs/guide.md")).toEqual([
      {
        file: "docs/guide.md",
        line: 9,
        column: 7,
        message: "Type 'string' is not assignable to type 'number'.",
      },
    ]);
  });

  it("compiles each block as a module of its own, so names never clash", () => {
    expect(of("clash.md")).toEqual([]);
  });

  it("checks strict mode: an implicit any fails", () => {
    expect(of("strict.md").map((problem) => problem.line)).toEqual([2]);
  });

  it("holds a line marked @ts-expect-error to failing", () => {
    expect(of("expect.md")).toEqual([
      { file: "expect.md", line: 2, column: 1, message: "Unused '@ts-expect-error' directive." },
    ]);
  });

  it("checks a js block too, as CommonJS when it calls require", () => {
    expect(of("cjs.md")).toHaveLength(1);
    expect(of("cjs.md")[0]).toMatchObject({ line: 3 });
  });

  it("reports nothing that is not in a snippet", () => {
    expect(problems.filter((problem) => !(problem.file in sources))).toEqual([]);
  });
});

describe("runSnippets", () => {
  // One run for every case, two at a time, with a limit that vitest's own start (the vitest
  // block) fits under load; and the hung block alone, cut short at 3 s. The blocks import
  // nothing from the package: dist/ is built after this suite.
  const sources: Record<string, string> = {
    "ok.md":
      "Intro\n\n```ts\nconst n: number = await Promise.resolve(2);\nconsole.log(n * 21);\n```\n",
    "throws.md": [
      "```ts", // 1
      "interface Order {", // 2
      "  id: string;", // 3
      "}", // 4
      'const order: Order = { id: "a1" };', // 5
      "throw new Error(`no price for ${order.id}`);", // 6
      "```",
      "",
    ].join("\n"),
    "rejects.md": '```js\nawait Promise.reject(new RangeError("late"));\n```\n',
    "hangs.md": "```ts\nsetInterval(() => {}, 1_000);\n```\n",
    "unsettled.md": "```ts\nawait new Promise(() => {});\n```\n",
    "online.md": '```ts\nawait fetch("https://api.example.com/items/a1");\n```\n',
    "local.md": [
      "```ts",
      'import { once } from "node:events";',
      'import { createServer } from "node:http";',
      'import type { AddressInfo } from "node:net";',
      'const server = createServer((_request, response) => response.end("pong"));',
      'await once(server.listen(0, "127.0.0.1"), "listening");',
      "const { port } = server.address() as AddressInfo;",
      "const text = await (await fetch(`http://127.0.0.1:${port}/`)).text();",
      'if (text !== "pong") throw new Error(text);',
      "server.close();",
      "```",
      "",
    ].join("\n"),
    "cjs.md": '```js\nconst { join } = require("node:path");\nconsole.log(join("a", "b"));\n```\n',
    "skipped.md": '```ts no-run (needs a Redis server)\nthrow new Error("never run");\n```\n',
    "vitest.md": [
      "```ts",
      'import { expect, it } from "vitest";',
      'it("adds", () => {',
      "  expect(1 + 1).toBe(2);",
      "});",
      'it("fails", () => {',
      "  expect(1 + 1).toBe(3);",
      "});",
      "```",
      "",
    ].join("\n"),
  };
  let problems: SnippetProblem[] = [];
  beforeAll(async () => {
    const snippets = Object.entries(sources).flatMap(([file, text]) => extractSnippets(file, text));
    const hung = snippets.filter((snippet) => snippet.file === "hangs.md");
    const others = snippets.filter((snippet) => snippet.file !== "hangs.md");
    const found = await Promise.all([
      runSnippets(root, others, { timeout: 90_000, concurrency: 2 }),
      runSnippets(root, hung, { timeout: 3_000 }),
    ]);
    problems = found.flat();
  }, 180_000);
  const of = (file: string) => problems.filter((problem) => problem.file === file);

  it("passes a block that exits with code 0, a server of its own on 127.0.0.1 included", () => {
    expect(of("ok.md")).toEqual([]);
    expect(of("local.md")).toEqual([]);
    expect(of("cjs.md")).toEqual([]);
  });

  it("reports a throw at the Markdown line that threw, through the source map", () => {
    expect(of("throws.md")).toHaveLength(1);
    expect(of("throws.md")[0]).toMatchObject({ line: 6 });
    expect(of("throws.md")[0]?.message).toMatch(
      /^the code block exited with code 1; it printed:\n/,
    );
    expect(of("throws.md")[0]?.message).toContain("Error: no price for a1");
    expect(of("throws.md")[0]?.message).toContain("throws.md:6:");
    expect(of("throws.md")[0]?.message).not.toContain("snippet-");
  });

  /** The one problem of `file`: its line and message. */
  const only = (file: string): { line: number; message: string } => {
    expect(of(file)).toHaveLength(1);
    const [problem] = of(file);
    return { line: problem?.line ?? 0, message: problem?.message ?? "" };
  };

  it("reports an unhandled rejection, and a top-level await that never settles", () => {
    expect(only("rejects.md").line).toBe(2);
    expect(only("rejects.md").message).toContain("RangeError: late");
    expect(only("unsettled.md").line).toBe(2);
    expect(only("unsettled.md").message).toContain("code 13: a top-level await never settled");
  });

  it("kills a block that runs past the limit, and says so", () => {
    expect(only("hangs.md").line).toBe(2);
    expect(only("hangs.md").message).toMatch(/^the code block did not finish within 3 s/);
  });

  it("refuses a connection to anything but the loopback interface", () => {
    expect(of("online.md")).toHaveLength(1);
    expect(of("online.md")[0]?.message).toContain(
      "check:docs runs code blocks offline: a connection to api.example.com was refused",
    );
  });

  it("runs a block that imports vitest as a test file", () => {
    expect(of("vitest.md")).toHaveLength(1);
    expect(of("vitest.md")[0]?.message).toContain("expected 2 to be 3");
    expect(of("vitest.md")[0]).toMatchObject({ line: 7 });
  });

  it("does not run a block marked no-run", () => {
    expect(of("skipped.md")).toEqual([]);
  });
});

describe("checkLinks", () => {
  let dir: string | undefined;
  afterEach(() => {
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
    dir = undefined;
  });

  function tree(files: Record<string, string>): string {
    const made = mkdtempSync(join(tmpdir(), "async-pipeline-links-"));
    for (const [path, text] of Object.entries(files)) {
      mkdirSync(join(made, path, ".."), { recursive: true });
      writeFileSync(join(made, path), text);
    }
    dir = made;
    return made;
  }

  it("accepts links to files and to headings that GitHub and TypeDoc name alike", () => {
    const at = tree({
      "README.md":
        "See [a](docs/a.md#the-call-signal), [b](docs/a.md) and [top](#intro).\n# Intro\n",
      "docs/a.md": "# A\n## The call signal\n",
    });
    expect(checkLinks(at, ["README.md", "docs/a.md"])).toEqual([]);
  });

  it("reports a missing file, a missing heading, a folder, with file and line", () => {
    const at = tree({
      "README.md":
        "one\n[x](docs/none.md)\n[y](docs/a.md#nope) [z](docs/)\n```md\n[in code](no.md)\n```\n",
      "docs/a.md": "# A\n",
    });
    expect(
      checkLinks(at, ["README.md"]).map(({ file, line }) => `${file}:${String(line)}`),
    ).toEqual(["README.md:2", "README.md:3", "README.md:3"]);
  });

  it("does not follow links with a scheme", () => {
    const at = tree({ "README.md": "[site](https://example.com/x.md) [mail](mailto:a@b.c)\n" });
    expect(checkLinks(at, ["README.md"])).toEqual([]);
  });

  it("refuses an anchor that only one of GitHub and TypeDoc gives (code in a heading)", () => {
    expect(githubAnchor("Deadlines: `AbortSignal.timeout`")).toBe("deadlines-abortsignaltimeout");
    expect(typedocAnchor("Deadlines: `AbortSignal.timeout`")).toBe("deadlines");
    expect([...anchorsOf("## Deadlines: `AbortSignal.timeout`\n")]).toEqual([]);
    expect([...anchorsOf("## Deadlines: AbortSignal.timeout\n")]).toEqual([
      "deadlines-abortsignaltimeout",
    ]);
  });

  it("numbers repeated headings and ignores headings in code", () => {
    expect([...anchorsOf("# Setup\n## Setup\n```sh\n# not a heading\n```\n")]).toEqual([
      "setup",
      "setup-1",
    ]);
  });
});
