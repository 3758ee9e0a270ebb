/**
 * `bullmq` and `ioredis` are optional peer dependencies: the packed package installed without
 * them loads its other entry points, and `async-pipeline/bullmq` fails with an error that names
 * the missing package; with both linked in, it runs a real batch in both module formats.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { installPackedPackage, type Consumer } from "../support/packed.js";
import { connection, queueName } from "./support.js";

let consumer: Consumer;

beforeAll(() => {
  consumer = installPackedPackage();
}, 120_000);

afterAll(() => {
  consumer.remove();
});

/** What loading the entry point threw: `{ code, message }`, or `"loaded"`. */
const tryRequire = `
  try {
    require("async-pipeline/bullmq");
    console.log(JSON.stringify("loaded"));
  } catch (error) {
    console.log(JSON.stringify({ code: error.code, message: error.message }));
  }`;
const tryImport = `
  try {
    await import("async-pipeline/bullmq");
    console.log(JSON.stringify("loaded"));
  } catch (error) {
    console.log(JSON.stringify({ code: error.code, message: error.message }));
  }`;

/** Loading the entry point fails, in both module formats, with an error naming `name`. */
function expectMissing(name: string): void {
  expect(JSON.parse(consumer.commonjs(tryRequire).stdout)).toEqual({
    code: "MODULE_NOT_FOUND",
    message: expect.stringContaining(`Cannot find module '${name}'`) as string,
  });
  expect(JSON.parse(consumer.esm(tryImport).stdout)).toEqual({
    code: "ERR_MODULE_NOT_FOUND",
    message: expect.stringContaining(`Cannot find package '${name}'`) as string,
  });
}

describe("without bullmq and ioredis installed", { timeout: 30_000 }, () => {
  it("installs the package without them and loads the core", () => {
    expect(existsSync(join(consumer.dir, "node_modules", "bullmq"))).toBe(false);
    expect(existsSync(join(consumer.dir, "node_modules", "ioredis"))).toBe(false);
    const result = consumer.commonjs(`
      const { Pipeline, Stage } = require("async-pipeline");
      new Pipeline([new Stage("double", (n) => n * 2)]).run(21).then((value) => console.log(value));
    `);
    expect(result.stderr).toBe("");
    expect(result.stdout.trim()).toBe("42");
  });

  it("fails to load async-pipeline/bullmq with an error naming bullmq", () => {
    expectMissing("bullmq");
  });

  // The tests below link packages in: they run last, in this order.
  it("with bullmq alone, fails with an error naming ioredis", () => {
    consumer.link("bullmq");
    expectMissing("ioredis");
  });

  it("with both, runs a batch through Redis in both module formats", () => {
    consumer.link("ioredis");
    const program = (load: string) => `
      ${load}
      const pipeline = new Pipeline([new Stage("double", (n) => n * 2)]);
      const options = { queueName: ${JSON.stringify(queueName())}, connection: ${JSON.stringify(connection())} };
      const worker = new PipelineWorker(pipeline, { ...options, concurrency: 2 });
      const queue = new PipelineQueue(pipeline, options);
      queue.map([1, 2, 3]).then(async (outputs) => {
        console.log(JSON.stringify(outputs));
        await queue.close();
        await worker.close();
      });
    `;
    const cjs = consumer.commonjs(
      program(`
        const { Pipeline, Stage } = require("async-pipeline");
        const { PipelineQueue, PipelineWorker } = require("async-pipeline/bullmq");
      `),
    );
    expect(cjs.stderr).toBe("");
    expect(cjs.stdout.trim()).toBe("[2,4,6]");
    const mjs = consumer.esm(
      program(`
        import { Pipeline, Stage } from "async-pipeline";
        import { PipelineQueue, PipelineWorker } from "async-pipeline/bullmq";
      `),
    );
    expect(mjs.stderr).toBe("");
    expect(mjs.stdout.trim()).toBe("[2,4,6]");
  });
});
