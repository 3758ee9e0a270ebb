/**
 * A process that holds a checkpoint: `holder.ts <path> [--read]` opens it, prints `holding <pid>`,
 * and keeps it until it reads a line on stdin or is killed; then it closes it and prints
 * `released`. It appends a record of its own, unless `--read` (it then only reads what is there,
 * as a batch does before it runs anything).
 */
import { fileCheckpoint } from "../../src/checkpoint/index.js";

const [path, mode] = process.argv.slice(2);
if (path === undefined) throw new Error("usage: holder.ts <path> [--read]");
const checkpoint = fileCheckpoint(path);
Array.from(checkpoint.load());
if (mode !== "--read") {
  checkpoint.append({ holder: process.pid });
  await checkpoint.flush();
}
console.log(`holding ${String(process.pid)}`);
await new Promise<void>((resolve) => {
  process.stdin.once("data", () => {
    process.stdin.destroy();
    resolve();
  });
});
await checkpoint.close();
console.log("released");
