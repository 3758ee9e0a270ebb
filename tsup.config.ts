import { defineConfig } from "tsup";

export default defineConfig({
  entry: {
    index: "src/index.ts",
    middlewares: "src/middlewares/index.ts",
    opentelemetry: "src/opentelemetry/index.ts",
    bullmq: "src/bullmq/index.ts",
  },
  format: ["esm", "cjs"],
  dts: true,
  // External maps that carry the sources themselves (`sourcesContent`): the package ships
  // dist/ only, so a debugger or `node --enable-source-maps` that follows a map to
  // `../src/stage.ts` finds the TypeScript in the map, not on disk. esbuild's default, set here
  // so that no change of default can drop it (test/source-maps.test.ts checks the packed maps).
  sourcemap: true,
  esbuildOptions(options) {
    options.sourcesContent = true;
  },
  clean: true,
  target: "es2022",
  platform: "neutral",
  splitting: true,
  treeshake: true,
});
