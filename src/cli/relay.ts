/**
 * flowscope relay: serves the fleet's flows from Redis (docs/redis.md).
 *
 *   flowscope relay --redis URL [--listen HOST:PORT] [--group NAME] [--consumer NAME] [options]
 *
 * Options: src/config/relay.ts (flags, FLOWSCOPE_* variables, --config FILE).
 *
 * Bad flags and a malformed URL or wrong credentials exit 2 with one line; an
 * unreachable Redis does not stop the relay: it serves a degraded status
 * (/readyz 503 with the reason) and keeps reconnecting.
 */
import { startServer } from '../api/server.js';
import { ConfigError, optionsHelp, readConfigFile } from '../config/config.js';
import { RELAY_OPTIONS, resolveRelayConfig, type RelayConfig } from '../config/relay.js';
import { createLogger } from '../log.js';
import { RedisAuthError } from '../redis/connection.js';
import { Relay } from '../relay/relay.js';
import { RELAY_FLAGS } from './flags.js';
import { version } from './run.js';
import { RuntimeFailure, UsageError, parseCommandArgs } from './usage.js';

export const RELAY_HELP = `Usage: flowscope relay --redis URL [--listen HOST:PORT] [--group NAME] [--consumer NAME] [options]

Reads every node's stream (flowscope:{NODE}:flows) with a Redis consumer group
and serves the agent's HTTP API for the whole fleet, with node= as a filter and
by=node in /api/v1/top. See docs/redis.md.

Every option is also an environment variable (in brackets; FLOWSCOPE_REDIS_URL
for --redis too) and a key of the YAML/JSON file given by --config FILE
[FLOWSCOPE_CONFIG]; flags win over the environment, which wins over the file.

${optionsHelp(RELAY_OPTIONS)}`;

export function loadRelayConfig(args: string[], env: NodeJS.ProcessEnv): RelayConfig | undefined {
  const values: Record<string, string | string[] | boolean | undefined> = parseCommandArgs('relay', args, RELAY_FLAGS) as Record<string, string | string[] | boolean | undefined>;
  if (values.help) return undefined;
  const file = (values.config as string | undefined) ?? (env.FLOWSCOPE_CONFIG || undefined);
  try {
    return resolveRelayConfig({ flags: values as Record<string, string | string[] | undefined>, env, file: file ? readConfigFile(file, RELAY_OPTIONS) : {} });
  } catch (err) {
    if (err instanceof ConfigError) throw new UsageError(`relay: ${err.message}`);
    throw err;
  }
}

/** Runs the relay until SIGINT/SIGTERM. */
export async function relay(args: string[], env: NodeJS.ProcessEnv, out: (text: string) => void): Promise<void> {
  const config = loadRelayConfig(args, env);
  if (!config) return out(RELAY_HELP + '\n');
  const log = await createLogger(config.logLevel, config.logFormat);
  const r = new Relay({
    target: config.target,
    group: config.group,
    consumer: config.consumer,
    version: version(),
    storeSize: config.storeSize,
    top: { bucketMs: config.topBucketMs, horizonMs: config.topHorizonMs, capacity: config.topCapacity },
    claimIdleMs: config.claimIdleMs,
    ...(config.partitions > 0
      ? { scaleOut: { partitions: config.partitions, peerListen: config.peerListen, peerUrl: config.peerUrl, leaseMs: config.leaseMs, token: config.token } }
      : {}),
    log,
  });
  try {
    await r.start();
  } catch (err) {
    if (err instanceof RedisAuthError) throw new UsageError(`relay: --redis ${config.target.redacted}: ${err.message}`);
    throw new RuntimeFailure(`relay: ${(err as Error).message.split('\n')[0]}`);
  }
  let server;
  try {
    server = await startServer(config.listen, { services: r.services(), version: version(), token: config.token, maxFollowers: config.maxFollowers }, log);
  } catch (err) {
    await r.close();
    throw new RuntimeFailure(`relay: cannot listen on ${config.listen.host}:${config.listen.port}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  log.info({ url: server.url, redis: config.target.redacted, group: config.group, consumer: config.consumer }, 'flowscope relay running');
  await new Promise<void>((resolve) => {
    const shutdown = (signal: string): void => {
      log.info({ signal }, 'stopping');
      resolve();
    };
    process.once('SIGINT', shutdown);
    process.once('SIGTERM', shutdown);
  });
  await server.close();
  await r.close();
  log.info('relay stopped');
}
