/**
 * The classes and functions a user meets carry their public names, in the source and in both
 * builds: an uncaught error prints as `StageExecutionError: …`, not `_StageExecutionError: …`,
 * and `console.log(pipeline)` shows `Pipeline {}`, not the name of its implementation.
 *
 * The built files are checked in child processes: the package is built into a temporary
 * folder (never touching `dist/`) and each entry point is loaded with `import` and `require`.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { inspect } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as core from "../src/index.js";
import * as middlewares from "../src/middlewares/index.js";
import * as opentelemetry from "../src/opentelemetry/index.js";
import { rejectionOf } from "./support/promises.js";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const entryPoints = ["index", "middlewares", "opentelemetry"] as const;

/** `[export name, value.name]` for every exported function or class of a module namespace. */
function exportedNames(namespace: object): [string, string][] {
  return Object.entries(namespace)
    .filter((entry): entry is [string, () => unknown] => typeof entry[1] === "function")
    .map(([key, value]) => [key, value.name]);
}

describe("in the source", () => {
  it.each([
    ["async-pipeline", core],
    ["async-pipeline/middlewares", middlewares],
    ["async-pipeline/opentelemetry", opentelemetry],
  ])("every function and class exported by %s is named as it is exported", (_entry, namespace) => {
    const names = exportedNames(namespace);
    expect(names.length).toBeGreaterThan(0);
    for (const [exported, name] of names) expect(name, exported).toBe(exported);
  });

  it("shows a pipeline as a Pipeline and an error by its class name", async () => {
    const pipeline = new core.Pipeline([
      new core.Stage("broken", (): number => {
        throw new Error("boom");
      }),
    ]);
    expect(inspect(pipeline)).toBe("Pipeline {}");
    const error = (await rejectionOf(pipeline.run(1))) as Error;
    expect(error.stack).toMatch(/^StageExecutionError: Stage "broken" failed: boom\n/);
    expect(new core.TimeoutError("s", 5).stack).toMatch(/^TimeoutError: /);
    expect(new core.PipelineError("p").stack).toMatch(/^PipelineError: p\n/);
  });
});

describe("in the built files", () => {
  let workspace = "";

  beforeAll(() => {
    workspace = mkdtempSync(join(tmpdir(), "async-pipeline-names-"));
    execFileSync(
      "npx",
      ["--no-install", "tsup", "--no-dts", "--out-dir", join(workspace, "dist")],
      {
        cwd: root,
        stdio: "pipe",
      },
    );
    // The opentelemetry entry point imports its peer dependency: resolve it from the project.
    symlinkSync(join(root, "node_modules"), join(workspace, "node_modules"), "dir");
  }, 120_000);

  afterAll(() => {
    if (workspace !== "") rmSync(workspace, { recursive: true, force: true });
  });

  /** What a child process prints as JSON: the names, and how a pipeline and an error show. */
  interface Report {
    names: Record<string, [string, string][]>;
    pipeline: string;
    stack: string;
  }

  const probe = (load: (file: string) => string): string => `
    const util = require("node:util");
    const loaded = {};
    ${entryPoints.map((entry) => `loaded[${JSON.stringify(entry)}] = ${load(entry)};`).join("\n")}
    const names = {};
    for (const [entry, namespace] of Object.entries(loaded)) {
      names[entry] = Object.entries(namespace)
        .filter(([, value]) => typeof value === "function")
        .map(([key, value]) => [key, value.name]);
    }
    const { Pipeline, Stage } = loaded.index;
    const pipeline = new Pipeline([new Stage("broken", () => { throw new Error("boom"); })]);
    pipeline.run(1).catch((error) => {
      console.log(JSON.stringify({ names, pipeline: util.inspect(pipeline), stack: error.stack }));
    });
  `;

  function report(format: "esm" | "cjs"): Report {
    const script =
      format === "cjs"
        ? probe((entry) => `require("./dist/${entry}.cjs")`)
        : `import { createRequire } from "node:module";
           const require = createRequire(import.meta.url);
           ${probe((entry) => `await import("./dist/${entry}.js")`)}`;
    const args = format === "cjs" ? ["-e", script] : ["--input-type=module", "-e", script];
    const result = spawnSync(process.execPath, args, { cwd: workspace, encoding: "utf8" });
    expect(result.stderr).toBe("");
    return JSON.parse(result.stdout) as Report;
  }

  it.each(["esm", "cjs"] as const)(
    "the %s build names every exported function and class as it is exported",
    (format) => {
      const { names, pipeline, stack } = report(format);
      for (const entry of entryPoints) {
        expect(names[entry]!.length, entry).toBeGreaterThan(0);
        for (const [exported, name] of names[entry]!) expect(name, exported).toBe(exported);
      }
      expect(names.index!.map(([exported]) => exported)).toEqual(
        expect.arrayContaining([
          "Pipeline",
          "PipelineError",
          "StageExecutionError",
          "TimeoutError",
        ]),
      );
      expect(pipeline).toBe("Pipeline {}");
      expect(stack).toMatch(/^StageExecutionError: Stage "broken" failed: boom\n/);
    },
  );
});
