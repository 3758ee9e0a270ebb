/**
 * `@opentelemetry/api` is an optional peer dependency: the packed package must load without it
 * (core and middlewares, ESM and CommonJS), and only `async-pipeline/opentelemetry` may need it.
 *
 * Builds the package into a temporary folder (never touching `dist/`), packs it, installs the
 * tarball offline into a fresh project without `@opentelemetry/api`, and imports it from child
 * processes.
 */
import { execFileSync, spawnSync } from "node:child_process";
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
let workspace = "";
let consumer = "";

beforeAll(() => {
  workspace = mkdtempSync(join(tmpdir(), "async-pipeline-peer-"));
  const packageDir = join(workspace, "package");
  mkdirSync(packageDir);
  execFileSync("npx", ["--no-install", "tsup", "--out-dir", join(packageDir, "dist")], {
    cwd: root,
    stdio: "pipe",
  });
  for (const file of ["package.json", "README.md", "LICENSE", "CHANGELOG.md"]) {
    if (existsSync(join(root, file))) copyFileSync(join(root, file), join(packageDir, file));
  }
  const packed = JSON.parse(
    execFileSync("npm", ["pack", "--json", "--pack-destination", workspace], {
      cwd: packageDir,
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
    }),
  ) as { filename: string }[];
  const tarball = join(workspace, packed[0]!.filename);

  consumer = join(workspace, "consumer");
  mkdirSync(consumer);
  writeFileSync(
    join(consumer, "package.json"),
    JSON.stringify({ name: "consumer", version: "1.0.0", private: true }),
  );
  execFileSync("npm", ["install", "--no-audit", "--no-fund", "--offline", tarball], {
    cwd: consumer,
    stdio: "pipe",
  });
}, 120_000);

afterAll(() => {
  if (workspace !== "") rmSync(workspace, { recursive: true, force: true });
});

/** Runs a Node script in the consumer project; returns its exit status and output. */
function node(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, args, { cwd: consumer, encoding: "utf8" });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

const commonjs = (script: string) => node(["-e", script]);
const esm = (script: string) => node(["--input-type=module", "-e", script]);

// Each test starts Node processes: seconds on a busy machine, so a wide timeout.
describe("without @opentelemetry/api installed", { timeout: 60_000 }, () => {
  it("installs the package without the peer dependency", () => {
    expect(existsSync(join(consumer, "node_modules", "async-pipeline", "dist"))).toBe(true);
    expect(existsSync(join(consumer, "node_modules", "@opentelemetry", "api"))).toBe(false);
  });

  it("loads the core and the middlewares with require", () => {
    const result = commonjs(`
      const { Pipeline, Stage } = require("async-pipeline");
      const { timingMiddleware } = require("async-pipeline/middlewares");
      const pipeline = new Pipeline([new Stage("double", (n) => n * 2)], {
        middlewares: [timingMiddleware()],
      });
      pipeline.run(21).then((value) => console.log(value));
    `);
    expect(result.stderr).toBe("");
    expect(result.stdout.trim()).toBe("42");
    expect(result.status).toBe(0);
  });

  it("loads the core and the middlewares with import", () => {
    const result = esm(`
      const { Pipeline, Stage } = await import("async-pipeline");
      const { timingMiddleware } = await import("async-pipeline/middlewares");
      const pipeline = new Pipeline([new Stage("double", (n) => n * 2)], {
        middlewares: [timingMiddleware()],
      });
      console.log(await pipeline.run(21));
    `);
    expect(result.stderr).toBe("");
    expect(result.stdout.trim()).toBe("42");
    expect(result.status).toBe(0);
  });

  it("fails to require async-pipeline/opentelemetry with a module-not-found error for the API", () => {
    const result = commonjs(`
      try {
        require("async-pipeline/opentelemetry");
        console.log("loaded");
      } catch (error) {
        console.log(JSON.stringify({ code: error.code, message: error.message }));
      }
    `);
    const outcome = JSON.parse(result.stdout) as { code: string; message: string };
    expect(outcome.code).toBe("MODULE_NOT_FOUND");
    expect(outcome.message).toContain("Cannot find module '@opentelemetry/api'");
  });

  it("fails to import async-pipeline/opentelemetry with a module-not-found error for the API", () => {
    const result = esm(`
      try {
        await import("async-pipeline/opentelemetry");
        console.log("loaded");
      } catch (error) {
        console.log(JSON.stringify({ code: error.code, message: error.message }));
      }
    `);
    const outcome = JSON.parse(result.stdout) as { code: string; message: string };
    expect(outcome.code).toBe("ERR_MODULE_NOT_FOUND");
    expect(outcome.message).toContain("Cannot find package '@opentelemetry/api'");
  });
});

describe("with @opentelemetry/api installed", { timeout: 60_000 }, () => {
  // Runs last: links the repository's copy of the API into the consumer project.
  it("loads async-pipeline/opentelemetry in both formats", () => {
    const scope = join(consumer, "node_modules", "@opentelemetry");
    mkdirSync(scope, { recursive: true });
    symlinkSync(join(root, "node_modules", "@opentelemetry", "api"), join(scope, "api"), "dir");

    const program = (load: string) => `
      ${load}
      const pipeline = new Pipeline([new Stage("double", (n) => n * 2)], {
        middlewares: [openTelemetryMiddleware()],
      });
      tracedRun(pipeline, 21).then((value) => console.log(value, typeof recordRetry));
    `;
    const cjs = commonjs(
      program(`
        const { Pipeline, Stage } = require("async-pipeline");
        const { openTelemetryMiddleware, recordRetry, tracedRun } = require("async-pipeline/opentelemetry");
      `),
    );
    expect(cjs.stderr).toBe("");
    expect(cjs.stdout.trim()).toBe("42 function");
    const mjs = esm(
      program(`
        import { Pipeline, Stage } from "async-pipeline";
        import { openTelemetryMiddleware, recordRetry, tracedRun } from "async-pipeline/opentelemetry";
      `),
    );
    expect(mjs.stderr).toBe("");
    expect(mjs.stdout.trim()).toBe("42 function");
  });
});
