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
  sourcemap: true,
  clean: true,
  target: "es2022",
  platform: "neutral",
  splitting: true,
  treeshake: true,
});
