// Which source files have nothing for coverage to measure: files of types only, which compile to
// nothing, and barrels of re-exports (`export { Stage } from "./stage.js"`), which compile to
// declarations without a statement. Coverage would list each at 0%, and vitest.config.ts leaves
// them out. Found by compiling each file, so a new one needs no entry anywhere.

import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import ts from "typescript";

/** The `.ts` files under `dir` (joined to `dir` as given) whose compiled code has no statement. */
export function uncoverableFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: "utf8" })
    .filter((name) => name.endsWith(".ts") && !name.endsWith(".d.ts"))
    .map((name) => join(dir, name).replaceAll("\\", "/"))
    .filter((file) => onlyDeclarations(readFileSync(file, "utf8")))
    .sort();
}

function onlyDeclarations(source: string): boolean {
  const { outputText } = ts.transpileModule(source, {
    compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
  });
  const compiled = ts.createSourceFile("compiled.js", outputText, ts.ScriptTarget.ES2022);
  return compiled.statements.every(
    (statement) => ts.isExportDeclaration(statement) || ts.isImportDeclaration(statement),
  );
}
