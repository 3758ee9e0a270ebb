/**
 * A real, throwaway `redis-server` (Debian's package) on a free loopback port, persistence off
 * unless asked for, stopped by its PID: for `npm run demo -- --workers N`, the BullMQ tests'
 * global setup, and the fault tests (which pause, kill and restart it on the same port).
 * `ensureRedisServer` (the tests) installs a missing binary with apt-get when root, and
 * otherwise fails saying how to get it.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { createServer, connect } from "node:net";

export interface RedisServer {
  readonly url: string;
  readonly port: number;
  readonly pid: number;
  /** Resolves once the process has exited (by `stop()` or by a signal sent to `pid`). */
  readonly exited: Promise<void>;
  stop(): Promise<void>;
}

/** How to run a server: all optional. */
export interface RedisServerOptions {
  /** The port (a free one when not given): to restart a server where it was. */
  readonly port?: number | undefined;
  /**
   * Append-only persistence in this directory, every write synced (`appendfsync always`), so
   * that a server killed and restarted on the same directory has lost nothing.
   */
  readonly persistIn?: string | undefined;
  /** `maxmemory`, in bytes, with `maxmemory-policy noeviction`. */
  readonly maxmemory?: number | undefined;
  /**
   * A process group of its own (`detached`), so that a terminal's Ctrl-C (SIGINT to the
   * foreground group) does not stop it: its starter stops it, after what still needs it.
   */
  readonly detached?: boolean | undefined;
}

/** True when a `redis-server` binary is on the PATH. */
export function hasRedisServer(): boolean {
  return spawnSync("redis-server", ["--version"], { stdio: "ignore" }).status === 0;
}

/** Installs redis-server with apt-get when root; otherwise throws saying how to get it. */
export const HOW_TO_GET_REDIS =
  "Install Redis: `sudo apt-get update && sudo apt-get install -y redis-server` (Debian/Ubuntu), `brew install redis` (macOS)";

export function ensureRedisServer(): void {
  if (hasRedisServer()) return;
  const how = HOW_TO_GET_REDIS;
  if (process.getuid?.() !== 0) {
    throw new Error(`redis-server is not installed, and the BullMQ tests need it. ${how}`);
  }
  for (const args of [["update"], ["install", "-y", "redis-server"]]) {
    const result = spawnSync("apt-get", args, { stdio: "inherit" });
    if (result.status !== 0) throw new Error(`apt-get ${args.join(" ")} failed. ${how}`);
  }
  if (!hasRedisServer()) throw new Error(`redis-server is still missing after apt-get. ${how}`);
}

/** A free TCP port on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      server.close(() => {
        resolve(port);
      });
    });
  });
}

function accepting(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1");
    socket.once("connect", () => {
      socket.end();
      resolve(true);
    });
    socket.once("error", () => {
      resolve(false);
    });
  });
}

/** Starts redis-server (on a free port by default) and resolves once it accepts connections. */
export async function startRedisServer(options: RedisServerOptions = {}): Promise<RedisServer> {
  const port = options.port ?? (await freePort());
  const args = ["--port", String(port), "--bind", "127.0.0.1", "--save", ""];
  if (options.persistIn === undefined) args.push("--appendonly", "no");
  else args.push("--appendonly", "yes", "--appendfsync", "always", "--dir", options.persistIn);
  if (options.maxmemory !== undefined) {
    args.push("--maxmemory", String(options.maxmemory), "--maxmemory-policy", "noeviction");
  }
  const child: ChildProcess = spawn("redis-server", args, {
    stdio: "ignore",
    detached: options.detached === true,
  });
  const pid = child.pid;
  if (pid === undefined) throw new Error("redis-server did not start");
  const exited = new Promise<void>((resolve) =>
    child.once("exit", () => {
      resolve();
    }),
  );
  for (let tries = 0; !(await accepting(port)); tries++) {
    if (child.exitCode !== null || tries > 200) {
      process.kill(pid, "SIGKILL");
      throw new Error(`redis-server did not start on port ${String(port)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  return {
    url: `redis://127.0.0.1:${String(port)}`,
    port,
    pid,
    exited,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        // A paused server (SIGSTOP) would not act on SIGTERM.
        process.kill(pid, "SIGCONT");
        process.kill(pid, "SIGTERM");
      }
      await exited;
    },
  };
}
