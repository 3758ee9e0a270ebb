import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, inject, it } from "vitest";

// The demo (`npm run demo`) runs end to end in a child process, its stdout a pipe (not a
// TTY), as in CI. The records and the server's behaviour derive from the seed alone, but
// whether an answer sent after 100–300 ms beats the 800 ms per-attempt timeout depends on how
// busy the machine is (under load, a late answer becomes a retry, and a 404 may come "after 2
// attempts"): the counts that involve the network are checked as a whole, those that do not
// (parsing, the totals) exactly.

const root = fileURLToPath(new URL("..", import.meta.url));

interface Finished {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/**
 * Starts the demo with `node --import tsx` (what `npm run demo` runs, without npm's and tsx's
 * wrapper processes, so a signal reaches the demo itself). `onOutput` sees stdout as it grows.
 */
function startDemo(
  onOutput: (stdout: string, kill: (signal: NodeJS.Signals) => void) => void = () => {},
  args: readonly string[] = [],
): Promise<Finished> {
  const child = spawn(process.execPath, ["--import", "tsx", "demo/main.ts", ...args], {
    cwd: root,
    stdio: ["ignore", "pipe", "pipe"],
    // The Redis of the test run (test/bullmq/global-setup.ts), for --workers.
    env: { ...process.env, REDIS_URL: inject("redisUrl") },
  });
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
    stdout += chunk;
    onOutput(stdout, (signal) => child.kill(signal));
  });
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
    stderr += chunk;
  });
  return new Promise((resolve, reject) => {
    child.once("error", reject);
    child.once("close", (code, signal) => {
      resolve({ code, signal, stdout, stderr });
    });
  });
}

describe.concurrent("demo", () => {
  it("prices every record and prints the summary", { timeout: 120_000 }, async () => {
    const { code, stdout, stderr } = await startDemo();
    expect(stderr).toBe("");
    expect(code).toBe(0);

    expect(stdout).toMatch(/^async-pipeline demo: 300 records, concurrency 16, seed 42$/m);
    expectSummary(stdout);
  });

  it("stops cleanly on Ctrl-C (SIGINT) and exits with 130", { timeout: 120_000 }, async () => {
    let armed = false;
    const { code, signal, stdout, stderr } = await startDemo((output, kill) => {
      // Once the batch has started, let it run for a second, then interrupt it.
      if (armed || !output.includes("press Ctrl-C to stop early")) return;
      armed = true;
      setTimeout(() => {
        kill("SIGINT");
      }, 1_000);
    });
    expect(armed).toBe(true);
    expect(stderr).toBe("");
    expect(signal).toBeNull(); // it exited by itself, not killed by the signal
    expect(code).toBe(130);

    expect(stdout).toMatch(/^interrupted after \d+\.\d s: stopped cleanly$/m);
    const finished =
      /^finished: (\d+) of 300 records \((\d+) succeeded, (\d+) failed\); the other (\d+) were cancelled or never started$/m.exec(
        stdout,
      );
    expect(finished).not.toBeNull();
    const [done, succeeded, failed, rest] = finished!.slice(1).map(Number) as [
      number,
      number,
      number,
      number,
    ];
    expect(done).toBeLessThan(300);
    expect(succeeded + failed).toBe(done);
    expect(done + rest).toBe(300);
    expect(stdout).toMatch(/^stage durations \(ms, timingMiddleware\):$/m);
    expect(stdout).toContain(
      `output: ${String(succeeded)} priced orders collected before the interruption`,
    );
    expect(stdout).not.toContain("summary:");
  });
});

// After the concurrent ones, one at a time: on a loaded machine, a run through Redis beside
// the in-process run would slow the latter's requests past their 800 ms timeouts.
describe("demo options", () => {
  it(
    "runs the same job through Redis on three worker processes",
    { timeout: 120_000 },
    async () => {
      const { code, stdout, stderr } = await startDemo(undefined, ["--workers", "3"]);
      expect(stderr).toBe("");
      expect(code).toBe(0);
      expect(stdout).toMatch(
        /^async-pipeline demo: 300 records, concurrency 16, seed 42, 3 worker processes through Redis$/m,
      );
      expect(stdout).toMatch(/^workers: 3 processes × concurrency 6, queue demo-\d+-\d+$/m);
      expectSummary(stdout);
    },
  );

  it(
    "with --checkpoint, Ctrl-C then the same command again runs the remaining lines only, to the same summary",
    { timeout: 180_000 },
    async () => {
      const folder = mkdtempSync(join(tmpdir(), "async-pipeline-demo-"));
      const args = ["--checkpoint", join(folder, "demo.ckpt")];
      try {
        let armed = false;
        const first = await startDemo((output, kill) => {
          if (armed || !output.includes("press Ctrl-C to stop early")) return;
          armed = true;
          setTimeout(() => {
            kill("SIGINT");
          }, 1_000);
        }, args);
        expect(first.stderr).toBe("");
        expect(first.code).toBe(130);
        expect(first.stdout).toMatch(/^checkpoint .*demo\.ckpt: nothing recorded yet; /m);
        const kept =
          /^checkpoint .*demo\.ckpt keeps the (\d+) finished lines: run the same command again to finish the other (\d+)$/m.exec(
            first.stdout,
          );
        expect(kept, first.stdout).not.toBeNull();
        const recorded = Number(kept![1]);
        expect(recorded).toBeGreaterThan(0);
        expect(recorded + Number(kept![2])).toBe(300);
        expect(first.stdout).toContain(`finished: ${String(recorded)} of 300 records`);

        const second = await startDemo(undefined, args);
        expect(second.stderr).toBe("");
        expect(second.code).toBe(0);
        expect(second.stdout).toContain(
          `demo.ckpt: ${String(recorded)} lines recorded by an earlier run are restored, not run`,
        );
        expect(second.stdout).toMatch(
          new RegExp(`^restored: ${String(recorded)} from the checkpoint, not run again$`, "m"),
        );
        // The summary of an uninterrupted run, from the remaining lines alone.
        expectSummary(second.stdout, recorded);

        // Run again, it is complete: nothing runs, the same summary.
        const third = await startDemo(undefined, args);
        expect(third.code).toBe(0);
        expect(third.stdout).toContain(
          "300 lines recorded by an earlier run are restored, not run (it completed",
        );
        expectSummary(third.stdout, 300);
        const counts = (stdout: string) =>
          stdout.slice(stdout.indexOf("\nsucceeded: ")).split("\nretries: ")[0];
        expect(counts(third.stdout)).toBe(counts(second.stdout));
        const output = (stdout: string) => /^output: .*$/m.exec(stdout)?.[0];
        expect(output(third.stdout)).toBe(output(second.stdout));
      } finally {
        rmSync(folder, { recursive: true, force: true });
      }
    },
  );

  it("prints its options with --help", { timeout: 60_000 }, async () => {
    const { code, stdout, stderr } = await startDemo(undefined, ["--help"]);
    expect(stderr).toBe("");
    expect(code).toBe(0);
    expect(stdout).toMatch(/^Usage: npm run demo -- \[options\]$/m);
    for (const option of [
      "--records N",
      "--concurrency N",
      "--seed N",
      "--workers N",
      "--checkpoint FILE",
      "--help",
    ]) {
      expect(stdout).toContain(`  ${option}`);
    }
  });

  it("rejects an unknown option with one line", { timeout: 60_000 }, async () => {
    const { code, stdout, stderr } = await startDemo(undefined, ["--colour"]);
    expect(code).toBe(2);
    expect(stdout).toBe("");
    expect(stderr).toBe("demo: Unknown option '--colour' (see npm run demo -- --help)\n");
  });
});

/**
 * The summary every run with the default seed ends with, in process or through Redis; resumed
 * from a checkpoint, with `restored` lines not run again (they are not in the stage counts).
 */
function expectSummary(stdout: string, restored = 0): void {
  expect(stdout).toMatch(/^quote server at http:\/\/127\.0\.0\.1:\d+: /m);
  // Not a TTY: plain progress lines, one per tenth, no carriage returns.
  expect(stdout).not.toContain("\r");
  const progress = stdout.match(
    /^progress: \d+\/300 done(?: \(\d+ restored\))?, \d+ failed, \d+ in flight, retries: \d+, \d+\.\d s$/gm,
  );
  // One line per tenth of the way; fewer when items settling together skip a tenth.
  expect(progress?.length).toBeGreaterThanOrEqual(restored === 300 ? 1 : 2);
  expect(progress?.length).toBeLessThanOrEqual(10);
  const summary = stdout.slice(stdout.indexOf("\nsummary: ") + 1);
  expect(summary).toMatch(/^summary: 300 records in \d+\.\d s$/m);
  const succeeded = Number(/^succeeded: (\d+)$/m.exec(summary)?.[1]);
  const failed = Number(/^failed: (\d+), by reason:$/m.exec(summary)?.[1]);
  expect(succeeded + failed).toBe(300);
  expect(stdout).toMatch(
    new RegExp(
      `^progress: 300/300 done${restored === 0 ? "" : ` \\(${String(restored)} restored\\)`}, ` +
        `${String(failed)} failed, 0 in flight, `,
      "m",
    ),
  );
  const reasons = summary.slice(
    summary.indexOf("by reason:\n") + 11,
    summary.indexOf("\nretries: "),
  );
  const counts = new Map<string, number>();
  for (const line of reasons.split("\n")) {
    const match =
      /^ {2}((?:parse: (?:invalid record|not JSON))|(?:fetch: (?:HTTP (?:404|500)|timed out \(800 ms\))(?: after \d+ attempts)?)|(?:transform: no exchange rate for XYZ)) +(\d+)$/.exec(
        line,
      );
    expect(match, `an unexpected failure reason: ${line}`).not.toBeNull();
    counts.set(match![1]!, Number(match![2]));
  }
  expect([...counts.values()].reduce((sum, count) => sum + count, 0)).toBe(failed);
  // Parsing involves no timing: the seed decides it alone.
  expect(counts.get("parse: invalid record")).toBe(2);
  expect(counts.get("parse: not JSON")).toBe(2);
  // The records the server always refuses fail whatever the timing, if not always as 404s.
  expect(counts.get("fetch: timed out (800 ms) after 4 attempts")).toBeGreaterThanOrEqual(4);
  expect(summary).toMatch(/^stage durations \(ms, timingMiddleware\):$/m);
  if (restored === 300) {
    // Nothing ran: no retries, no durations.
    expect(summary).toMatch(/^retries: 0, after:$/m);
  } else {
    expect(summary).toMatch(/^retries: \d+, after:$/m);
    expect(summary).toMatch(/^ {2}HTTP 503 +\d+$/m);
    expect(summary).toMatch(/^ {2}timed out \(800 ms\) +\d+$/m);
    expect(summary).toMatch(/^ {2}stage +runs +p50 +p95$/m);
  }
  if (restored === 0) {
    expect(summary).toMatch(/^ {2}parse +300 +\d+\.\d +\d+\.\d$/m);
    expect(summary).toMatch(/^ {2}fetch +296 +\d+\.\d +\d+\.\d$/m);
    expect(summary).toMatch(/^ {2}transform +\d+ +\d+\.\d +\d+\.\d$/m);
    expect(summary).toMatch(
      new RegExp(`^ {2}collect +${String(succeeded)} +\\d+\\.\\d +\\d+\\.\\d$`, "m"),
    );
  } else if (restored < 300) {
    // Only the lines not restored ran: every one of them was parsed.
    expect(summary).toMatch(
      new RegExp(`^ {2}parse +${String(300 - restored)} +\\d+\\.\\d +\\d+\\.\\d$`, "m"),
    );
  }
  expect(summary).toMatch(
    restored === 300
      ? /^quote server: 0 requests /m
      : /^quote server: \d+ requests \(200 ×\d+, 404 ×\d+, 500 ×\d+, 503 ×\d+\), \d+ never answered/m,
  );
  expect(summary).toMatch(
    new RegExp(`^output: ${String(succeeded)} priced orders, \\d+\\.\\d{2} EUR in all$`, "m"),
  );
}
