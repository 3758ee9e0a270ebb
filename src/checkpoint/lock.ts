/**
 * The lock of a file checkpoint: one batch per checkpoint at a time, across processes and
 * within one.
 *
 * The lock is the file `<checkpoint>.lock` beside the checkpoint, holding one line of JSON:
 * `{"pid":…,"hostname":…,"since":…,"token":…}`. It is created atomically with its content (a
 * temporary file hard-linked to the lock's name, which fails when the name exists), so a
 * reader never sees it half written. Within a process, a registry shared by every copy of the
 * library (ESM, CommonJS) names the locks the process holds.
 *
 * A lock that exists is taken over at once when its holder no longer exists: same host, and
 * `process.kill(pid, 0)` fails with `ESRCH` (or the pid is this process's own while this process
 * holds no such lock: a restarted container that got the same pid). A lock held from another
 * host cannot be checked, and counts as held. The takeover moves the dead lock aside with an
 * atomic rename and checks that what it moved is the lock it judged dead, so two processes
 * taking over together cannot both win.
 */
import {
  closeSync,
  linkSync,
  openSync,
  readFileSync,
  renameSync,
  unlinkSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { hostname as osHostname } from "node:os";
import { resolve } from "node:path";
import process from "node:process";
import { CheckpointInUseError, type CheckpointHolder } from "../errors/CheckpointInUseError.js";

/** A lock this process holds: {@link HeldLock.release} gives it back. */
export interface HeldLock {
  /** Deletes the lock file (when it is still this lock) and forgets the lock. */
  release(): void;
}

/** A lock file's content. */
interface LockContent extends CheckpointHolder {
  readonly token: string;
}

/** The locks this process holds (resolved lock paths), shared by every copy of the library. */
const held: Set<string> = ((globalThis as Record<symbol, unknown>)[
  Symbol.for("async-pipeline.checkpoint.locks")
] ??= new Set<string>()) as Set<string>;

/** This host's name; `"(unknown)"` where the runtime will not say (Deno without `--allow-sys`). */
function thisHost(): string {
  try {
    return osHostname();
  } catch {
    return "(unknown)";
  }
}

function errorCode(error: unknown): unknown {
  return (error as { code?: unknown } | null)?.code;
}

/** How many times the lock may change hands under an acquirer before it gives up. */
const ATTEMPTS = 8;

/**
 * Takes the lock of the checkpoint at `path` (as given) for this process, or throws
 * `CheckpointInUseError` naming its holder. Synchronous: a few small file operations.
 */
export function acquireLock(path: string): HeldLock {
  const lockPath = `${path}.lock`;
  const key = resolve(lockPath);
  if (held.has(key)) {
    throw new CheckpointInUseError(
      path,
      holderIn(lockPath),
      "another batch of this process holds it (one batch per checkpoint at a time)",
    );
  }
  const mine: LockContent = {
    pid: process.pid,
    hostname: thisHost(),
    since: new Date().toISOString(),
    token: `${Date.now().toString(36)}${Math.random().toString(36).slice(2)}`,
  };
  for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
    if (create(lockPath, mine)) {
      held.add(key);
      return {
        release: () => {
          release(lockPath, key, mine.token);
        },
      };
    }
    const found = readLock(lockPath);
    if (found === undefined) continue; // released in between: try again
    if (found.content === undefined) {
      throw new CheckpointInUseError(
        path,
        undefined,
        `its lock file ${lockPath} cannot be read (${found.problem}); if no batch uses the checkpoint, delete that file`,
      );
    }
    const holder = holderOf(found.content);
    const state = liveness(found.content, mine);
    if (state === "alive") {
      throw new CheckpointInUseError(
        path,
        holder,
        `one batch per checkpoint at a time (the lock is ${lockPath})`,
      );
    }
    if (state !== "dead") {
      throw new CheckpointInUseError(
        path,
        holder,
        `${state.why}; if that process is not running, delete ${lockPath}`,
        state.cause,
      );
    }
    takeOver(lockPath, found.content.token, mine.token);
  }
  throw new CheckpointInUseError(
    path,
    holderIn(lockPath),
    `its lock ${lockPath} kept changing hands while this process tried to take it`,
  );
}

/** The holder named by the lock file, if it can be read. */
function holderIn(lockPath: string): CheckpointHolder | undefined {
  const content = readLock(lockPath)?.content;
  return content === undefined ? undefined : holderOf(content);
}

function holderOf(content: LockContent): CheckpointHolder {
  return Object.freeze({ pid: content.pid, hostname: content.hostname, since: content.since });
}

/** Creates the lock file with `content`, atomically; `false` when it exists. */
function create(lockPath: string, content: LockContent): boolean {
  const text = `${JSON.stringify(content)}\n`;
  const temporary = `${lockPath}.${content.token}.tmp`;
  writeFileSync(temporary, text, { flag: "wx" });
  try {
    linkSync(temporary, lockPath);
    return true;
  } catch (error) {
    const code = errorCode(error);
    if (code === "EEXIST") return false;
    // A filesystem without hard links: an exclusive create, then the content.
    if (code === "EPERM" || code === "ENOTSUP" || code === "ENOSYS" || code === "EOPNOTSUPP") {
      return createExclusive(lockPath, text);
    }
    throw error;
  } finally {
    unlinkQuietly(temporary);
  }
}

function createExclusive(lockPath: string, text: string): boolean {
  let fd: number;
  try {
    fd = openSync(lockPath, "wx");
  } catch (error) {
    if (errorCode(error) === "EEXIST") return false;
    throw error;
  }
  try {
    writeSync(fd, text);
  } finally {
    closeSync(fd);
  }
  return true;
}

/** What a lock file holds: `undefined` when there is none. */
function readLock(
  lockPath: string,
):
  | { content: LockContent; problem?: undefined }
  | { content?: undefined; problem: string }
  | undefined {
  let text: string;
  try {
    text = readFileSync(lockPath, "utf8");
  } catch (error) {
    if (errorCode(error) === "ENOENT") return undefined;
    return { problem: String(error) };
  }
  try {
    const value = JSON.parse(text) as Partial<LockContent> | null;
    if (
      typeof value === "object" &&
      value !== null &&
      Number.isSafeInteger(value.pid) &&
      typeof value.hostname === "string" &&
      typeof value.since === "string" &&
      typeof value.token === "string"
    ) {
      return { content: value as LockContent };
    }
  } catch {
    // Reported below.
  }
  return { problem: `not a lock: ${JSON.stringify(text.slice(0, 200))}` };
}

type Liveness = "alive" | "dead" | { readonly why: string; readonly cause?: unknown };

/** Whether the holder of `content` still exists, as far as this process can tell. */
function liveness(content: LockContent, mine: LockContent): Liveness {
  if (content.hostname !== mine.hostname) {
    return {
      why: `the holder runs on another host (${content.hostname}), which this one (${mine.hostname}) cannot check`,
    };
  }
  // This process holds no lock of that name (checked first): an earlier process had our pid.
  if (content.pid === mine.pid) return "dead";
  try {
    process.kill(content.pid, 0);
    return "alive";
  } catch (error) {
    const code = errorCode(error);
    if (code === "ESRCH") return "dead";
    if (code === "EPERM") return "alive"; // exists, owned by another user
    return {
      why: `whether process ${String(content.pid)} is alive could not be checked (${String(error)})`,
      cause: error,
    };
  }
}

/**
 * @internal Exported for its test: the race it guards against cannot be staged from outside.
 *
 * Removes the dead lock whose token is `dead`: moves it aside atomically, then deletes it if it
 * is still that lock, or puts it back when another process replaced it in between.
 */
export function takeOver(lockPath: string, dead: string, token: string): void {
  const aside = `${lockPath}.${token}.stale`;
  try {
    renameSync(lockPath, aside);
  } catch (error) {
    if (errorCode(error) === "ENOENT") return; // someone else removed it
    throw error;
  }
  if (readLock(aside)?.content?.token !== dead) {
    // A live lock, created after the dead one was removed by someone else: give it back.
    try {
      linkSync(aside, lockPath);
    } catch {
      // Another lock is there by now: it wins, and the acquirer will meet it.
    }
  }
  unlinkQuietly(aside);
}

function release(lockPath: string, key: string, token: string): void {
  if (!held.delete(key)) return;
  if (readLock(lockPath)?.content?.token === token) unlinkQuietly(lockPath);
}

function unlinkQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // Gone already.
  }
}
