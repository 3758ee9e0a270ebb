/**
 * Runs a script of the bench in a child process of its own and reads the one JSON line it
 * prints: for the cases that measure whole processes (memory, repeated batches) rather than
 * contenders interleaved by the harness.
 */
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("..", import.meta.url));

/**
 * `node <nodeArgs> --import tsx <script> <args>`, from the package root (tsx is resolved from
 * the working directory), with its stderr passed through; resolves with its stdout parsed as
 * JSON, rejects naming `what` when it exits with another code than 0.
 */
export function spawnJson<T>(
  script: string,
  args: readonly string[],
  what: string,
  nodeArgs: readonly string[] = [],
): Promise<T> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...nodeArgs, "--import", "tsx", script, ...args], {
      cwd: ROOT,
      stdio: ["ignore", "pipe", "inherit"],
    });
    let output = "";
    child.stdout.setEncoding("utf8");
    child.stdout.on("data", (chunk: string) => {
      output += chunk;
    });
    child.on("error", reject);
    child.on("close", (code) => {
      if (code !== 0) {
        reject(new Error(`${what} exited with ${String(code)}`));
        return;
      }
      resolve(JSON.parse(output) as T);
    });
  });
}
