// Which source files hold types only. They compile to nothing, so coverage has nothing to
// measure in them and would list them at 0%; vitest.config.ts leaves them out. Found by
// compiling each file, so a new file of types needs no entry anywhere.

import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import ts from "typescript";

/** The `.ts` files under `dir` (relative to the working directory, as given) that emit no code. */
export function typeOnlyFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: "utf8" })
    .filter((name) => name.endsWith(".ts") && !name.endsWith(".d.ts"))
    .map((name) => join(dir, name).replaceAll("\\", "/"))
    .filter((file) => emitsNothing(readFileSync(file, "utf8")))
    .sort();
}

function emitsNothing(source: string): boolean {
  const { outputText } = ts.transpileModule(source, {
    compilerOptions: {
      module: ts.ModuleKind.ESNext,
      target: ts.ScriptTarget.ES2022,
      removeComments: true,
    },
  });
  return outputText
    .split("\n")
    .map((line) => line.trim())
    .every((line) => line === "" || line === "export {};");
}
