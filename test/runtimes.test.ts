/**
 * The package runs where the README says it does: the built ESM package (`dist/index.js` and
 * `dist/middlewares.js`) passes one smoke suite, `test/runtimes/smoke.js`, in Node, Bun, Deno
 * and headless Chromium.
 *
 * The package is built into a temporary folder (never touching `dist/`). Node, Bun and Deno
 * (the pinned `bun` and `deno` dev dependencies, whose binaries come inside their npm packages)
 * each run `test/runtimes/cli.js` as a child process, which prints the results as JSON. The
 * browser is Debian's `/usr/bin/chromium` driven by `playwright-core`, with a fresh profile, on
 * a page served from 127.0.0.1 that imports the build and runs the same suite. When Chromium is
 * missing it is installed with apt-get (as root), or the test fails saying how to get it.
 *
 * The checkpoint entry point (`dist/checkpoint.js`) needs a file system: its own suite,
 * `test/runtimes/checkpoint.js` (the store, and a checkpointed `map` of `dist/index.js` that is
 * interrupted and resumed), runs in Node, Bun and Deno (Deno with read and write access to
 * the build and a folder of its own only, the host name, and `--allow-run` for the lock's check
 * that a holder is alive).
 */
import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { dirname, extname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { chromium } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { checkpointCheckNames } from "./runtimes/checkpoint.js";
import { checkNames, type SmokeResult } from "./runtimes/smoke.js";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const smokeDir = join(root, "test", "runtimes");
const bin = (name: string) => join(root, "node_modules", ".bin", name);
const CHROMIUM = "/usr/bin/chromium";
const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

let workspace = "";
let dist = "";

beforeAll(() => {
  workspace = mkdtempSync(join(tmpdir(), "async-pipeline-runtimes-"));
  dist = join(workspace, "dist");
  execFileSync("npx", ["--no-install", "tsup", "--out-dir", dist], { cwd: root, stdio: "pipe" });
}, 240_000);

afterAll(() => {
  if (workspace !== "") rmSync(workspace, { recursive: true, force: true });
});

/** Fails, listing each failed check with its error, unless every check ran and passed. */
function expectAllPassed(results: SmokeResult[], names: readonly string[] = checkNames): void {
  const failures = results.filter((result) => !result.ok);
  expect(failures.map((result) => `${result.name}: ${result.error ?? ""}`)).toEqual([]);
  expect(results.map((result) => result.name)).toEqual(names);
}

interface Exit {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `command` with `args` to its end (killed after `timeout` ms); collects its output. */
function run(command: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<Exit> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(command, args, {
      cwd: workspace,
      env: { ...process.env, NO_COLOR: "1", ...env },
      stdio: ["ignore", "pipe", "pipe"],
      timeout: 180_000,
    });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
    child.on("error", reject);
    child.on("close", (code) => {
      resolvePromise({ code, stdout, stderr });
    });
  });
}

/** Runs the smoke suite's command-line runner; returns its results after checking the exit. */
async function smokeIn(
  command: string,
  args: string[],
  env?: NodeJS.ProcessEnv,
  suite: { cli: string; extra: string[]; names: readonly string[] } = {
    cli: "cli.js",
    extra: [],
    names: checkNames,
  },
) {
  if (!existsSync(command)) {
    throw new Error(`${command} is missing: run \`npm ci\` to install the pinned dev dependencies`);
  }
  const exit = await run(
    command,
    [...args, join(smokeDir, suite.cli), `${pathToFileURL(dist).href}/`, ...suite.extra],
    env,
  );
  const lastLine = exit.stdout.trim().split("\n").at(-1) ?? "";
  let results: SmokeResult[];
  try {
    results = JSON.parse(lastLine) as SmokeResult[];
  } catch {
    throw new Error(`no results (exit ${String(exit.code)}):\n${exit.stdout}\n${exit.stderr}`);
  }
  expectAllPassed(results, suite.names);
  expect(exit.code).toBe(0);
}

describe("the built ESM package passes the smoke suite", () => {
  it("in Node", async () => {
    await smokeIn(process.execPath, []);
  }, 200_000);

  it("in Bun", async () => {
    await smokeIn(bin("bun"), ["run", "--no-install"], { DO_NOT_TRACK: "1" });
  }, 200_000);

  it("in Deno, with read access to the build only", async () => {
    await smokeIn(bin("deno"), ["run", "--no-config", "--no-lock", `--allow-read=${dist}`], {
      DENO_NO_UPDATE_CHECK: "1",
      DENO_DIR: join(workspace, "deno-cache"),
    });
  }, 200_000);

  it("in headless Chromium, served from 127.0.0.1", async () => {
    ensureChromium();
    const server = await serve();
    const origin = `http://127.0.0.1:${String((server.address() as AddressInfo).port)}`;
    const profile = join(workspace, "chromium-profile");
    mkdirSync(profile);
    const context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_ARGS,
      timeout: 120_000,
    });
    try {
      const page = context.pages()[0] ?? (await context.newPage());
      const requested: string[] = [];
      const problems: string[] = [];
      page.on("request", (request) => requested.push(request.url()));
      page.on("pageerror", (error) => problems.push(error.stack ?? error.message));
      page.on("console", (message) => {
        if (message.type() === "error") problems.push(message.text());
      });
      await page.goto(`${origin}/`, { timeout: 120_000 });
      const handle = await page
        .waitForFunction(() => (window as PageWindow).__smoke, null, { timeout: 240_000 })
        .catch((error: unknown) => {
          throw new Error(`the page produced no results: ${problems.join("\n")}`, {
            cause: error,
          });
        });
      const outcome = (await handle.jsonValue()) as PageOutcome;
      expect(outcome.failure).toBeUndefined();
      expectAllPassed(outcome.results ?? []);
      expect(requested.filter((url) => !url.startsWith(`${origin}/`))).toEqual([]);
    } finally {
      await context.close();
      await new Promise((done) => server.close(done));
      rmSync(profile, { recursive: true, force: true });
    }
  }, 400_000);
});

describe("the built checkpoint entry point passes its smoke suite", () => {
  /** A folder of its own for each runtime's checkpoints. */
  function suite(runtime: string) {
    const folder = join(workspace, `checkpoints-${runtime}`);
    mkdirSync(folder);
    return { cli: "checkpoint-cli.js", extra: [folder], names: checkpointCheckNames, folder };
  }

  it("in Node", async () => {
    await smokeIn(process.execPath, [], {}, suite("node"));
  }, 200_000);

  it("in Bun", async () => {
    await smokeIn(bin("bun"), ["run", "--no-install"], { DO_NOT_TRACK: "1" }, suite("bun"));
  }, 200_000);

  it("in Deno, with access to the build and its folder only", async () => {
    const checkpoints = suite("deno");
    await smokeIn(
      bin("deno"),
      [
        "run",
        "--no-config",
        "--no-lock",
        `--allow-read=${dist},${checkpoints.folder}`,
        `--allow-write=${checkpoints.folder}`,
        "--allow-sys=hostname",
        "--allow-run",
      ],
      { DENO_NO_UPDATE_CHECK: "1", DENO_DIR: join(workspace, "deno-cache") },
      checkpoints,
    );
  }, 200_000);
});

interface PageOutcome {
  results?: SmokeResult[];
  failure?: string;
}

type PageWindow = Window & { __smoke?: PageOutcome };

/** Makes sure Debian's Chromium is there: installs it as root, or says how to get it. */
function ensureChromium(): void {
  if (existsSync(CHROMIUM)) return;
  if (process.getuid?.() !== 0) {
    throw new Error(
      `${CHROMIUM} is missing: install Debian's chromium package (as root: apt-get update && apt-get install -y chromium) to run the browser smoke test`,
    );
  }
  const options = {
    stdio: "pipe" as const,
    env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" },
    timeout: 600_000,
  };
  execFileSync("apt-get", ["-o", "DPkg::Lock::Timeout=300", "update"], options);
  execFileSync("apt-get", ["-o", "DPkg::Lock::Timeout=300", "install", "-y", "chromium"], options);
  if (!existsSync(CHROMIUM))
    throw new Error(`apt-get installed chromium, but ${CHROMIUM} is missing`);
}

/** The page: imports the build and the suite, runs it, and leaves the outcome on `window`. */
const PAGE = `<!doctype html>
<meta charset="utf-8">
<title>async-pipeline smoke suite</title>
<script type="module">
  try {
    const [{ runSmoke }, core, middlewares] = await Promise.all([
      import("/smoke.js"),
      import("/dist/index.js"),
      import("/dist/middlewares.js"),
    ]);
    window.__smoke = { results: await runSmoke(core, middlewares) };
  } catch (error) {
    window.__smoke = { failure: String(error?.stack ?? error) };
  }
</script>
`;

const TYPES: Record<string, string> = {
  ".js": "text/javascript; charset=utf-8",
  ".map": "application/json; charset=utf-8",
};

/** Serves the page, the suite and the build's files (nothing else) on a free port of 127.0.0.1. */
async function serve(): Promise<Server> {
  const files = new Map<string, string>([["/smoke.js", join(smokeDir, "smoke.js")]]);
  for (const name of readdirSync(dist)) files.set(`/dist/${name}`, join(dist, name));
  const server = createServer((request, response) => {
    const path = new URL(request.url ?? "/", "http://127.0.0.1").pathname;
    const file = files.get(path);
    if (path === "/") {
      response.writeHead(200, { "content-type": "text/html; charset=utf-8" }).end(PAGE);
    } else if (file !== undefined && TYPES[extname(file)] !== undefined) {
      response
        .writeHead(200, { "content-type": TYPES[extname(file)], "cache-control": "no-store" })
        .end(readFileSync(file));
    } else {
      response.writeHead(404).end();
    }
  });
  await new Promise<void>((listening) => server.listen(0, "127.0.0.1", listening));
  return server;
}
