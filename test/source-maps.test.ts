/**
 * The package ships `dist/` only, and its source maps name `../src/*.ts`: each map must carry
 * those sources itself (`sourcesContent`), so that a debugger or `node --enable-source-maps`
 * shows the TypeScript. Checked on the package as a user installs it (built into a temporary
 * folder, packed, installed: never touching `dist/`).
 */
import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { join, resolve, sep } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { installPackedPackage, root, type Consumer } from "./support/packed.js";

interface SourceMap {
  sources: string[];
  sourcesContent?: (string | null)[];
}

let consumer: Consumer;
let dist: string;

beforeAll(() => {
  consumer = installPackedPackage();
  dist = join(consumer.dir, "node_modules", "async-pipeline", "dist");
}, 120_000);

afterAll(() => {
  consumer.remove();
});

describe("the source maps of the installed package", { timeout: 60_000 }, () => {
  it("come with every JavaScript file, and each carries every source it names", () => {
    const files = readdirSync(dist);
    const scripts = files.filter((file) => /\.(c?js)$/.test(file));
    expect(scripts.length).toBeGreaterThan(0);
    for (const script of scripts) expect(files, script).toContain(`${script}.map`);
    for (const file of files.filter((name) => name.endsWith(".map"))) {
      const map = JSON.parse(readFileSync(join(dist, file), "utf8")) as SourceMap;
      // A map of re-exports only names no source (and then needs no content).
      expect(map.sourcesContent ?? [], file).toHaveLength(map.sources.length);
      map.sources.forEach((source, index) => {
        // The very text of the repository's file, as the map names it relative to the folder
        // it was built into (a publish builds into dist/, where that is ../src/…).
        const path = resolve(consumer.built, source);
        expect(path.startsWith(join(root, "src") + sep), `${file}: ${source}`).toBe(true);
        const original = readFileSync(path, "utf8");
        expect(map.sourcesContent?.[index], `${file}: ${source}`).toBe(original);
      });
    }
  });

  it("lets node --enable-source-maps name the TypeScript line that threw", () => {
    const result = spawnSync(
      process.execPath,
      [
        "--enable-source-maps",
        "--input-type=module",
        "-e",
        `import { Stage } from "async-pipeline";
         try { new Stage("", (n) => n); } catch (error) { console.log(error.stack); }`,
      ],
      { cwd: consumer.dir, encoding: "utf8" },
    );
    expect(result.stderr).toBe("");
    expect(result.stdout).toMatch(/^RangeError: name must not be empty$/m);
    expect(result.stdout).toMatch(/src\/internal\/validate\.ts:\d+:\d+\)?$/m);
  });
});
