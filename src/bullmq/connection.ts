/**
 * Redis connections for both sides: built from ioredis options (with what BullMQ requires) or
 * taken from the caller's ioredis instance, and a readiness check that gives up with a clear
 * error instead of waiting forever for a Redis that is not there.
 */
import { Redis, type RedisOptions } from "ioredis";
import { RedisUnavailableError } from "./errors.js";

/**
 * ioredis options, an ioredis instance (which the library then never closes), or a
 * `redis://` / `rediss://` URL.
 */
export type Connection = RedisOptions | Redis | string;

/** A client the library owns (closes) or borrows (leaves open). */
export interface Client {
  readonly redis: Redis;
  readonly owned: boolean;
}

/**
 * The one shape both sides need: a client, and how to make more like it. `onError` hears the
 * errors of a client the library opens (an ioredis client without an `error` listener prints
 * each one as "Unhandled error event"); a borrowed instance keeps its owner's listeners.
 */
export function openClient(
  connection: unknown,
  name: string,
  onError: (error: unknown) => void,
): Client {
  if (connection instanceof Redis) return { redis: connection as Redis, owned: false };
  // BullMQ needs commands to wait for a reconnection rather than fail after a few retries.
  let redis: Redis;
  if (typeof connection === "string" && /^rediss?:\/\//i.test(connection)) {
    redis = new Redis(connection, { maxRetriesPerRequest: null });
  } else if (typeof connection === "object" && connection !== null) {
    const options: RedisOptions = { ...(connection as RedisOptions), maxRetriesPerRequest: null };
    // ioredis's own overloads reject its RedisOptions under exactOptionalPropertyTypes.
    const RedisClient = Redis as unknown as new (options: RedisOptions) => Redis;
    redis = new RedisClient(options);
  } else {
    throw new TypeError(
      `${name} must be ioredis options, an ioredis instance, or a redis:// or rediss:// URL`,
    );
  }
  redis.on("error", onError);
  return { redis, owned: true };
}

/** A second connection to the same server (for blocking reads and subscriptions). */
export function duplicate(client: Client, onError: (error: unknown) => void): Client {
  const redis = client.redis.duplicate({ maxRetriesPerRequest: null });
  redis.on("error", onError);
  return { redis, owned: true };
}

/**
 * The connections for batches' blocking reads, kept between batches (opening one per batch
 * cost a TCP handshake and a ready check each time): one per running batch, the idle ones
 * reused, all closed with the queue.
 */
export class ConnectionPool {
  readonly #base: Client;
  readonly #onError: (error: unknown) => void;
  readonly #idle: Client[] = [];
  #closed = false;

  constructor(base: Client, onError: (error: unknown) => void) {
    this.#base = base;
    this.#onError = onError;
  }

  /** An idle connection, or a new one. */
  take(): Client {
    return this.#idle.pop() ?? duplicate(this.#base, this.#onError);
  }

  /** Gives a connection back: kept when it is ready and the pool open, else closed. */
  async give(client: Client): Promise<void> {
    if (!this.#closed && client.redis.status === "ready") this.#idle.push(client);
    else await closeClient(client);
  }

  /** Closes the idle connections; those given back later are closed then. */
  async close(): Promise<void> {
    this.#closed = true;
    await Promise.all(this.#idle.splice(0).map(closeClient));
  }
}

/**
 * Closes a client the library opened: `QUIT` (pending replies first), or at once when it is not
 * connected or Redis does not answer within `patience` ms (a paused Redis never would).
 */
export async function closeClient(client: Client, patience = 1_000): Promise<void> {
  if (!client.owned) return;
  const redis = client.redis;
  if (redis.status === "ready") await within(redis.quit(), patience);
  redis.disconnect();
}

/**
 * Waits for `promise` (its failure ignored), but no longer than `ms`: for the closing steps
 * that wait on Redis, which a paused Redis would never answer. True when it settled in time.
 */
export async function within(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<boolean>((resolve) => {
    timer = setTimeout(resolve, ms, false);
  });
  const settled = promise.then(
    () => true,
    () => true,
  );
  const inTime = await Promise.race([settled, late]);
  clearTimeout(timer);
  return inTime;
}

/** Where `redis` connects, for messages: `host:port` or a socket path. */
export function address(redis: Redis): string {
  const options = redis.options;
  if (typeof options.path === "string" && options.path !== "") return options.path;
  return `${options.host ?? "localhost"}:${String(options.port ?? 6379)}`;
}

/**
 * Resolves once `redis` is ready; rejects with {@link RedisUnavailableError} when it is not
 * within `timeout` ms (ioredis itself would keep retrying for ever).
 */
export function whenReady(redis: Redis, timeout: number): Promise<void> {
  if (redis.status === "ready") return Promise.resolve();
  return new Promise((resolve, reject) => {
    let lastError: unknown;
    const onError = (error: unknown) => {
      lastError = error;
    };
    const finish = () => {
      clearTimeout(timer);
      redis.off("ready", onReady);
      redis.off("error", onError);
    };
    const onReady = () => {
      finish();
      resolve();
    };
    const timer = setTimeout(() => {
      finish();
      reject(new RedisUnavailableError(address(redis), timeout, lastError));
    }, timeout);
    redis.on("ready", onReady);
    redis.on("error", onError);
    if (redis.status === "wait") redis.connect().catch(onError);
  });
}
