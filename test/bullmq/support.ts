/** Helpers of the BullMQ tests: the shared Redis, worker processes, and key scans. */
import { spawn, type ChildProcess, type ChildProcessByStdio } from "node:child_process";
import type { Readable } from "node:stream";
import { randomUUID } from "node:crypto";
import { fileURLToPath } from "node:url";
import { Redis } from "ioredis";
import { inject } from "vitest";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));

export function redisUrl(): string {
  return inject("redisUrl");
}

/** ioredis options for the test server. */
export function connection(): { host: string; port: number } {
  const url = new URL(redisUrl());
  return { host: url.hostname, port: Number(url.port) };
}

/** A fresh queue name, so tests never see each other's jobs. */
export function queueName(): string {
  return `test-${randomUUID()}`;
}

/** A plain client for the test's own checks. */
export function client(): Redis {
  return new Redis(redisUrl(), { maxRetriesPerRequest: null });
}

/** Every key whose name contains `text` (SCAN, never KEYS). */
export async function keysContaining(redis: Redis, text: string): Promise<string[]> {
  const found: string[] = [];
  let cursor = "0";
  do {
    const [next, keys] = await redis.scan(cursor, "MATCH", `*${text}*`, "COUNT", 1_000);
    found.push(...keys);
    cursor = next;
  } while (cursor !== "0");
  return found;
}

/**
 * What Redis holds of a batch, as the parts of its key names after the batch id (`:results`,
 * `:meta`, `-3` for job 3, …), sorted.
 */
export async function batchState(redis: Redis, batchId: string): Promise<string[]> {
  const keys = await keysContaining(redis, batchId);
  return keys.map((key) => key.slice(key.indexOf(batchId) + batchId.length)).sort();
}

/** The keys a named batch keeps to be resumed (meta, results and stop flag, when present). */
export const RESUME_STATE = [":meta", ":results", ":stop", ":yielded"];

/** BullMQ job keys of a batch (not their `:lock` companions). */
export async function jobKeys(redis: Redis, queue: string, batchId: string): Promise<string[]> {
  const keys = await keysContaining(redis, `${queue}:${batchId}-`);
  return keys.filter((key) => /-\d+$/.test(key));
}

/**
 * Runs one of this folder's scripts in a process of its own (through tsx), its stdout and
 * stderr piped, REDIS_URL the test Redis unless `env` says otherwise.
 */
function runScript(
  file: string,
  args: readonly string[],
  env: Record<string, string | number>,
): ChildProcessByStdio<null, Readable, Readable> {
  return spawn(
    process.execPath,
    ["--import", "tsx", fileURLToPath(new URL(file, import.meta.url)), ...args],
    {
      cwd: ROOT,
      stdio: ["ignore", "pipe", "pipe"],
      env: {
        ...process.env,
        NODE_OPTIONS: "",
        REDIS_URL: redisUrl(),
        ...Object.fromEntries(Object.entries(env).map(([key, value]) => [key, String(value)])),
      },
    },
  );
}

export interface WorkerProcess {
  readonly child: ChildProcess;
  readonly name: string;
  /** Resolves with the exit code (or signal) once the process has ended. */
  readonly exited: Promise<number | string | null>;
  output(): string;
}

/** Starts `test/bullmq/worker-process.ts` and resolves once its workers are connected. */
export async function startWorker(
  base: string,
  roles: readonly ("scripted" | "arithmetic" | "stall")[],
  env: Record<string, string | number> = {},
): Promise<WorkerProcess> {
  const name = String(env.WORKER_NAME ?? randomUUID());
  const child = runScript("worker-process.ts", [base, ...roles], { ...env, WORKER_NAME: name });
  let output = "";
  const exited = new Promise<number | string | null>((resolve) =>
    child.once("exit", (code, signal) => {
      resolve(code ?? signal);
    }),
  );
  await new Promise<void>((resolve, reject) => {
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
      output += chunk;
      if (output.includes("ready\n")) resolve();
    });
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
      output += chunk;
    });
    void exited.then((code) => {
      reject(new Error(`worker exited (${String(code)}): ${output}`));
    });
  });
  return { child, name, exited, output: () => output };
}

export interface ProducerProcess {
  readonly child: ChildProcess;
  /** Resolves once the process has ended. */
  readonly exited: Promise<void>;
  stdout(): string;
  stderr(): string;
}

/**
 * Starts `test/bullmq/producer-process.ts`: a map of `count` scripted items of batch `batchId`
 * on queue `queue`, logging to `log`; settings (REDIS_URL, LOCK_DURATION, …) in `env`.
 */
export function startProducer(
  queue: string,
  batchId: string,
  count: number,
  log: string,
  env: Record<string, string>,
): ProducerProcess {
  const child = runScript("producer-process.ts", [queue, batchId, String(count), log], env);
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
  const exited = new Promise<void>((resolve) =>
    child.once("exit", () => {
      resolve();
    }),
  );
  return { child, exited, stdout: () => stdout, stderr: () => stderr };
}

/** Stops worker processes: SIGKILL for those still running. */
export async function stopAll(workers: readonly WorkerProcess[]): Promise<void> {
  for (const worker of workers) {
    if (worker.child.exitCode === null && worker.child.signalCode === null) {
      worker.child.kill("SIGKILL");
    }
  }
  await Promise.all(workers.map((worker) => worker.exited));
}

/**
 * Polls `check` until it returns true (a real-time wait with a wide limit, never an
 * assertion); fails with a message saying what was awaited (and, from `state`, what was seen
 * last) when it does not happen in time.
 */
export async function until(
  check: () => Promise<boolean> | boolean,
  limit = 20_000,
  state?: () => unknown,
): Promise<void> {
  const deadline = performance.now() + limit;
  while (!(await check())) {
    if (performance.now() > deadline) {
      const seen = state === undefined ? "" : `; last seen: ${JSON.stringify(await state())}`;
      throw new Error(
        `condition not met within ${String(limit)} ms: ${check.toString().slice(0, 200)}${seen}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
