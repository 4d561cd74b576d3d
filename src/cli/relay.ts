/**
 * flowscope relay: serves the fleet's flows from Redis (docs/redis.md).
 *
 *   flowscope relay --redis URL [--listen HOST:PORT] [--group NAME] [--consumer NAME] [options]
 *
 * Bad flags and a malformed URL or wrong credentials exit 2 with one line; an
 * unreachable Redis does not stop the relay: it serves a degraded status
 * (/readyz 503 with the reason) and keeps reconnecting.
 */
import { hostname } from 'node:os';
import { formatDuration, parseDuration } from '../flow/duration.js';
import { DEFAULT_TOP } from '../engine/top/top-windows.js';
import { startServer } from '../api/server.js';
import { isLoopbackListen, parseListen } from '../lib/listen.js';
import { createLogger } from '../log.js';
import { RedisAuthError } from '../redis/connection.js';
import { Relay } from '../relay/relay.js';
import { parseRedisUrl, RedisUrlError, type RedisTarget } from '../redis/url.js';
import { version } from './run.js';
import { RuntimeFailure, UsageError, parseCommandArgs } from './usage.js';

export const RELAY_HELP = `Usage: flowscope relay --redis URL [--listen HOST:PORT] [--group NAME] [--consumer NAME] [options]

Reads every node's stream (flowscope:{NODE}:flows) with a Redis consumer group
and serves the agent's HTTP API for the whole fleet, with node= as a filter and
by=node in /api/v1/top. See docs/redis.md.

  --redis URL          redis://[USER:PASS@]HOST:PORT[/DB], rediss://..., redis+cluster://H1:P1,H2:P2   [FLOWSCOPE_REDIS_URL]
  --listen HOST:PORT   HTTP API address (default 127.0.0.1:9797)
  --group NAME         consumer group (default flowscope-relay); relays sharing a group split the entries
  --consumer NAME      consumer name in the group (default: the hostname); keep it across restarts
  --store-size N       records kept per node for /api/v1/flows (default 65536)
  --top-bucket D       granularity of the top-talkers windows (default ${formatDuration(DEFAULT_TOP.bucketMs)})
  --top-horizon D      longest top-talkers window, and how far back the streams are replayed at start (default ${formatDuration(DEFAULT_TOP.horizonMs)})
  --top-capacity N     groups kept per bucket, dimension and metric (default ${DEFAULT_TOP.capacity})
  --claim-idle D       take over entries another consumer left pending this long (default 1m)
  --token TOKEN        bearer token required by the HTTP API   [FLOWSCOPE_TOKEN]
  --insecure-no-auth   serve a non-loopback --listen without a token (refused otherwise)
  --max-followers N    clients following /api/v1/flows/stream at once; beyond, 503 (default 64)
  --log-level LEVEL    fatal, error, warn, info, debug, trace, silent (default info)
  --log-format F       auto, json or pretty (default auto)`;

interface RelayConfig {
  target: RedisTarget;
  listen: { host: string; port: number };
  group: string;
  consumer: string;
  storeSize: number;
  topBucketMs: number;
  topHorizonMs: number;
  topCapacity: number;
  claimIdleMs: number;
  token?: string;
  maxFollowers: number;
  logLevel: string;
  logFormat: 'auto' | 'json' | 'pretty';
}

const NAME = /^[A-Za-z0-9_.:@-]{1,128}$/;

function int(name: string, text: string | undefined, def: number, min: number, max: number): number {
  if (text === undefined) return def;
  const n = /^\d+$/.test(text) ? Number(text) : NaN;
  if (!(n >= min && n <= max)) throw new UsageError(`relay: --${name}: "${text}" must be an integer from ${min} to ${max}`);
  return n;
}

function duration(name: string, text: string | undefined, def: number, min: number): number {
  if (text === undefined) return def;
  const ms = parseDuration(text);
  if (ms === undefined || ms < min) throw new UsageError(`relay: --${name}: "${text}" is not a duration of at least ${formatDuration(min)} (e.g. 10s, 5m, 1h)`);
  return ms;
}

function oneOf<T extends string>(name: string, text: string | undefined, values: readonly T[], def: T): T {
  if (text === undefined) return def;
  if (!values.includes(text as T)) throw new UsageError(`relay: --${name}: "${text}" must be one of ${values.join(', ')}`);
  return text as T;
}

export function loadRelayConfig(args: string[], env: NodeJS.ProcessEnv): RelayConfig | undefined {
  const values: Record<string, string | boolean | undefined> = parseCommandArgs('relay', args, {
    redis: { type: 'string' },
    listen: { type: 'string' },
    group: { type: 'string' },
    consumer: { type: 'string' },
    'store-size': { type: 'string' },
    'top-bucket': { type: 'string' },
    'top-horizon': { type: 'string' },
    'top-capacity': { type: 'string' },
    'claim-idle': { type: 'string' },
    token: { type: 'string' },
    'insecure-no-auth': { type: 'boolean' },
    'max-followers': { type: 'string' },
    'log-level': { type: 'string' },
    'log-format': { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) return undefined;
  const str = (name: string): string | undefined => values[name] as string | undefined;
  const url = str('redis') ?? (env.FLOWSCOPE_REDIS_URL || env.FLOWSCOPE_REDIS || undefined);
  if (!url) throw new UsageError('relay: no Redis given; use --redis redis://HOST:PORT (or FLOWSCOPE_REDIS_URL)');
  let target: RedisTarget;
  try {
    target = parseRedisUrl(url);
  } catch (err) {
    if (err instanceof RedisUrlError) throw new UsageError(`relay: --redis: ${err.message}`);
    throw err;
  }
  const listenText = str('listen') ?? '127.0.0.1:9797';
  const listen = parseListen(listenText);
  if (!listen) throw new UsageError(`relay: --listen: "${listenText}" is not HOST:PORT (e.g. 127.0.0.1:9797)`);
  const group = str('group') ?? 'flowscope-relay';
  const consumer = str('consumer') ?? hostname();
  for (const [name, v] of [['group', group], ['consumer', consumer]] as const) {
    if (!NAME.test(v)) throw new UsageError(`relay: --${name}: "${v}" must be 1-128 of A-Z a-z 0-9 _ . : @ -`);
  }
  const topBucketMs = duration('top-bucket', str('top-bucket'), DEFAULT_TOP.bucketMs, 100);
  const topHorizonMs = duration('top-horizon', str('top-horizon'), DEFAULT_TOP.horizonMs, 1000);
  if (topHorizonMs < topBucketMs) throw new UsageError('relay: --top-horizon must be at least --top-bucket');
  const token = str('token') ?? (env.FLOWSCOPE_TOKEN || undefined);
  if (token !== undefined && (token.length === 0 || /\s/.test(token))) throw new UsageError('relay: --token: a token has no spaces');
  if (token === undefined && !values['insecure-no-auth'] && !isLoopbackListen(listenText)) {
    throw new UsageError(`relay: --listen ${listenText} is not a loopback address and no token is set: anyone who reaches it would read every flow; set --token (FLOWSCOPE_TOKEN), or --insecure-no-auth to serve it open`);
  }
  return {
    target,
    listen,
    group,
    consumer,
    storeSize: int('store-size', str('store-size'), 65_536, 1, 1 << 26),
    topBucketMs,
    topHorizonMs,
    topCapacity: int('top-capacity', str('top-capacity'), DEFAULT_TOP.capacity, 10, 1_000_000),
    claimIdleMs: duration('claim-idle', str('claim-idle'), 60_000, 1000),
    token,
    maxFollowers: int('max-followers', str('max-followers'), 64, 1, 100_000),
    logLevel: oneOf('log-level', str('log-level'), ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], 'info'),
    logFormat: oneOf('log-format', str('log-format'), ['auto', 'json', 'pretty'], 'auto'),
  };
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
