/**
 * Creates the record sinks other than the in-memory store from the agent's
 * configuration. This is the place to plug the Redis streams sink in: it
 * implements RecordSink (sink.ts) and is built here from SinkOptions.
 */
import type { RecordSink, SinkOptions } from '../engine/sink.js';
import { createRedisSink } from './redis-sink.js';

export async function createSinks(options: SinkOptions): Promise<RecordSink[]> {
  const sinks: RecordSink[] = [];
  if (options.redisUrl) sinks.push(await createRedisSink({ ...options, redisUrl: options.redisUrl }));
  return sinks;
}
