/** Vitest global setup: one real redis-server for the BullMQ tests, stopped by PID afterwards. */
import type { TestProject } from "vitest/node";
import { ensureRedisServer, startRedisServer } from "../../demo/redis-server.js";

declare module "vitest" {
  export interface ProvidedContext {
    redisUrl: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  ensureRedisServer();
  const server = await startRedisServer();
  project.provide("redisUrl", server.url);
  return () => server.stop();
}
