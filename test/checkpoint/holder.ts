/**
 * A process that holds a checkpoint: `holder.ts <path>` opens it, prints `holding <pid>`, and
 * keeps it until it reads a line on stdin or is killed; then it closes it and prints `released`.
 */
import { fileCheckpoint } from "../../src/checkpoint/index.js";

const path = process.argv[2];
if (path === undefined) throw new Error("usage: holder.ts <path>");
const checkpoint = fileCheckpoint(path);
checkpoint.load();
checkpoint.append({ holder: process.pid });
await checkpoint.flush();
console.log(`holding ${String(process.pid)}`);
await new Promise<void>((resolve) => {
  process.stdin.once("data", () => {
    process.stdin.destroy();
    resolve();
  });
});
await checkpoint.close();
console.log("released");
