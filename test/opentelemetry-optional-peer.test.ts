/**
 * `@opentelemetry/api` is an optional peer dependency: the packed package must load without it
 * (core and middlewares, ESM and CommonJS), and only `async-pipeline/opentelemetry` may need it.
 *
 * Builds the package into a temporary folder (never touching `dist/`), packs it, installs the
 * tarball offline into a fresh project without `@opentelemetry/api`, and imports it from child
 * processes.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { installPackedPackage, type Consumer } from "./support/packed.js";

let consumer: Consumer;

beforeAll(() => {
  consumer = installPackedPackage();
}, 120_000);

afterAll(() => {
  consumer.remove();
});

const commonjs = (script: string) => consumer.commonjs(script);
const esm = (script: string) => consumer.esm(script);

// Each test starts Node processes: seconds on a busy machine, so a wide timeout.
describe("without @opentelemetry/api installed", { timeout: 60_000 }, () => {
  it("installs the package without the peer dependency", () => {
    expect(existsSync(join(consumer.dir, "node_modules", "async-pipeline", "dist"))).toBe(true);
    expect(existsSync(join(consumer.dir, "node_modules", "@opentelemetry", "api"))).toBe(false);
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
    consumer.link("@opentelemetry/api");

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
