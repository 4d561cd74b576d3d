/**
 * The options of `flowscope relay`: the same mechanism as `flowscope run`
 * (flags > FLOWSCOPE_* environment > config file > defaults). The options it
 * shares with the agent are RUN_OPTIONS' own entries, bounds and checks.
 */
import { hostname } from 'node:os';
import { parseListen, type ListenAddress } from '../lib/listen.js';
import { parseRedisUrl, RedisUrlError, type RedisTarget } from '../redis/url.js';
import { ConfigError, RUN_OPTIONS, resolveOptions, type ConfigSources, type OptionTable } from './config.js';

const NAME = /^[A-Za-z0-9_.:@-]{1,128}$/;
const nameProblem = (v: string): string | undefined => (NAME.test(v) ? undefined : 'must be 1-128 of A-Z a-z 0-9 _ . : @ -');

/** Every option of `flowscope relay`, by flag name. */
export const RELAY_OPTIONS = {
  redis: { ...RUN_OPTIONS.redis, help: 'redis://[USER:PASS@]HOST:PORT[/DB], rediss://..., redis+cluster://H1:P1,H2:P2 (required)' },
  listen: RUN_OPTIONS.listen,
  group: { kind: 'string', default: 'flowscope-relay', help: 'consumer group; relays sharing a group split the entries', check: nameProblem },
  consumer: { kind: 'string', help: 'consumer name in the group (default: the hostname); keep it across restarts', check: nameProblem },
  'store-size': { ...RUN_OPTIONS['store-size'], default: 65_536, help: 'records kept per node for /api/v1/flows' },
  'top-bucket': RUN_OPTIONS['top-bucket'],
  'top-horizon': { ...RUN_OPTIONS['top-horizon'], help: 'longest top-talkers window, and how far back the streams are replayed at start' },
  'top-capacity': RUN_OPTIONS['top-capacity'],
  'claim-idle': { kind: 'duration', default: 60_000, min: 1000, help: 'take over entries another consumer left pending this long' },
  token: RUN_OPTIONS.token,
  'insecure-no-auth': RUN_OPTIONS['insecure-no-auth'],
  'max-followers': RUN_OPTIONS['max-followers'],
  'log-level': RUN_OPTIONS['log-level'],
  'log-format': RUN_OPTIONS['log-format'],
} as const satisfies OptionTable;

export interface RelayConfig {
  target: RedisTarget;
  listen: ListenAddress;
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

/** Merges flags > environment > file > defaults and validates the result. */
export function resolveRelayConfig(sources: Omit<ConfigSources, 'possibleCpus'>): RelayConfig {
  const values = resolveOptions(RELAY_OPTIONS, sources);
  const url = values.redis as string | undefined;
  if (url === undefined) throw new ConfigError('no Redis given; use --redis redis://HOST:PORT (or FLOWSCOPE_REDIS_URL)');
  let target: RedisTarget;
  try {
    target = parseRedisUrl(url);
  } catch (err) {
    if (err instanceof RedisUrlError) throw new ConfigError(`--redis: ${err.message}`);
    throw err;
  }
  const consumer = (values.consumer as string | undefined) ?? hostname();
  const problem = nameProblem(consumer);
  if (problem) throw new ConfigError(`consumer: "${consumer}" (the hostname) is invalid: ${problem}; set --consumer`);
  return {
    target,
    listen: parseListen(values.listen as string)!,
    group: values.group as string,
    consumer,
    storeSize: values['store-size'] as number,
    topBucketMs: values['top-bucket'] as number,
    topHorizonMs: values['top-horizon'] as number,
    topCapacity: values['top-capacity'] as number,
    claimIdleMs: values['claim-idle'] as number,
    token: values.token as string | undefined,
    maxFollowers: values['max-followers'] as number,
    logLevel: values['log-level'] as string,
    logFormat: values['log-format'] as 'auto' | 'json' | 'pretty',
  };
}
