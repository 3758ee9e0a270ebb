import js from "@eslint/js";
import { defineConfig } from "eslint/config";
import tseslint from "typescript-eslint";

export default defineConfig(
  { ignores: ["dist/", "coverage/", "docs/api/", "node_modules/"] },
  js.configs.recommended,
  tseslint.configs.strictTypeChecked,
  tseslint.configs.stylisticTypeChecked,
  {
    languageOptions: {
      parserOptions: {
        projectService: { allowDefaultProject: ["eslint.config.js"] },
        tsconfigRootDir: import.meta.dirname,
      },
    },
  },
  {
    rules: {
      // Conflicts with no-non-null-assertion from the strict set: we prefer explicit casts.
      "@typescript-eslint/non-nullable-type-assertion-style": "off",
      // The library passes on whatever a handler threw or a signal aborted with, Error or not.
      "@typescript-eslint/prefer-promise-reject-errors": "off",
    },
  },
  {
    files: ["test/**/*.ts", "bench/**/*.ts", "examples/**/*.ts"],
    rules: {
      "@typescript-eslint/no-non-null-assertion": "off",
      "@typescript-eslint/require-await": "off",
      "@typescript-eslint/only-throw-error": "off",
      "@typescript-eslint/prefer-promise-reject-errors": "off",
      "@typescript-eslint/no-empty-function": "off",
      "@typescript-eslint/restrict-template-expressions": "off",
      "@typescript-eslint/no-unnecessary-condition": "off",
      "@typescript-eslint/no-floating-promises": ["error", { ignoreVoid: true }],
    },
  },
  {
    // The runtime smoke suite is plain JavaScript that Node, Bun, Deno and a browser run as it is:
    // linted without type information, it may use only the web-standard globals all of them have
    // (cli.js declares the two runtime-specific ones it needs).
    files: ["test/runtimes/*.js"],
    extends: [tseslint.configs.disableTypeChecked],
    languageOptions: {
      globals: {
        AbortController: "readonly",
        AbortSignal: "readonly",
        URL: "readonly",
        clearTimeout: "readonly",
        console: "readonly",
        setTimeout: "readonly",
      },
    },
  },
);
