/** Helpers shared by the checkpoint tests: temporary folders, an in-memory store, children. */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { CheckpointStore } from "../../src/index.js";
import { frameLine } from "../../src/checkpoint/format.js";
// The bench's PRNG (mulberry32): a 32-bit seed, the same sequence.
import { random } from "../../bench/harness.js";

export const ROOT = fileURLToPath(new URL("../..", import.meta.url));

/** A new temporary folder; `remove` deletes it. */
export function temporaryFolder(): {
  readonly dir: string;
  file(name: string): string;
  remove(): void;
} {
  const dir = mkdtempSync(join(tmpdir(), "async-pipeline-checkpoint-"));
  return {
    dir,
    file: (name) => join(dir, name),
    remove: () => {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Writes a checkpoint file made of `records`, each framed as the file store frames it. */
export function writeRecords(path: string, records: readonly unknown[], tail = ""): void {
  writeFileSync(path, records.map((record) => frameLine(JSON.stringify(record))).join("") + tail);
}

/** The records of a checkpoint file, read without the library: framing and checksum stripped. */
export function recordsIn(path: string): unknown[] {
  return readFileSync(path, "utf8")
    .split("\n")
    .filter((line) => line !== "")
    .map((line) => JSON.parse(line.slice(9)) as unknown);
}

/** How an in-memory store answers: at once, or through promises and async iterables. */
export type Timing = "sync" | "async";

/**
 * A {@link CheckpointStore} in memory that logs every call; records are kept as JSON text, so
 * `load` gives back equal values, never the same objects.
 */
export class MemoryStore implements CheckpointStore {
  records: string[] = [];
  readonly calls: string[] = [];
  /** Records made durable by `flush`. */
  flushed = 0;
  open = false;
  clearOnSuccess: boolean | undefined = undefined;
  /** Throw (sync) or reject (async) from the next `append`. */
  failAppend: unknown = undefined;
  loads = 0;

  constructor(readonly timing: Timing = "sync") {}

  load(): Iterable<unknown> | Promise<AsyncIterable<unknown>> {
    this.calls.push("load");
    this.loads++;
    this.open = true;
    const values = this.records.slice().map((text) => JSON.parse(text) as unknown);
    if (this.timing === "sync") return values;
    return Promise.resolve(
      (async function* replay() {
        for (const value of values) {
          await Promise.resolve();
          yield value;
        }
      })(),
    );
  }

  append(record: unknown): void | Promise<void> {
    this.calls.push("append");
    const failure = this.failAppend;
    if (failure !== undefined) {
      this.failAppend = undefined;
      if (this.timing === "sync") throw failure;
      return Promise.reject(failure);
    }
    if (this.timing === "sync") {
      this.records.push(JSON.stringify(record));
      return undefined;
    }
    return Promise.resolve().then(() => {
      this.records.push(JSON.stringify(record));
    });
  }

  flush(): void | Promise<void> {
    this.calls.push("flush");
    this.flushed = this.records.length;
    return this.timing === "sync" ? undefined : Promise.resolve();
  }

  close(): void | Promise<void> {
    this.calls.push("close");
    this.open = false;
    return this.timing === "sync" ? undefined : Promise.resolve();
  }

  clear(): void | Promise<void> {
    this.calls.push("clear");
    this.records = [];
    return this.timing === "sync" ? undefined : Promise.resolve();
  }

  /** The records, parsed. */
  get values(): unknown[] {
    return this.records.map((text) => JSON.parse(text) as unknown);
  }
}

/** A child process running a script from this folder through tsx. */
export interface Child {
  readonly process: ChildProcess;
  /** Resolves with the first line the child prints that starts with `prefix`. */
  line(prefix: string): Promise<string>;
  /** Everything it printed so far. */
  output(): { stdout: string; stderr: string };
  /** Resolves when it has exited, with its exit code or signal. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Starts `test/checkpoint/<script>` with `args` in a child Node process (through tsx). */
export function startChild(script: string, args: readonly string[]): Child {
  const file = fileURLToPath(new URL(script, import.meta.url));
  const child = spawn(process.execPath, ["--import", "tsx", file, ...args], {
    cwd: ROOT,
    stdio: ["pipe", "pipe", "pipe"],
    env: { ...process.env, NODE_OPTIONS: "" },
  });
  let stdout = "";
  let stderr = "";
  const waiting: { prefix: string; resolve: (line: string) => void }[] = [];
  const check = (): void => {
    const lines = stdout.split("\n");
    for (const waiter of waiting.slice()) {
      const found = lines.find((line) => line.startsWith(waiter.prefix));
      if (found !== undefined) {
        waiting.splice(waiting.indexOf(waiter), 1);
        waiter.resolve(found);
      }
    }
  };
  child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
    stdout += chunk;
    check();
  });
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
    stderr += chunk;
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on("close", (code, signal) => {
      resolve({ code, signal });
    });
  });
  return {
    process: child,
    line: (prefix) =>
      Promise.race([
        new Promise<string>((resolve) => {
          waiting.push({ prefix, resolve });
          check();
        }),
        exited.then(({ code, signal }) => {
          throw new Error(
            `the child exited (${String(code ?? signal)}) before printing "${prefix}":\n${stdout}\n${stderr}`,
          );
        }),
      ]),
    output: () => ({ stdout, stderr }),
    exited,
  };
}

/** `promise`, or a rejection naming `what` after `ms`: every wait on a child has a deadline. */
export async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_resolve, reject) => {
        timer = setTimeout(() => {
          reject(new Error(`${what} took more than ${String(ms)} ms`));
        }, ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The random moments of a crash test, from a seed: `CRASH_SEED` when set (to replay a
 * failure), else a new one. `seeded` runs `body` with the generator and, when it fails, adds
 * the seed and the command that replays it to the error's message.
 */
export async function seeded(
  file: string,
  body: (next: () => number) => Promise<void>,
): Promise<void> {
  const given = process.env.CRASH_SEED;
  const seed = given === undefined ? Math.floor(Math.random() * 2 ** 32) : Number(given) >>> 0;
  try {
    await body(random(seed));
  } catch (error) {
    if (error instanceof Error) {
      error.message +=
        `\ncrash test seed: ${String(seed)}` +
        `\nreplay: CRASH_SEED=${String(seed)} npx vitest run ${file}`;
    }
    throw error;
  }
}
