/**
 * The worker's two steps around one item, each a single Lua script, so that an item costs one
 * Redis command before it runs and one after (not a MULTI: on a connection that BullMQ shares,
 * ioredis copies BullMQ's many scripts onto every MULTI it builds, which cost more CPU per job
 * than BullMQ's own work).
 */
import type { Redis } from "ioredis";

/** What {@link Scripts.begin} found: run the item, skip it (batch stopped), or it was settled. */
export type Begin = "run" | "stopped" | "settled";

/** The worker's scripts on one connection. */
export interface Scripts {
  /**
   * Before an item runs: `stopped` when its batch's stop flag is set; `settled` when its
   * result is in Redis already (the index is then pushed on the done list again, for the
   * producer that may not have read it); `run` otherwise.
   */
  begin(stop: string, results: string, done: string, field: string): Promise<Begin>;
  /**
   * After an item ran: stores its result (unless one is there, so the first worker's stands)
   * and pushes `entry` on the done list; with `record` empty, only pushes `entry`.
   */
  finish(
    results: string,
    done: string,
    field: string,
    entry: string,
    record: string,
  ): Promise<void>;
}

const BEGIN = `
if redis.call("EXISTS", KEYS[1]) == 1 then return 1 end
if redis.call("HEXISTS", KEYS[2], ARGV[1]) == 1 then
  redis.call("RPUSH", KEYS[3], ARGV[1])
  return 2
end
return 0`;

const FINISH = `
if ARGV[3] ~= "" then redis.call("HSETNX", KEYS[1], ARGV[1], ARGV[3]) end
redis.call("RPUSH", KEYS[2], ARGV[2])
return 0`;

const BEGIN_NAME = "asyncPipelineBegin";
const FINISH_NAME = "asyncPipelineFinish";

interface WithScripts {
  [BEGIN_NAME](stop: string, results: string, done: string, field: string): Promise<number>;
  [FINISH_NAME](
    results: string,
    done: string,
    field: string,
    entry: string,
    record: string,
  ): Promise<number>;
}

const outcomes: readonly Begin[] = ["run", "stopped", "settled"];

/** Defines the scripts on `redis` (once per connection; ioredis loads them on first use). */
export function scriptsOn(redis: Redis): Scripts {
  if (!(BEGIN_NAME in redis)) {
    redis.defineCommand(BEGIN_NAME, { lua: BEGIN, numberOfKeys: 3 });
    redis.defineCommand(FINISH_NAME, { lua: FINISH, numberOfKeys: 2 });
  }
  const defined = redis as unknown as WithScripts;
  return {
    async begin(stop, results, done, field) {
      return outcomes[await defined[BEGIN_NAME](stop, results, done, field)] ?? "run";
    },
    async finish(results, done, field, entry, record) {
      await defined[FINISH_NAME](results, done, field, entry, record);
    },
  };
}
