import { defineConfig } from "tsup";

export default defineConfig({
  entry: {
    index: "src/index.ts",
    middlewares: "src/middlewares/index.ts",
    opentelemetry: "src/opentelemetry/index.ts",
    bullmq: "src/bullmq/index.ts",
    checkpoint: "src/checkpoint/index.ts",
  },
  format: ["esm", "cjs"],
  dts: true,
  sourcemap: true,
  clean: true,
  target: "es2022",
  platform: "neutral",
  splitting: true,
  treeshake: true,
  // Keep `node:fs` as written (Deno resolves Node's built-in modules by the `node:` prefix
  // only), and out of the bundle: only the checkpoint entry point imports Node's modules.
  removeNodeProtocol: false,
  external: [/^node:/],
});
