/**
 * Creates the record sinks other than the in-memory store from the agent's
 * configuration. This is the place to plug the Redis streams sink in: it
 * implements RecordSink (engine/sink.ts) and is built here from SinkOptions.
 */
import type { InterfaceReport } from '../engine/interface-accounting.js';
import type { RecordSink } from '../engine/sink.js';
import { connectClient, createRedisClient, RedisAuthError, RedisUnreachableError } from '../redis/connection.js';
import { DEFAULT_BUFFER_RECORDS } from '../redis/defaults.js';
import { RedisStreamSink } from '../redis/stream-sink.js';
import { parseRedisUrl, RedisUrlError, type RedisTarget } from '../redis/url.js';

/** Options a sink factory gets from the agent configuration. */
export interface SinkOptions {
  node: string;
  redisUrl?: string;
  /** approximate MAXLEN of each stream */
  redisMaxLen?: number;
  /** records the Redis sink buffers at most while Redis is down or slow */
  redisBuffer?: number;
  /** XADDs per pipeline of the Redis sink */
  redisBatch?: number;
  /** one Redis entry per flow per this interval (undefined: one per export) */
  redisExportIntervalMs?: number;
  /** per-interface counters, for sinks that publish them (the Redis sink does) */
  interfaces?: () => InterfaceReport[];
  /** where sinks log connection trouble and drops */
  log?: { info(obj: object, msg: string): void; warn(obj: object, msg: string): void };
}

/** Raised when a configured sink cannot be created; the message is for the user. */
export class SinkUnavailableError extends Error {}

export async function createSinks(options: SinkOptions): Promise<RecordSink[]> {
  const sinks: RecordSink[] = [];
  if (options.redisUrl) sinks.push(await createRedisSink({ ...options, redisUrl: options.redisUrl }));
  return sinks;
}

const CONNECT_WAIT_MS = 3000;

/**
 * Builds the Redis streams sink from the agent's sink options: parses the URL,
 * connects, and sorts start-up failures into the two kinds the agent treats
 * differently:
 *
 * - the user's mistake (malformed URL, wrong password or ACL user): a
 *   SinkUnavailableError, and `flowscope run` exits 2 with one line;
 * - Redis not reachable yet: the agent starts anyway, degraded. The sink
 *   buffers, its status says why, and it writes the backlog once Redis answers.
 */
export async function createRedisSink(options: SinkOptions & { redisUrl: string }): Promise<RedisStreamSink> {
  let target: RedisTarget;
  try {
    target = parseRedisUrl(options.redisUrl);
  } catch (err) {
    if (err instanceof RedisUrlError) throw new SinkUnavailableError(`--redis: ${err.message}`);
    throw err;
  }
  let client;
  try {
    client = createRedisClient(target, { connectionName: `flowscope-agent-${options.node}` });
  } catch (err) {
    throw new SinkUnavailableError(`--redis ${target.redacted}: ${(err as Error).message.split('\n')[0]}`);
  }
  const sink = new RedisStreamSink({
    node: options.node,
    client,
    url: target.redacted,
    maxLen: options.redisMaxLen ?? 1_000_000,
    bufferRecords: options.redisBuffer ?? DEFAULT_BUFFER_RECORDS,
    batchSize: options.redisBatch,
    exportIntervalMs: options.redisExportIntervalMs,
    interfaces: options.interfaces,
    log: options.log,
  });
  try {
    await connectClient(client, CONNECT_WAIT_MS);
  } catch (err) {
    if (err instanceof RedisAuthError) {
      await sink.close();
      throw new SinkUnavailableError(`--redis ${target.redacted}: ${err.message}`);
    }
    if (!(err instanceof RedisUnreachableError)) throw err;
    options.log?.warn({ redis: target.redacted, reason: err.message }, 'redis sink: Redis is not reachable; starting degraded, records are buffered until it is');
  }
  return sink;
}
