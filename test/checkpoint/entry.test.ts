/**
 * The `async-pipeline/checkpoint` entry point as built: its exports carry their public names in
 * both module formats, its errors are `instanceof` across formats and entry points, it keeps
 * `node:` in its imports (Deno needs it), and the core entry point loads no Node module (it
 * still runs in browsers). The build goes to a temporary folder, never `dist/`.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as checkpoint from "../../src/checkpoint/index.js";
import { ROOT } from "./support.js";

describe("in the source", () => {
  it("every function and class exported is named as it is exported", () => {
    const named = Object.entries(checkpoint).filter(([, value]) => typeof value === "function");
    expect(named.map(([key]) => key).sort()).toEqual([
      "CheckpointCorruptError",
      "CheckpointInUseError",
      "CheckpointMismatchError",
      "fileCheckpoint",
      "readCheckpoint",
    ]);
    for (const [key, value] of named) expect((value as () => unknown).name).toBe(key);
  });

  it("each error prints as its class and carries its fields", () => {
    const mismatch = new checkpoint.CheckpointMismatchError("version", "1", undefined);
    expect(mismatch.stack).toMatch(
      /^CheckpointMismatchError: The checkpoint was written by version "1", but this batch runs no version/,
    );
    const corrupt = new checkpoint.CheckpointCorruptError("checksum mismatch", {
      path: "a.ckpt",
      offset: 7,
      record: 1,
    });
    expect(corrupt.message).toBe(
      "Checkpoint a.ckpt is damaged at record 1, byte 7: checksum mismatch",
    );
    expect(new checkpoint.CheckpointCorruptError("bad", {}).message).toBe(
      "The checkpoint is damaged: bad",
    );
    const inUse = new checkpoint.CheckpointInUseError(undefined, undefined, "why");
    expect(inUse.message).toBe("The checkpoint is in use: why");
    expect(inUse.cause).toBeUndefined();
  });
});

describe("in the built files", { timeout: 120_000 }, () => {
  let workspace = "";

  beforeAll(() => {
    workspace = mkdtempSync(join(tmpdir(), "async-pipeline-checkpoint-entry-"));
    execFileSync(
      "npx",
      ["--no-install", "tsup", "--no-dts", "--out-dir", join(workspace, "dist")],
      {
        cwd: ROOT,
        stdio: "pipe",
      },
    );
  }, 120_000);

  afterAll(() => {
    if (workspace !== "") rmSync(workspace, { recursive: true, force: true });
  });

  function node(script: string): unknown {
    const result = spawnSync(process.execPath, ["--input-type=module", "-e", script], {
      cwd: workspace,
      encoding: "utf8",
    });
    expect(result.stderr).toBe("");
    return JSON.parse(result.stdout) as unknown;
  }

  it("names every export in both formats, and errors are instanceof across formats and entry points", () => {
    const report = node(`
      import { createRequire } from "node:module";
      const require = createRequire(import.meta.url);
      const esm = await import("./dist/checkpoint.js");
      const cjs = require("./dist/checkpoint.cjs");
      const core = require("./dist/index.cjs");
      const coreEsm = await import("./dist/index.js");
      const names = (namespace) => Object.entries(namespace)
        .filter(([, value]) => typeof value === "function")
        .map(([key, value]) => [key, value.name]);
      const errors = [
        [new esm.CheckpointMismatchError("stages", [], []), "CheckpointMismatchError"],
        [new esm.CheckpointCorruptError("x", {}), "CheckpointCorruptError"],
        [new cjs.CheckpointInUseError(undefined, undefined, "x"), "CheckpointInUseError"],
      ];
      const crossed = errors.map(([error, name]) => [
        error instanceof esm[name],
        error instanceof cjs[name],
        error instanceof core.PipelineError,
        error instanceof coreEsm.PipelineError,
        error instanceof esm.CheckpointCorruptError === (name === "CheckpointCorruptError"),
        error.stack.startsWith(name + ":"),
      ]);
      console.log(JSON.stringify({ esm: names(esm), cjs: names(cjs), crossed }));
    `) as { esm: [string, string][]; cjs: [string, string][]; crossed: boolean[][] };
    for (const names of [report.esm, report.cjs]) {
      expect(names.map(([key]) => key).sort()).toEqual([
        "CheckpointCorruptError",
        "CheckpointInUseError",
        "CheckpointMismatchError",
        "fileCheckpoint",
        "readCheckpoint",
      ]);
      for (const [key, name] of names) expect(name).toBe(key);
    }
    expect(report.crossed).toEqual(Array(3).fill(Array(6).fill(true)));
  });

  it("imports Node's modules with the node: prefix, and the core entry point imports none", () => {
    const source = readFileSync(join(workspace, "dist", "checkpoint.js"), "utf8");
    expect(source).toMatch(/from ["']node:fs["']/);
    expect(source).not.toMatch(/from ["'](fs|path|os|process)["']/);
    // Every module the core entry point loads, followed through its chunks.
    const seen = new Set<string>();
    const queue = ["index.js"];
    const imported: string[] = [];
    while (queue.length > 0) {
      const file = queue.pop()!;
      if (seen.has(file)) continue;
      seen.add(file);
      const code = readFileSync(join(workspace, "dist", file), "utf8");
      for (const [, specifier] of code.matchAll(/^(?:import|export)\b[^;]*?["']([^"']+)["'];$/gm)) {
        if (specifier!.startsWith("./")) queue.push(specifier!.slice(2));
        else imported.push(specifier!);
      }
    }
    expect(seen.size).toBeGreaterThan(1);
    expect(imported).toEqual([]);
  });
});
