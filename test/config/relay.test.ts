/** `flowscope relay` reads its options like `run`: flags > FLOWSCOPE_* > config file > defaults, with run's bounds. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadRelayConfig, RELAY_HELP } from '../../src/cli/relay.js';
import { RUN_OPTIONS } from '../../src/config/config.js';
import { RELAY_OPTIONS } from '../../src/config/relay.js';

const dir = mkdtempSync(join(tmpdir(), 'flowscope-relay-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const REDIS = ['--redis', 'redis://127.0.0.1:6379'];

describe('flowscope relay options', () => {
  it('takes flags over FLOWSCOPE_* over the config file over defaults', () => {
    const file = join(dir, 'relay.yaml');
    writeFileSync(file, 'group: from-file\nconsumer: c-file\nclaimIdle: 5m\nredis: redis://file:6379\n');
    const fromFile = loadRelayConfig(['--config', file], {})!;
    expect(fromFile).toMatchObject({ group: 'from-file', consumer: 'c-file', claimIdleMs: 300_000 });
    expect(fromFile.target.endpoints[0]).toEqual({ host: 'file', port: 6379 });
    const fromEnv = loadRelayConfig([], { FLOWSCOPE_CONFIG: file, FLOWSCOPE_GROUP: 'from-env' })!;
    expect(fromEnv.group).toBe('from-env');
    expect(loadRelayConfig(['--config', file, '--group', 'from-flag'], { FLOWSCOPE_GROUP: 'from-env' })!.group).toBe('from-flag');
    const defaults = loadRelayConfig(REDIS, {})!;
    expect(defaults).toMatchObject({ group: 'flowscope-relay', storeSize: 65_536, claimIdleMs: 60_000, maxFollowers: 64, logFormat: 'auto' });
  });

  it('reads the Redis URL from FLOWSCOPE_REDIS or FLOWSCOPE_REDIS_URL (the first wins)', () => {
    expect(loadRelayConfig([], { FLOWSCOPE_REDIS_URL: 'redis://a:1' })!.target.endpoints[0].host).toBe('a');
    expect(loadRelayConfig([], { FLOWSCOPE_REDIS_URL: 'redis://a:1', FLOWSCOPE_REDIS: 'redis://b:1' })!.target.endpoints[0].host).toBe('b');
    expect(() => loadRelayConfig([], {})).toThrow(/^relay: no Redis given/);
  });

  it("shares run's options, bounds and checks", () => {
    for (const name of ['listen', 'token', 'insecure-no-auth', 'max-followers', 'top-bucket', 'top-capacity', 'log-level', 'log-format'] as const) {
      expect(RELAY_OPTIONS[name], name).toBe(RUN_OPTIONS[name]);
    }
    expect(() => loadRelayConfig([...REDIS, '--top-bucket', '50ms'], {})).toThrow(/^relay: --top-bucket: 50ms is out of range/);
    expect(() => loadRelayConfig([...REDIS, '--top-bucket', '10s', '--top-horizon', '5s'], {})).toThrow(/top-horizon must be at least top-bucket/);
    expect(() => loadRelayConfig([...REDIS, '--token', 'a b'], {})).toThrow(/^relay: --token/);
    expect(() => loadRelayConfig([...REDIS, '--consumer', 'has space'], {})).toThrow(/^relay: --consumer: "has space" is invalid/);
    const file = join(dir, 'bad.yaml');
    writeFileSync(file, 'iface: eth0\n');
    expect(() => loadRelayConfig([...REDIS, '--config', file], {})).toThrow(/unknown option "iface"/);
  });

  it('lists every option with its variable in --help', () => {
    for (const name of Object.keys(RELAY_OPTIONS)) expect(RELAY_HELP).toMatch(new RegExp(`--${name} .*\\[FLOWSCOPE_${name.toUpperCase().replace(/-/g, '_')}\\]`));
  });
});
