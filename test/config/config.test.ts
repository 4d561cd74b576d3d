import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, readConfigFile, resolveConfig } from '../../src/config/config.js';

const dir = mkdtempSync(join(tmpdir(), 'flowscope-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

describe('configuration', () => {
  it('has documented defaults', () => {
    const c = resolveConfig({ flags: {}, env: {} });
    expect(c).toMatchObject({ ifaces: [], hook: 'tc', listen: '127.0.0.1:9797', pollIntervalMs: 1000, exportIntervalMs: 1000, storeSize: 262_144, flowMapSize: 65_536, topBucketMs: 10_000, topHorizonMs: 3_600_000, udpTimeoutMs: 300_000, tcpTimeoutMs: 3_600_000, tcpFinTimeoutMs: 300_000, tcpRstTimeoutMs: 120_000, activeTimeoutMs: 604_800_000 });
    expect(c.token).toBeUndefined();
    expect(c.node.length).toBeGreaterThan(0);
  });

  it('takes flags over environment over file over defaults', () => {
    const fileValues = readConfigFile(file('a.yaml', 'poll-interval: 3s\nstore-size: 10\nnode: from-file\nhook: xdp\niface: [eth9]\n'));
    const env = { FLOWSCOPE_POLL_INTERVAL: '2s', FLOWSCOPE_STORE_SIZE: '20' };
    const c = resolveConfig({ flags: { 'poll-interval': '1500ms' }, env, file: fileValues });
    expect(c.pollIntervalMs).toBe(1500);
    expect(c.storeSize).toBe(20);
    expect(c.node).toBe('from-file');
    expect(c.hook).toBe('xdp');
    expect(c.ifaces).toEqual(['eth9']);
    expect(resolveConfig({ flags: { iface: ['eth1', 'eth2,eth3'] }, env: { FLOWSCOPE_IFACE: 'eth4' }, file: fileValues }).ifaces).toEqual(['eth1', 'eth2', 'eth3']);
    expect(resolveConfig({ flags: {}, env: { FLOWSCOPE_IFACE: 'eth4,eth5' }, file: fileValues }).ifaces).toEqual(['eth4', 'eth5']);
  });

  it('reads JSON config files and camelCase keys', () => {
    const values = readConfigFile(file('b.json', JSON.stringify({ pollInterval: '250ms', topBucket: 5000, interfaces: ['veth0'], token: 'abc' })));
    const c = resolveConfig({ flags: {}, env: {}, file: values });
    expect(c).toMatchObject({ pollIntervalMs: 250, topBucketMs: 5000, ifaces: ['veth0'], token: 'abc' });
  });

  it('rejects bad values with one clear line', () => {
    const bad: [Record<string, string>, RegExp][] = [
      [{ 'poll-interval': 'fast' }, /--poll-interval: "fast" is not a duration/],
      [{ 'poll-interval': '1ms' }, /out of range/],
      [{ hook: 'bpf' }, /--hook: "bpf" must be one of tc, xdp/],
      [{ listen: 'localhost' }, /HOST:PORT/],
      [{ 'store-size': '-5' }, /integer from 1/],
      [{ 'store-size': '1e6' }, /integer from 1/],
      [{ redis: 'http://x' }, /redis:\/\//],
      [{ 'export-interval': '500ms' }, /must not be shorter than poll-interval/],
    ];
    for (const [flags, message] of bad) {
      expect(() => resolveConfig({ flags, env: {} })).toThrow(message);
    }
    expect(() => resolveConfig({ flags: {}, env: { FLOWSCOPE_HOOK: 'nope' } })).toThrow(/FLOWSCOPE_HOOK: hook: "nope"/);
    expect(() => readConfigFile(file('c.yaml', 'pol-interval: 1s\n'))).toThrow(/unknown option "pol-interval"/);
    expect(() => readConfigFile(file('d.yaml', '- a\n- b\n'))).toThrow(ConfigError);
    expect(() => readConfigFile(file('e.yaml', 'a: [\n'))).toThrow(/not valid YAML/);
    expect(() => readConfigFile(join(dir, 'missing.yaml'))).toThrow(/cannot read config file .*ENOENT/);
  });
});
