/**
 * The lock of a file checkpoint: one batch per checkpoint, across processes (a real child
 * holds it) and within one; a lock left by a killed process is taken over at once.
 */
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import {
  CheckpointInUseError,
  fileCheckpoint,
  readCheckpoint,
} from "../../src/checkpoint/index.js";
import { takeOver } from "../../src/checkpoint/lock.js";
import { rejectionOf } from "../support/promises.js";
import { startChild, temporaryFolder, type Child } from "./support.js";

let folder: ReturnType<typeof temporaryFolder>;
const children: Child[] = [];

beforeEach(() => {
  folder = temporaryFolder();
});
afterEach(async () => {
  vi.restoreAllMocks();
  for (const child of children.splice(0)) {
    if (child.process.exitCode === null && child.process.signalCode === null) {
      child.process.kill("SIGKILL");
    }
    await child.exited;
  }
  folder.remove();
});

/** What loading the checkpoint at `path` throws. */
function inUseError(path: string): CheckpointInUseError {
  const checkpoint = fileCheckpoint(path);
  try {
    checkpoint.load();
  } catch (error) {
    expect(error).toBeInstanceOf(CheckpointInUseError);
    return error as CheckpointInUseError;
  }
  void checkpoint.close();
  throw new Error("expected CheckpointInUseError");
}

function lockOf(path: string): Record<string, unknown> {
  return JSON.parse(readFileSync(`${path}.lock`, "utf8")) as Record<string, unknown>;
}

/** Writes a lock file as another holder would have. */
function writeLock(path: string, holder: { pid: number; hostname?: string; token?: string }): void {
  writeFileSync(
    `${path}.lock`,
    JSON.stringify({
      pid: holder.pid,
      hostname: holder.hostname ?? hostname(),
      since: "2026-01-01T00:00:00.000Z",
      token: holder.token ?? "theirs",
    }),
  );
}

/** The pid of a process that has exited. */
function deadPid(): number {
  const { pid } = spawnSync("true");
  return pid;
}

describe("the lock within one process", () => {
  it("refuses a second open of the same path until the first closes", async () => {
    const path = folder.file("c.ckpt");
    const first = fileCheckpoint(path);
    first.load();
    const error = inUseError(path);
    expect(error.path).toBe(path);
    expect(error.holder).toEqual({
      pid: process.pid,
      hostname: hostname(),
      since: expect.any(String) as string,
    });
    expect(error.message).toContain("another batch of this process holds it");
    await first.close();
    const second = fileCheckpoint(path);
    second.load();
    await second.close();
  });

  it("readCheckpoint refuses a checkpoint in use and releases what it opened", async () => {
    const path = folder.file("c.ckpt");
    const batch = fileCheckpoint(path);
    batch.load();
    expect(await rejectionOf(readCheckpoint(fileCheckpoint(path)))).toBeInstanceOf(
      CheckpointInUseError,
    );
    await batch.close();
    await readCheckpoint(fileCheckpoint(path));
    expect(existsSync(`${path}.lock`)).toBe(false);
  });

  it("writes pid, hostname, start and a token in the lock file, and deletes it on close", async () => {
    const path = folder.file("c.ckpt");
    const checkpoint = fileCheckpoint(path);
    checkpoint.load();
    expect(lockOf(path)).toEqual({
      pid: process.pid,
      hostname: hostname(),
      since: expect.stringMatching(/^\d{4}-\d\d-\d\dT/) as string,
      token: expect.any(String) as string,
    });
    await checkpoint.close();
    expect(existsSync(`${path}.lock`)).toBe(false);
  });

  it("leaves a lock file that is no longer its own when it closes", async () => {
    const path = folder.file("c.ckpt");
    const checkpoint = fileCheckpoint(path);
    checkpoint.load();
    writeLock(path, { pid: 1, token: "someone else" });
    await checkpoint.close();
    expect(lockOf(path).token).toBe("someone else");
  });
});

describe("the lock across processes", { timeout: 60_000 }, () => {
  it("refuses a checkpoint held by another live process, naming it", async () => {
    const path = folder.file("c.ckpt");
    const child = startChild("holder.ts", [path]);
    children.push(child);
    await child.line("holding");
    const error = inUseError(path);
    expect(error.holder).toMatchObject({ pid: child.process.pid, hostname: hostname() });
    expect(error.message).toContain(`by process ${String(child.process.pid)}`);
    expect(error.message).toContain(`${path}.lock`);
    // The holder releases it: then it opens.
    child.process.stdin!.end("done\n");
    await child.line("released");
    expect((await child.exited).code).toBe(0);
    const checkpoint = fileCheckpoint(path);
    expect([...checkpoint.load()]).toEqual([{ holder: child.process.pid }]);
    await checkpoint.close();
  });

  it("takes over at once the lock of a process killed with SIGKILL", async () => {
    const path = folder.file("c.ckpt");
    const child = startChild("holder.ts", [path]);
    children.push(child);
    await child.line("holding");
    child.process.kill("SIGKILL");
    expect((await child.exited).signal).toBe("SIGKILL");
    expect(lockOf(path).pid).toBe(child.process.pid);
    const checkpoint = fileCheckpoint(path);
    expect([...checkpoint.load()]).toEqual([{ holder: child.process.pid }]);
    expect(lockOf(path).pid).toBe(process.pid);
    await checkpoint.close();
    expect(existsSync(`${path}.lock`)).toBe(false);
  });
});

describe("locks left behind", { timeout: 30_000 }, () => {
  it("takes over the lock of a process that no longer exists", async () => {
    const path = folder.file("c.ckpt");
    writeLock(path, { pid: deadPid() });
    const checkpoint = fileCheckpoint(path);
    checkpoint.load();
    expect(lockOf(path).pid).toBe(process.pid);
    await checkpoint.close();
  });

  it("takes over a lock with this process's pid that this process does not hold (a restarted container)", async () => {
    const path = folder.file("c.ckpt");
    writeLock(path, { pid: process.pid });
    const checkpoint = fileCheckpoint(path);
    checkpoint.load();
    expect(lockOf(path).token).not.toBe("theirs");
    await checkpoint.close();
  });

  it("counts a process that exists as alive (pid 1)", () => {
    const path = folder.file("c.ckpt");
    writeLock(path, { pid: 1 });
    expect(inUseError(path).holder?.pid).toBe(1);
  });

  it("counts a lock from another host as held: it cannot be checked", () => {
    const path = folder.file("c.ckpt");
    writeLock(path, { pid: deadPid(), hostname: "elsewhere" });
    const error = inUseError(path);
    expect(error.holder?.hostname).toBe("elsewhere");
    expect(error.message).toContain("another host (elsewhere)");
    expect(error.message).toContain(`delete ${path}.lock`);
  });

  it("counts a holder whose state cannot be checked as held, saying why", () => {
    const path = folder.file("c.ckpt");
    writeLock(path, { pid: 12345 });
    const denied = Object.assign(new Error("Requires run access"), { name: "NotCapable" });
    vi.spyOn(process, "kill").mockImplementation(() => {
      throw denied;
    });
    const error = inUseError(path);
    expect(error.cause).toBe(denied);
    expect(error.message).toContain("whether process 12345 is alive could not be checked");
  });

  it.each([
    ["not JSON", "{"],
    ["JSON without the fields", '{"pid":"x"}'],
  ])("refuses a lock file that is %s, saying to delete it", (_label, content) => {
    const path = folder.file("c.ckpt");
    writeFileSync(`${path}.lock`, content);
    const error = inUseError(path);
    expect(error.holder).toBeUndefined();
    expect(error.message).toContain("cannot be read");
    expect(error.message).toContain(`delete that file`);
  });

  it("refuses when the lock keeps changing hands", () => {
    const path = folder.file("c.ckpt");
    // Every check finds a dead holder, yet the lock is always back: a stuck takeover.
    writeLock(path, { pid: deadPid(), hostname: hostname() });
    const dead = deadPid();
    let replaced = 0;
    vi.spyOn(process, "kill").mockImplementation(() => {
      writeLock(path, { pid: dead, token: `again ${String(replaced++)}` });
      throw Object.assign(new Error("no such process"), { code: "ESRCH" });
    });
    const error = inUseError(path);
    expect(error.message).toContain("kept changing hands");
  });

  it("in a folder that does not exist, reads nothing and fails the first write", async () => {
    const path = folder.file("missing/c.ckpt");
    expect(await readCheckpoint(fileCheckpoint(path))).toEqual({
      done: 0,
      failed: [],
      complete: false,
    });
    const checkpoint = fileCheckpoint(path);
    expect([...checkpoint.load()]).toEqual([]);
    expect(() => {
      checkpoint.append({ n: 1 });
    }).toThrow(/ENOENT/);
    await checkpoint.close();
  });
});

describe("takeOver", () => {
  it("removes the dead lock it judged", () => {
    const path = folder.file("c.ckpt");
    writeLock(path, { pid: 1, token: "dead" });
    takeOver(`${path}.lock`, "dead", "mine");
    expect(existsSync(`${path}.lock`)).toBe(false);
  });

  it("puts back a live lock that replaced the dead one in between", () => {
    const path = folder.file("c.ckpt");
    writeLock(path, { pid: 1, token: "live" });
    takeOver(`${path}.lock`, "dead", "mine");
    expect(lockOf(path).token).toBe("live");
    expect(existsSync(`${path}.lock.mine.stale`)).toBe(false);
  });

  it("does nothing when the lock is gone already", () => {
    takeOver(folder.file("c.ckpt.lock"), "dead", "mine");
    expect(existsSync(folder.file("c.ckpt.lock"))).toBe(false);
  });
});
