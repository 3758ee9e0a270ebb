/**
 * The package as a user installs it: built into a temporary folder (never touching `dist/`),
 * packed with `npm pack`, and installed offline into a fresh consumer project that has none of
 * the optional peer dependencies. Used by the optional-peer tests.
 */
import { execFileSync, spawnSync } from "node:child_process";
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const root = resolve(dirname(fileURLToPath(import.meta.url)), "../..");

export interface Consumer {
  /** The consumer project's folder. */
  readonly dir: string;
  /**
   * The folder the package was built into (its `dist/` before packing): the source maps name
   * their sources relative to it, as a publish from the repository names them relative to
   * `dist/`.
   */
  readonly built: string;
  /** Runs a CommonJS script in the consumer project. */
  commonjs(script: string): NodeResult;
  /** Runs an ES module script in the consumer project. */
  esm(script: string): NodeResult;
  /** Links the repository's copy of a package (`@scope/name` or `name`) into the consumer. */
  link(name: string): void;
  /** Removes the temporary folder. */
  remove(): void;
}

export interface NodeResult {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Builds, packs and installs the package into a new consumer project. */
export function installPackedPackage(): Consumer {
  const workspace = mkdtempSync(join(tmpdir(), "async-pipeline-peer-"));
  const packageDir = join(workspace, "package");
  mkdirSync(packageDir);
  execFileSync("npx", ["--no-install", "tsup", "--out-dir", join(packageDir, "dist")], {
    cwd: root,
    stdio: "pipe",
  });
  for (const file of ["package.json", "README.md", "LICENSE", "CHANGELOG.md"]) {
    if (existsSync(join(root, file))) copyFileSync(join(root, file), join(packageDir, file));
  }
  const packed = JSON.parse(
    execFileSync("npm", ["pack", "--json", "--pack-destination", workspace], {
      cwd: packageDir,
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
    }),
  ) as { filename: string }[];
  const tarball = join(workspace, packed[0]!.filename);

  const dir = join(workspace, "consumer");
  mkdirSync(dir);
  writeFileSync(
    join(dir, "package.json"),
    JSON.stringify({ name: "consumer", version: "1.0.0", private: true }),
  );
  execFileSync("npm", ["install", "--no-audit", "--no-fund", "--offline", tarball], {
    cwd: dir,
    stdio: "pipe",
  });

  const node = (args: string[]): NodeResult => {
    const result = spawnSync(process.execPath, args, { cwd: dir, encoding: "utf8" });
    return { status: result.status, stdout: result.stdout, stderr: result.stderr };
  };
  return {
    dir,
    built: join(packageDir, "dist"),
    commonjs: (script) => node(["-e", script]),
    esm: (script) => node(["--input-type=module", "-e", script]),
    link(name) {
      const target = join(dir, "node_modules", name);
      mkdirSync(dirname(target), { recursive: true });
      symlinkSync(join(root, "node_modules", name), target, "dir");
    },
    remove() {
      rmSync(workspace, { recursive: true, force: true });
    },
  };
}
