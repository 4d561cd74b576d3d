/**
 * The options of `flowscope relay`: the same mechanism as `flowscope run`
 * (flags > FLOWSCOPE_* environment > config file > defaults). The options it
 * shares with the agent are RUN_OPTIONS' own entries, bounds and checks.
 */
import { hostname } from 'node:os';
import { isLoopbackListen, parseListen, type ListenAddress } from '../lib/listen.js';
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
  partitions: {
    kind: 'int',
    default: 0,
    min: 0,
    max: 4096,
    help: 'scale out: split the node streams into this many partitions among the live relays (each reads its own, queries are fanned out to the peers); 0: off, this relay reads every stream',
  },
  'peer-listen': {
    kind: 'string',
    default: '127.0.0.1:9798',
    help: 'with --partitions: where this relay answers its peers for its partitions (--token protects it too)',
    check: (v) => (parseListen(v) ? undefined : 'use HOST:PORT, e.g. 10.0.0.5:9798'),
  },
  'peer-url': { kind: 'string', help: 'with --partitions: the URL peers reach --peer-listen at (default http://HOST:PORT of --peer-listen)', check: (v) => (/^https?:\/\/[^\s]+$/.test(v) ? undefined : 'an http:// URL') },
  lease: { kind: 'duration', default: 3000, min: 500, max: 600_000, help: "with --partitions: a relay that does not renew its lease in Redis for this long is dead, and its partitions move" },
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
  /** 0: no scale-out */
  partitions: number;
  peerListen: ListenAddress;
  peerUrl?: string;
  leaseMs: number;
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
  if ((values.partitions as number) > 0 && values.token === undefined && values['insecure-no-auth'] !== 'true' && !isLoopbackListen(values['peer-listen'] as string)) {
    throw new ConfigError(`peer-listen ${values['peer-listen'] as string} is not a loopback address and no token is set: anyone who reaches it would read every flow; set --token (FLOWSCOPE_TOKEN), or --insecure-no-auth`);
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
    partitions: values.partitions as number,
    peerListen: parseListen(values['peer-listen'] as string)!,
    peerUrl: values['peer-url'] as string | undefined,
    leaseMs: values.lease as number,
    token: values.token as string | undefined,
    maxFollowers: values['max-followers'] as number,
    logLevel: values['log-level'] as string,
    logFormat: values['log-format'] as 'auto' | 'json' | 'pretty',
  };
}
