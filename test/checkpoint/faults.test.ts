/**
 * The file store and its lock when the file system or the runtime refuses: a filesystem
 * without hard links (some network and FAT-like ones refuse `link`), an `fsync` that fails
 * (a disk error), a file that cannot be opened, a host name the runtime will not give (Deno
 * without `--allow-sys`). `node:fs` and `node:os` are wrapped so that each fault can be switched
 * on; everything else is the real file system.
 */
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import {
  CheckpointInUseError,
  fileCheckpoint,
  readCheckpoint,
} from "../../src/checkpoint/index.js";
import { acquireLock } from "../../src/checkpoint/lock.js";
import { temporaryFolder } from "./support.js";

const faults = vi.hoisted(() => ({
  /** `linkSync` fails with this code every time… */
  link: undefined as string | undefined,
  /** …or only the next time. */
  linkOnce: undefined as string | undefined,
  /** `fsync` calls back with this code. */
  fsync: undefined as string | undefined,
  /** Opening a file whose name ends with `.ckpt` for reading fails with this code. */
  openRead: undefined as string | undefined,
  /** `hostname()` throws. */
  hostname: false,
}));

function fault(code: string, call: string): Error {
  return Object.assign(new Error(`${code}: ${call} refused`), { code });
}

vi.mock("node:fs", async (importOriginal) => {
  const fs = await importOriginal<typeof import("node:fs")>();
  return {
    ...fs,
    linkSync: (existing: string, created: string) => {
      const once = faults.linkOnce;
      faults.linkOnce = undefined;
      const code = once ?? faults.link;
      if (code !== undefined) throw fault(code, "link");
      fs.linkSync(existing, created);
    },
    fsync: (fd: number, callback: (error: NodeJS.ErrnoException | null) => void) => {
      if (faults.fsync === undefined) {
        fs.fsync(fd, callback);
        return;
      }
      const code = faults.fsync;
      void Promise.resolve().then(() => {
        callback(fault(code, "fsync"));
      });
    },
    openSync: (path: string, flags?: string, mode?: number) => {
      if (faults.openRead !== undefined && flags === "r" && path.endsWith(".ckpt")) {
        throw fault(faults.openRead, "open");
      }
      return fs.openSync(path, flags as string, mode);
    },
  };
});

vi.mock("node:os", async (importOriginal) => {
  const os = await importOriginal<typeof import("node:os")>();
  return {
    ...os,
    hostname: () => {
      if (faults.hostname) throw new Error('Requires sys access to "hostname"');
      return os.hostname();
    },
  };
});

let folder: ReturnType<typeof temporaryFolder>;
beforeEach(() => {
  folder = temporaryFolder();
  Object.assign(faults, {
    link: undefined,
    linkOnce: undefined,
    fsync: undefined,
    openRead: undefined,
    hostname: false,
  });
});
afterEach(() => {
  vi.useRealTimers();
  vi.restoreAllMocks();
  folder.remove();
});

/** Temporary lock files left in the folder. */
function leftovers(): string[] {
  return readdirSync(folder.dir).filter((name) => name.endsWith(".tmp") || name.endsWith(".stale"));
}

describe("the lock without hard links", () => {
  it.each(["EPERM", "ENOTSUP", "ENOSYS", "EOPNOTSUPP"])(
    "creates the lock exclusively when link fails with %s",
    async (code) => {
      faults.link = code;
      const path = folder.file("c.ckpt");
      const first = fileCheckpoint(path);
      first.load();
      expect(JSON.parse(readFileSync(`${path}.lock`, "utf8"))).toMatchObject({ pid: process.pid });
      expect(leftovers()).toEqual([]);
      await first.close();
      expect(existsSync(`${path}.lock`)).toBe(false);
    },
  );

  it("finds a lock that exists with the exclusive create", () => {
    faults.link = "EPERM";
    const path = folder.file("c.ckpt");
    writeFileSync(
      `${path}.lock`,
      JSON.stringify({ pid: 1, hostname: hostname(), since: "x", token: "t" }),
    );
    expect(() => fileCheckpoint(path).load()).toThrow(CheckpointInUseError);
  });

  it("passes on any other failure of link", () => {
    faults.link = "EIO";
    expect(() => fileCheckpoint(folder.file("c.ckpt")).load()).toThrow("EIO: link refused");
    expect(leftovers()).toEqual([]);
  });

  it("tries again when the lock it found is gone before it could read it", async () => {
    faults.linkOnce = "EEXIST"; // as if a lock existed, then was released before the read
    const lock = acquireLock(folder.file("c.ckpt"));
    expect(existsSync(folder.file("c.ckpt.lock"))).toBe(true);
    lock.release();
    lock.release(); // a second release does nothing
    expect(existsSync(folder.file("c.ckpt.lock"))).toBe(false);
  });
});

describe("the lock's other refusals", () => {
  it("counts a holder that exists but belongs to another user (EPERM) as alive", () => {
    const path = folder.file("c.ckpt");
    writeFileSync(
      `${path}.lock`,
      JSON.stringify({ pid: 4242, hostname: hostname(), since: "x", token: "t" }),
    );
    vi.spyOn(process, "kill").mockImplementation(() => {
      throw fault("EPERM", "kill");
    });
    expect(() => fileCheckpoint(path).load()).toThrow(/in use by process 4242/);
  });

  it("refuses a lock path it cannot read (a folder)", async () => {
    const { mkdirSync } = await import("node:fs");
    const path = folder.file("c.ckpt");
    mkdirSync(`${path}.lock`);
    expect(() => fileCheckpoint(path).load()).toThrow(/cannot be read \(Error: EISDIR/);
  });

  it("names the host (unknown) when the runtime will not give it", async () => {
    faults.hostname = true;
    const path = folder.file("c.ckpt");
    const checkpoint = fileCheckpoint(path);
    checkpoint.load();
    expect(JSON.parse(readFileSync(`${path}.lock`, "utf8"))).toMatchObject({
      hostname: "(unknown)",
    });
    await checkpoint.close();
  });
});

describe("the file store when the disk fails", () => {
  it("a failed fsync fails flush, the next append and close; close still releases", async () => {
    const path = folder.file("c.ckpt");
    const checkpoint = fileCheckpoint(path);
    checkpoint.load();
    checkpoint.append({ n: 1 });
    faults.fsync = "EIO";
    await expect(checkpoint.flush()).rejects.toThrow("EIO: fsync refused");
    expect(() => {
      checkpoint.append({ n: 2 });
    }).toThrow("EIO: fsync refused");
    await expect(checkpoint.close()).rejects.toThrow("EIO: fsync refused");
    expect(existsSync(`${path}.lock`)).toBe(false);
    faults.fsync = undefined;
    // Opened again, it starts afresh: what was written is there.
    expect(
      await readCheckpoint(fileCheckpoint(path)).catch((error: unknown) => error),
    ).toBeInstanceOf(Error);
  });

  it("a failed fsync of a timer's group is kept for the next call", async () => {
    vi.useFakeTimers();
    const checkpoint = fileCheckpoint(folder.file("c.ckpt"), { flushEvery: 10 });
    checkpoint.append({ n: 1 });
    faults.fsync = "EIO";
    vi.advanceTimersByTime(10);
    await vi.waitFor(() => {
      expect(() => {
        checkpoint.append({ n: 2 });
      }).toThrow("EIO: fsync refused");
    });
    await expect(checkpoint.close()).rejects.toThrow("EIO: fsync refused");
  });

  it("a file it cannot open for reading fails the load", async () => {
    faults.openRead = "EACCES";
    const checkpoint = fileCheckpoint(folder.file("c.ckpt"));
    expect(() => [...checkpoint.load()]).toThrow("EACCES: open refused");
    await checkpoint.close();
  });
});
