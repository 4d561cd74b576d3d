/**
 * Secure by default (issue 10): the API opened beyond loopback without a
 * token is refused at start (exit 2, one line) unless --insecure-no-auth says
 * so, for the agent and the relay; --max-followers is an option like the others.
 */
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { loadRelayConfig } from '../../src/cli/relay.js';
import { loadRunConfig } from '../../src/cli/run.js';

const MAIN = new URL('../../src/cli/main.ts', import.meta.url).pathname;
const REDIS = ['--redis', 'redis://127.0.0.1:1'];

describe('flowscope run: listening beyond loopback', () => {
  it('refuses a non-loopback --listen without a token, naming the way out', () => {
    for (const listen of ['0.0.0.0:9797', '[::]:9797', '10.1.2.3:9797', 'node-a.example:9797']) {
      expect(() => loadRunConfig(['--listen', listen], {}), listen).toThrow(/not a loopback address and no token is set.*--token.*--insecure-no-auth/);
    }
    expect(() => loadRunConfig([], { FLOWSCOPE_LISTEN: '0.0.0.0:9797' })).toThrow(/no token/);
  });

  it('accepts it with a token (flag or environment) or with --insecure-no-auth (flag or environment)', () => {
    expect(loadRunConfig(['--listen', '0.0.0.0:9797', '--token', 's3cret'], {}).config.token).toBe('s3cret');
    expect(loadRunConfig(['--listen', '0.0.0.0:9797'], { FLOWSCOPE_TOKEN: 's3cret' }).config.token).toBe('s3cret');
    const open = loadRunConfig(['--listen', '0.0.0.0:9797', '--insecure-no-auth'], {}).config;
    expect(open.insecureNoAuth).toBe(true);
    expect(open.token).toBeUndefined();
    expect(loadRunConfig([], { FLOWSCOPE_LISTEN: '[::]:9797', FLOWSCOPE_INSECURE_NO_AUTH: 'true' }).config.insecureNoAuth).toBe(true);
  });

  it('loopback needs nothing', () => {
    for (const listen of ['127.0.0.1:9797', '127.0.0.2:0', '[::1]:9797', 'localhost:9797', ':9797']) {
      const { config } = loadRunConfig(['--listen', listen], {});
      expect(config.insecureNoAuth, listen).toBe(false);
    }
    expect(loadRunConfig([], {}).config.listen).toBe('127.0.0.1:9797');
  });

  it('--max-followers: default 64, range checked', () => {
    expect(loadRunConfig([], {}).config.maxFollowers).toBe(64);
    expect(loadRunConfig(['--max-followers', '300'], {}).config.maxFollowers).toBe(300);
    expect(loadRunConfig([], { FLOWSCOPE_MAX_FOLLOWERS: '5' }).config.maxFollowers).toBe(5);
    expect(() => loadRunConfig(['--max-followers', '0'], {})).toThrow(/max-followers/);
  });

  it('the real command exits 2 with one line', () => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', MAIN, 'run', '--source', 'synthetic', '--listen', '0.0.0.0:0'], { encoding: 'utf8', timeout: 60_000 });
    expect(r.status).toBe(2);
    expect(r.stdout).toBe('');
    const lines = r.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^flowscope: run: listen 0\.0\.0\.0:0 is not a loopback address and no token is set/);
  });
});

describe('flowscope relay: listening beyond loopback', () => {
  it('refuses without a token, accepts with one or with --insecure-no-auth', () => {
    expect(() => loadRelayConfig([...REDIS, '--listen', '0.0.0.0:9797'], {})).toThrow(/relay: listen 0\.0\.0\.0:9797 is not a loopback address and no token is set/);
    expect(loadRelayConfig([...REDIS, '--listen', '0.0.0.0:9797'], { FLOWSCOPE_TOKEN: 't' })!.token).toBe('t');
    expect(loadRelayConfig([...REDIS, '--listen', '0.0.0.0:9797', '--insecure-no-auth'], {})!.token).toBeUndefined();
    expect(loadRelayConfig([...REDIS], {})!.listen).toEqual({ host: '127.0.0.1', port: 9797 });
    expect(loadRelayConfig([...REDIS], {})!.maxFollowers).toBe(64);
    expect(loadRelayConfig([...REDIS, '--max-followers', '7'], {})!.maxFollowers).toBe(7);
  });

  it('the real command exits 2 with one line', () => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', MAIN, 'relay', ...REDIS, '--listen', '[::]:0'], { encoding: 'utf8', timeout: 60_000 });
    expect(r.status).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/not a loopback address/);
  });
});
