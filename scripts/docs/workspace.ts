// A scratch folder in which documentation snippets see the package as a user's project does:
// `node_modules/async-pipeline` is the repository itself (so its `exports` map leads to `dist/`),
// and every other dependency is the repository's own.

import { mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/**
 * A fresh temporary folder holding an ES-module `package.json` (`"type": "module"`, as the
 * README tells users to set) and a `node_modules` that links the repository at `root` as
 * `async-pipeline` beside the repository's dependencies. The caller removes it
 * ({@link removeSnippetWorkspace}).
 */
export function makeSnippetWorkspace(root: string): string {
  const dir = mkdtempSync(join(tmpdir(), "async-pipeline-snippets-"));
  try {
    const modules = join(dir, "node_modules");
    mkdirSync(modules);
    for (const entry of readdirSync(join(root, "node_modules"))) {
      if (entry.startsWith(".") || entry === "async-pipeline") continue;
      symlinkSync(join(root, "node_modules", entry), join(modules, entry), "dir");
    }
    symlinkSync(root, join(modules, "async-pipeline"), "dir");
    writeFileSync(join(dir, "package.json"), JSON.stringify({ type: "module", private: true }));
    return dir;
  } catch (error) {
    removeSnippetWorkspace(dir);
    throw error;
  }
}

/** Removes a folder made by {@link makeSnippetWorkspace}, links and all (never their targets). */
export function removeSnippetWorkspace(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}
