/**
 * One place that turns a RedisTarget into an ioredis client (a single server
 * or a Cluster) with the behaviour flowscope needs from it:
 *
 * - no offline queue and no automatic re-sending: a command issued while the
 *   connection is down fails at once, so the caller (the sink's queue, the
 *   relay's loop) decides what is retried, and nothing is sent twice behind
 *   its back;
 * - reconnects forever with a capped backoff: a Redis that goes away and
 *   comes back is picked up again without a restart.
 */
import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import type { RedisTarget } from './url.js';

export type RedisClient = Redis | Cluster;

export interface ClientOptions {
  /** CLIENT SETNAME, to tell flowscope's connections apart in CLIENT LIST */
  connectionName: string;
  /** longest wait between reconnection attempts */
  maxBackoffMs?: number;
  connectTimeoutMs?: number;
}

/** Wrong credentials or missing permissions: retrying will not help. */
export class RedisAuthError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RedisAuthError';
  }
}

/** Redis did not answer in time (down, unreachable, or too slow). */
export class RedisUnreachableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RedisUnreachableError';
  }
}

const AUTH_ERROR = /^(WRONGPASS|NOAUTH|NOPERM)|invalid password|invalid username/i;

export function isAuthError(err: unknown): boolean {
  return AUTH_ERROR.test((err as Error)?.message ?? '');
}

function tlsOptions(target: RedisTarget): ConnectionOptions | undefined {
  if (!target.tls) return undefined;
  const tls: ConnectionOptions = { rejectUnauthorized: !target.tlsInsecure };
  if (target.tlsCaFile) tls.ca = readFileSync(target.tlsCaFile);
  if (target.tlsServername) tls.servername = target.tlsServername;
  return tls;
}

export function createRedisClient(target: RedisTarget, options: ClientOptions): RedisClient {
  const maxBackoff = options.maxBackoffMs ?? 2000;
  const backoff = (times: number): number => Math.min(50 * 2 ** Math.min(times, 10), maxBackoff);
  const common: RedisOptions = {
    username: target.username,
    password: target.password,
    tls: tlsOptions(target),
    connectionName: options.connectionName,
    connectTimeout: options.connectTimeoutMs ?? 5000,
    autoResendUnfulfilledCommands: false,
    maxRetriesPerRequest: 0,
    lazyConnect: true,
  };
  if (target.cluster) {
    return new Cluster(target.endpoints, {
      redisOptions: common,
      enableOfflineQueue: false,
      clusterRetryStrategy: backoff,
      lazyConnect: true,
      slotsRefreshTimeout: 2000,
    });
  }
  return new Redis({
    ...common,
    host: target.endpoints[0].host,
    port: target.endpoints[0].port,
    db: target.db,
    enableOfflineQueue: false,
    retryStrategy: backoff,
  });
}

/**
 * Starts connecting and waits until the client is ready, at most timeoutMs.
 * Rejects with RedisAuthError for bad credentials, RedisUnreachableError when
 * it is not ready in time (the client keeps trying in the background).
 */
export function connectClient(client: RedisClient, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    let lastError: Error | undefined;
    const done = (err?: Error): void => {
      clearTimeout(timer);
      client.off('ready', onReady);
      client.off('error', onError);
      if (err) reject(err);
      else resolve();
    };
    const onReady = (): void => done();
    const onError = (err: Error): void => {
      lastError = err;
      if (isAuthError(err)) done(new RedisAuthError(`authentication failed: ${err.message.split('\n')[0]}`));
    };
    const timer = setTimeout(() => {
      const why = lastError ? describeError(lastError) : 'no answer';
      done(new RedisUnreachableError(`not reachable within ${timeoutMs} ms (${why})`));
    }, timeoutMs);
    client.on('ready', onReady);
    client.on('error', onError);
    if (client.status === 'ready') return done();
    // connect() rejects on the first failure even though the client retries; the events above decide.
    if (client.status === 'wait') client.connect().catch(() => undefined);
  });
}

/** The short cause of a connection error (ECONNREFUSED, ETIMEDOUT, a Redis error line). */
export function describeError(err: Error): string {
  const e = err as Error & { code?: string; lastNodeError?: Error };
  if (e.lastNodeError) return describeError(e.lastNodeError);
  if (e.code) return e.code;
  return e.message.split('\n')[0];
}

export function isReady(client: RedisClient): boolean {
  return client.status === 'ready';
}
