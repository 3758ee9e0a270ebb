/**
 * The library under test: the BUILT package, the file that its `"exports"` map names for
 * `import` (`dist/index.js`), so that the benchmark measures what users install, not the
 * TypeScript sources.
 *
 * The file is found by reading package.json, not by `import("async-pipeline")`: tsx applies
 * tsconfig.json's `paths`, which map "async-pipeline" to `src/index.ts` for the examples, and
 * the bench would then measure the sources as tsx compiles them on the fly. The import is
 * dynamic, so the type checker does not resolve it (CI type-checks before it builds); the
 * types come from the sources, which `dist/index.d.ts` is generated from.
 *
 * `BENCH_LIBRARY=/abs/path/to/dist/index.js` measures another build instead (a scratch copy
 * with a proposed fix, say).
 */
import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath, pathToFileURL } from "node:url";
import type * as AsyncPipeline from "../src/index.js";

interface PackageJson {
  readonly exports: { readonly ".": { readonly import: { readonly default: string } } };
}

function builtEntry(): URL {
  const override = process.env.BENCH_LIBRARY;
  if (override !== undefined && override !== "") return pathToFileURL(override);
  const root = new URL("../", import.meta.url);
  const pkg = JSON.parse(readFileSync(new URL("package.json", root), "utf8")) as PackageJson;
  const entry = new URL(pkg.exports["."].import.default, root);
  if (!existsSync(entry)) {
    throw new Error(`${fileURLToPath(entry)} does not exist: run \`npm run build\` first`);
  }
  return entry;
}

/** The file the benchmark loaded, for the report header. */
export const libraryFile = fileURLToPath(builtEntry());

if (!/[\\/]dist[\\/]/.test(libraryFile) && process.env.BENCH_LIBRARY === undefined) {
  throw new Error(`expected the built package, got ${libraryFile}`);
}

export const library = (await import(pathToFileURL(libraryFile).href)) as typeof AsyncPipeline;
export const { Pipeline, Stage } = library;

/**
 * The built `async-pipeline/bullmq` entry point (`dist/bullmq.js`), next to the core's file, for
 * the BullMQ case. Loaded on first use, so the other cases never load bullmq or ioredis.
 */
export async function loadBullmq(): Promise<typeof import("../src/bullmq/index.js")> {
  const file = libraryFile.replace(/index\.js$/, "bullmq.js");
  return (await import(pathToFileURL(file).href)) as typeof import("../src/bullmq/index.js");
}

/**
 * The built `async-pipeline/checkpoint` entry point (`dist/checkpoint.js`), next to the core's
 * file, for the checkpoint case and the checkpointed memory child. Loaded on first use.
 */
export async function loadCheckpoint(): Promise<typeof import("../src/checkpoint/index.js")> {
  const file = libraryFile.replace(/index\.js$/, "checkpoint.js");
  return (await import(pathToFileURL(file).href)) as typeof import("../src/checkpoint/index.js");
}
