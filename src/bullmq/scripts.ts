/**
 * The Lua scripts of both sides, each one Redis command, so that every step that reads and
 * writes a batch's keys is atomic. Scripts, not MULTIs: on a connection that BullMQ shares,
 * ioredis copies BullMQ's many scripts onto every MULTI it builds, which cost more CPU per job
 * than BullMQ's own work.
 *
 * The worker's two steps around its items: `begin` before an item whose batch it must check
 * in Redis, `finish` after the items that settled in one turn of the event loop (one command
 * for all of them). The producer's: `start` (take the batch's hold, write its meta record),
 * `renew` (keep the hold and the keys' expiry), `end` (delete keys, release the hold) and
 * `stop` (announce the stop).
 */
import type { Redis } from "ioredis";
import type { BatchKeys } from "./keys.js";
import { META_FIELDS, metaFromFields, type BatchMeta } from "./wire.js";

/** What {@link WorkerScripts.begin} found. */
export type BeginStatus =
  /** No meta record: the batch settled (or was discarded, or lost): run nothing, write nothing. */
  | "gone"
  /** Run the item. */
  | "run"
  /** The batch's stop flag is set: cancel the item. */
  | "stopped"
  /** Its result is in Redis already (pushed on the done list again): run nothing. */
  | "settled";

export interface Begin {
  readonly status: BeginStatus;
  /** The batch's meta record, when its run is not the one the worker passed. */
  readonly meta: BatchMeta | undefined;
}

/** One item's step in a {@link WorkerScripts.finish}. */
export interface Finished {
  /** The done-list entry: the index (its result's field), or `c<index>` for a cancelled item. */
  readonly entry: string;
  /** The result record as JSON; `""` for a cancelled item. */
  readonly record: string;
}

export interface WorkerScripts {
  /** Before an item: see {@link BeginStatus}. `run` is the run of the meta the worker holds. */
  begin(keys: BatchKeys, field: string, run: string): Promise<Begin>;
  /**
   * After items settled: records each result (unless one is there: the first worker's
   * stands) and pushes their entries on the done list, giving both keys the meta record's
   * expiry; nothing when the meta record is gone (the batch settled). With `stop` (an announce
   * message), also sets the stop flag and publishes the stop, if `run` is still the batch's.
   */
  finish(
    keys: BatchKeys,
    channel: string,
    run: string,
    stop: string,
    items: readonly Finished[],
  ): Promise<void>;
}

// Keys: meta, stop, results, done. Argv: field, the run the worker holds.
const BEGIN = `
local meta = redis.call("HMGET", KEYS[1], ${META_FIELDS.map((field) => `"${field}"`).join(", ")})
if not meta[1] then return {0} end
local status = 1
if redis.call("EXISTS", KEYS[2]) == 1 then
  status = 2
elseif meta[7] == "1" and redis.call("HEXISTS", KEYS[3], ARGV[1]) == 1 then
  redis.call("RPUSH", KEYS[4], ARGV[1])
  local ttl = redis.call("PTTL", KEYS[1])
  if ttl > 0 and redis.call("PTTL", KEYS[4]) == -1 then redis.call("PEXPIRE", KEYS[4], ttl) end
  status = 3
end
if meta[1] == ARGV[2] then return {status} end
return {status, meta[1], meta[2], meta[3], meta[4], meta[5], meta[6], meta[7]}`;

// Keys: meta, results, done, stop. Argv: channel, run, stop message ("" for none), the done
// entries joined by ",", and their records (JSON, "" for a cancelled item) joined by NUL (which
// JSON never holds): five arguments however many items, for they cost the worker more to send
// than Redis to split.
const FINISH = `
local ttl = redis.call("PTTL", KEYS[1])
if ttl == -2 then return 0 end
local entries = {}
local records = ARGV[5]
local at = 1
for entry in string.gmatch(ARGV[4], "[^,]+") do
  local stop = string.find(records, "\\0", at, true)
  local record
  if stop then
    record = string.sub(records, at, stop - 1)
    at = stop + 1
  else
    record = string.sub(records, at)
  end
  if record ~= "" then redis.call("HSETNX", KEYS[2], entry, record) end
  entries[#entries + 1] = entry
end
redis.call("RPUSH", KEYS[3], unpack(entries))
if ttl > 0 then
  if redis.call("PTTL", KEYS[2]) == -1 then redis.call("PEXPIRE", KEYS[2], ttl) end
  if redis.call("PTTL", KEYS[3]) == -1 then redis.call("PEXPIRE", KEYS[3], ttl) end
end
if ARGV[3] ~= "" and redis.call("HGET", KEYS[1], "g") == ARGV[2] then
  if ttl > 0 then redis.call("SET", KEYS[4], "1", "PX", ttl) else redis.call("SET", KEYS[4], "1") end
  redis.call("PUBLISH", ARGV[1], ARGV[3])
end
return 1`;

// Keys: hold, meta, stop, done, results, yielded. Argv: the producer's id, lockDuration,
// keepFor, then the meta record's fields and values.
const START = `
local holder = redis.call("GET", KEYS[1])
if holder and holder ~= ARGV[1] then return 0 end
redis.call("SET", KEYS[1], ARGV[1], "PX", ARGV[2])
redis.call("DEL", KEYS[3], KEYS[4])
redis.call("HSET", KEYS[2], unpack(ARGV, 4))
for i = 2, #KEYS do redis.call("PEXPIRE", KEYS[i], ARGV[3]) end
return 1`;

// Keys: hold, then the keys whose expiry it keeps (meta first). Argv: the producer's id,
// lockDuration, keepFor. -1: another producer holds the batch, or ran it since (its run is in
// the meta record); 0: the meta record is gone (and the hold is kept only if it was still
// ours); 1: held.
const RENEW = `
local holder = redis.call("GET", KEYS[1])
if holder and holder ~= ARGV[1] then return -1 end
local run = redis.call("HGET", KEYS[2], "g")
if run and run ~= ARGV[1] then return -1 end
if not run then
  if holder then redis.call("SET", KEYS[1], ARGV[1], "PX", ARGV[2]) end
  return 0
end
redis.call("SET", KEYS[1], ARGV[1], "PX", ARGV[2])
for i = 2, #KEYS do redis.call("PEXPIRE", KEYS[i], ARGV[3]) end
return 1`;

// Keys: hold, then the keys to delete. Argv: the producer's id ("" for one that holds nothing).
// 0 (nothing deleted) when another producer holds the batch.
const END = `
local holder = redis.call("GET", KEYS[1])
if holder and holder ~= ARGV[1] then return 0 end
redis.call("DEL", unpack(KEYS))
return 1`;

// Keys: meta, done. Argv: the run, keepFor. Wakes the run's blocking read, if it is the
// batch's run (never recreating the done list of a batch that ended).
const WAKE = `
if redis.call("HGET", KEYS[1], "g") ~= ARGV[1] then return 0 end
redis.call("RPUSH", KEYS[2], "wake")
redis.call("PEXPIRE", KEYS[2], ARGV[2])
return 1`;

const NAMES = {
  begin: "asyncPipelineBegin",
  finish: "asyncPipelineFinish",
  start: "asyncPipelineStart",
  renew: "asyncPipelineRenew",
  end: "asyncPipelineEnd",
  wake: "asyncPipelineWake",
} as const;

type Command = (...args: (string | number)[]) => Promise<unknown>;
type Defined = Record<(typeof NAMES)[keyof typeof NAMES], Command>;

/** Defines the scripts on `redis` (once per connection; ioredis loads them on first use). */
function define(redis: Redis): Defined {
  if (!(NAMES.begin in redis)) {
    redis.defineCommand(NAMES.begin, { lua: BEGIN, numberOfKeys: 4 });
    redis.defineCommand(NAMES.finish, { lua: FINISH, numberOfKeys: 4 });
    redis.defineCommand(NAMES.start, { lua: START, numberOfKeys: 6 });
    redis.defineCommand(NAMES.wake, { lua: WAKE, numberOfKeys: 2 });
    // The variadic ones take their key count as their first argument.
    redis.defineCommand(NAMES.renew, { lua: RENEW });
    redis.defineCommand(NAMES.end, { lua: END });
  }
  return redis as unknown as Defined;
}

const STATUSES: readonly BeginStatus[] = ["gone", "run", "stopped", "settled"];

/** The worker's scripts on `redis`. */
export function workerScripts(redis: Redis): WorkerScripts {
  const defined = define(redis);
  return {
    async begin(keys, field, run) {
      const reply = (await defined[NAMES.begin](
        keys.meta,
        keys.stop,
        keys.results,
        keys.done,
        field,
        run,
      )) as (number | string | null)[];
      return {
        status: STATUSES[reply[0] as number] ?? "gone",
        meta: reply.length > 1 ? metaFromFields(reply.slice(1) as (string | null)[]) : undefined,
      };
    },
    async finish(keys, channel, run, stop, items) {
      let entries = "";
      let records = "";
      for (const [at, item] of items.entries()) {
        entries += at === 0 ? item.entry : `,${item.entry}`;
        records += at === 0 ? item.record : `\u0000${item.record}`;
      }
      await defined[NAMES.finish](
        keys.meta,
        keys.results,
        keys.done,
        keys.stop,
        channel,
        run,
        stop,
        entries,
        records,
      );
    },
  };
}

/** The producer's scripts on `redis`. */
export interface ProducerScripts {
  /**
   * Takes the batch's hold for `holder` (or keeps it) and writes its meta record (clearing a
   * stop flag and done list a previous run left), every key expiring `keepFor` ms later.
   * False when another producer holds the batch.
   */
  start(
    keys: BatchKeys,
    holder: string,
    lockDuration: number,
    keepFor: number,
    meta: readonly string[],
  ): Promise<boolean>;
  /**
   * Keeps the hold for `lockDuration` ms more and the batch's keys for `keepFor`: `lost` when
   * another producer holds the batch or ran it since, `gone` when its meta record is gone
   * (Redis lost it, or, if this producer's hold lapsed, another producer may have run it).
   */
  renew(
    keys: BatchKeys,
    holder: string,
    lockDuration: number,
    keepFor: number,
  ): Promise<"held" | "lost" | "gone">;
  /**
   * Deletes `keys` and the hold, unless another producer holds the batch (false then).
   * `holder` is `""` for a caller that holds nothing (`discard`).
   */
  end(hold: string, keys: readonly string[], holder: string): Promise<boolean>;
  /** Ends the blocking read of run `run` early (`wake` on its done list), if it still runs. */
  wake(keys: BatchKeys, run: string, keepFor: number): Promise<void>;
}

export function producerScripts(redis: Redis): ProducerScripts {
  const defined = define(redis);
  return {
    async start(keys, holder, lockDuration, keepFor, meta) {
      const reply = await defined[NAMES.start](
        keys.hold,
        keys.meta,
        keys.stop,
        keys.done,
        keys.results,
        keys.yielded,
        holder,
        lockDuration,
        keepFor,
        ...meta,
      );
      return reply === 1;
    },
    async renew(keys, holder, lockDuration, keepFor) {
      const kept = [keys.hold, keys.meta, keys.results, keys.yielded, keys.stop, keys.done];
      const reply = await defined[NAMES.renew](kept.length, ...kept, holder, lockDuration, keepFor);
      return reply === 1 ? "held" : reply === 0 ? "gone" : "lost";
    },
    async end(hold, keys, holder) {
      const reply = await defined[NAMES.end](keys.length + 1, hold, ...keys, holder);
      return reply === 1;
    },
    async wake(keys, run, keepFor) {
      await defined[NAMES.wake](keys.meta, keys.done, run, keepFor);
    },
  };
}
