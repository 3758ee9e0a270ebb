import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

/** What the figures were measured on, printed at the top of every run and of BENCHMARKS.md. */
export interface Machine {
  readonly cpu: string;
  readonly cores: number;
  readonly memoryGiB: number;
  readonly os: string;
  readonly node: string;
  readonly v8: string;
  readonly library: string;
  /** The built file the benchmark loaded, relative to the package root. */
  readonly libraryFile: string;
  readonly date: string;
  /** 1-minute load average when the run started: other work on the machine. */
  readonly load: number;
  /** The git commit measured (short hash, "+changes" when the work tree differs), if known. */
  readonly commit?: string | undefined;
}

/** The checked-out commit, or undefined outside a git work tree. */
function gitCommit(): string | undefined {
  const git = (...args: string[]): string =>
    execFileSync("git", args, { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
  try {
    const hash = git("rev-parse", "--short", "HEAD");
    return git("status", "--porcelain", "--untracked-files=no") === "" ? hash : `${hash}+changes`;
  } catch {
    return undefined;
  }
}

export function describeMachine(libraryFile: string): Machine {
  const cpus = os.cpus();
  const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as {
    name: string;
    version: string;
  };
  return {
    cpu: cpus[0]?.model.trim() ?? "unknown",
    cores: cpus.length,
    memoryGiB: os.totalmem() / 1024 ** 3,
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    node: process.version,
    v8: process.versions.v8,
    library: `${pkg.name}@${pkg.version}`,
    libraryFile: path.relative(fileURLToPath(new URL("..", import.meta.url)), libraryFile),
    date: new Date().toISOString().slice(0, 10),
    load: os.loadavg()[0] ?? NaN,
    commit: gitCommit(),
  };
}

export function machineLines(machine: Machine): string[] {
  return [
    `CPU: ${machine.cpu} (${String(machine.cores)} cores)`,
    `Memory: ${machine.memoryGiB.toFixed(1)} GiB`,
    `OS: ${machine.os}`,
    `Node.js: ${machine.node} (V8 ${machine.v8})`,
    `Library: ${machine.library}, built: ${machine.libraryFile}` +
      (machine.commit === undefined ? "" : ` from commit ${machine.commit}`),
    `Date: ${machine.date}`,
    `Load average (1 min) at the start: ${machine.load.toFixed(2)} on ${String(machine.cores)} cores`,
  ];
}
