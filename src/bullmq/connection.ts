/**
 * Redis connections for both sides: built from ioredis options (with what BullMQ requires) or
 * taken from the caller's ioredis instance, and a readiness check that gives up with a clear
 * error instead of waiting forever for a Redis that is not there.
 */
import { Redis, type RedisOptions } from "ioredis";
import { PipelineError } from "../index.js";
import { brandClass } from "../errors/brand.js";

/** ioredis options, or an ioredis instance (which the library then never closes). */
export type Connection = RedisOptions | Redis;

/**
 * Redis could not be reached within `connectTimeout` ms.
 *
 * @example
 * ```ts
 * import { RedisUnavailableError } from "async-pipeline/bullmq";
 *
 * function explain(error: unknown): string {
 *   return error instanceof RedisUnavailableError ? `no Redis at ${error.address}` : String(error);
 * }
 * ```
 */
export class RedisUnavailableError extends PipelineError {
  /** Always `"RedisUnavailableError"`. */
  override name = "RedisUnavailableError" as const;

  /** The address tried, such as `127.0.0.1:6379` or a socket path. */
  readonly address: string;

  /** How long the library waited, in ms. */
  readonly timeout: number;

  constructor(address: string, timeout: number, cause: unknown) {
    const reason = cause instanceof Error ? `: ${cause.message}` : "";
    super(`Could not connect to Redis at ${address} within ${String(timeout)} ms${reason}`, {
      cause,
    });
    this.address = address;
    this.timeout = timeout;
  }
}

// `instanceof RedisUnavailableError` holds for an instance made by either build.
brandClass(RedisUnavailableError, "RedisUnavailableError");

/** A client the library owns (closes) or borrows (leaves open). */
export interface Client {
  readonly redis: Redis;
  readonly owned: boolean;
}

/** The one shape both sides need: a connected client, and how to make more like it. */
export function openClient(connection: unknown, name: string): Client {
  if (connection instanceof Redis) return { redis: connection as Redis, owned: false };
  if (typeof connection !== "object" || connection === null) {
    throw new TypeError(`${name} must be ioredis options or an ioredis instance`);
  }
  // BullMQ needs commands to wait for a reconnection rather than fail after a few retries.
  const options: RedisOptions = { ...(connection as RedisOptions), maxRetriesPerRequest: null };
  // ioredis's own overloads reject its RedisOptions under exactOptionalPropertyTypes.
  const RedisClient = Redis as unknown as new (options: RedisOptions) => Redis;
  return { redis: new RedisClient(options), owned: true };
}

/** A second connection to the same server (for blocking reads and subscriptions). */
export function duplicate(client: Client): Client {
  return { redis: client.redis.duplicate({ maxRetriesPerRequest: null }), owned: true };
}

/**
 * The connections for batches' blocking reads, kept between batches (opening one per batch
 * cost a TCP handshake and a ready check each time): one per running batch, the idle ones
 * reused, all closed with the queue.
 */
export class ConnectionPool {
  readonly #base: Client;
  readonly #idle: Client[] = [];
  #closed = false;

  constructor(base: Client) {
    this.#base = base;
  }

  /** An idle connection, or a new one. */
  take(): Client {
    return this.#idle.pop() ?? duplicate(this.#base);
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

/** Closes a client the library opened. */
export async function closeClient(client: Client): Promise<void> {
  if (!client.owned) return;
  if (client.redis.status === "ready") {
    await client.redis.quit().catch(() => {
      client.redis.disconnect();
    });
  } else {
    client.redis.disconnect();
  }
}

function address(redis: Redis): string {
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
