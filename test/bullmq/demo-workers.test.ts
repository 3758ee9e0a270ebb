/**
 * `npm run demo -- --workers 3` and a terminal's Ctrl-C, which sends SIGINT to the whole
 * foreground process group: the demo (started here in a process group of its own, as a shell
 * would) must stop everything it started (its redis-server and its worker processes) and exit
 * with 130, on one SIGINT.
 */
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { until } from "./support.js";

const root = fileURLToPath(new URL("../..", import.meta.url));

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe("the distributed demo", () => {
  it("stops its workers and its redis-server on one Ctrl-C to its process group, and exits with 130", async () => {
    const env: NodeJS.ProcessEnv = { ...process.env, NODE_OPTIONS: "" };
    delete env.REDIS_URL; // the demo starts a redis-server of its own
    const demo = spawn(process.execPath, ["--import", "tsx", "demo/main.ts", "--workers", "3"], {
      cwd: root,
      stdio: ["ignore", "pipe", "pipe"],
      env,
      detached: true,
    });
    let stdout = "";
    let stderr = "";
    demo.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
    demo.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
    const exited = new Promise<number | null>((resolve) => demo.once("exit", resolve));
    const pids: number[] = [];
    try {
      await until(() => /^progress: \d+\/300 done/m.test(stdout), 90_000);
      pids.push(
        Number(/redis-server at \S+ \(pid (\d+)\)/.exec(stdout)?.[1]),
        ...(/^worker pids: ([\d, ]+)$/m.exec(stdout)?.[1] ?? "").split(", ").map(Number),
      );
      expect(pids).toHaveLength(4);
      expect(pids.every(alive)).toBe(true);
      // What a terminal does on Ctrl-C.
      process.kill(-(demo.pid as number), "SIGINT");
      const interrupted = performance.now();
      expect(await exited).toBe(130);
      expect(performance.now() - interrupted).toBeLessThan(30_000);
    } finally {
      if (demo.exitCode === null) process.kill(-(demo.pid as number), "SIGKILL");
    }
    expect(stdout).toMatch(/^interrupted after [\d.]+ s: stopped cleanly$/m);
    expect(stderr).toBe("");
    await until(() => !pids.some(alive), 10_000);
    // "in flight": what the workers run, never more than their 3 × 6 slots.
    for (const [, count] of stdout.matchAll(/, (\d+) in flight,/g)) {
      expect(Number(count)).toBeLessThanOrEqual(18);
    }
  }, 150_000);
});
