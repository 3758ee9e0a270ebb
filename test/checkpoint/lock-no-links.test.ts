/**
 * The lock on a filesystem without hard links (some network and FAT-like filesystems refuse
 * `link`): it falls back to an exclusive create. `node:fs` is wrapped so that `linkSync` fails
 * the way such a filesystem fails; everything else is the real file system.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { CheckpointInUseError, fileCheckpoint } from "../../src/checkpoint/index.js";
import { temporaryFolder } from "./support.js";

const refusal = vi.hoisted(() => ({ code: "EPERM" }));

vi.mock("node:fs", async (importOriginal) => {
  const fs = await importOriginal<typeof import("node:fs")>();
  return {
    ...fs,
    linkSync: () => {
      throw Object.assign(new Error(`${refusal.code}: link refused`), { code: refusal.code });
    },
  };
});

let folder: ReturnType<typeof temporaryFolder>;
beforeEach(() => {
  folder = temporaryFolder();
  refusal.code = "EPERM";
});
afterEach(() => {
  folder.remove();
});

describe("the lock without hard links", () => {
  it.each(["EPERM", "ENOTSUP", "ENOSYS", "EOPNOTSUPP"])(
    "creates the lock exclusively when link fails with %s, and still refuses a second holder",
    async (code) => {
      refusal.code = code;
      const path = folder.file("c.ckpt");
      const first = fileCheckpoint(path);
      first.load();
      expect(JSON.parse(readFileSync(`${path}.lock`, "utf8"))).toMatchObject({ pid: process.pid });
      expect(readdirTemporary()).toEqual([]);
      await first.close();
      expect(existsSync(`${path}.lock`)).toBe(false);
    },
  );

  it("refuses a lock that exists, found by the exclusive create", async () => {
    const path = folder.file("c.ckpt");
    const first = fileCheckpoint(path);
    first.load();
    // Another copy of the library would not share this process's registry: forget it here.
    const registry = (globalThis as Record<symbol, unknown>)[
      Symbol.for("async-pipeline.checkpoint.locks")
    ] as Set<string>;
    const held = [...registry];
    registry.clear();
    try {
      // Same pid, not in the registry: judged dead and taken over, as a restarted container's.
      const second = fileCheckpoint(path);
      second.load();
      expect(() => fileCheckpoint(path).load()).toThrow(CheckpointInUseError);
      await second.close();
    } finally {
      for (const key of held) registry.add(key);
      await first.close();
    }
  });

  it("passes on any other failure of link", () => {
    refusal.code = "EIO";
    expect(() => fileCheckpoint(folder.file("c.ckpt")).load()).toThrow("EIO: link refused");
    expect(readdirTemporary()).toEqual([]);
  });
});

/** Temporary lock files left in the folder. */
function readdirTemporary(): string[] {
  return readdirSync(folder.dir).filter((name) => name.endsWith(".tmp"));
}
