import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { makeAgent, makeApp, udp } from '../helpers/agent-fixture.js';

const PROMTOOL = '/usr/bin/promtool';

async function scrape(): Promise<string> {
  const t = await makeAgent();
  t.source.countFailure('fragment', 3);
  await t.poll([udp('10.0.0.1', '10.0.0.2', 1, 53, 3, 300)], [{ iface: 'eth1', direction: 'egress', kind: 'overflow', packets: 4, bytes: 400 }]);
  const app = await makeApp(t);
  const r = await app.inject('/metrics');
  await app.close();
  expect(r.statusCode).toBe(200);
  expect(r.headers['content-type']).toMatch(/text\/plain; version=0\.0\.4/);
  return r.body;
}

describe('/metrics', () => {
  it('exposes the agent health with flowscope_ names', async () => {
    const text = await scrape();
    for (const line of [
      'flowscope_flows_tracked 1',
      'flowscope_flow_map_capacity 65536',
      'flowscope_polls_total{result="ok"} 1',
      'flowscope_overflow_packets_total{iface="eth1",direction="egress"} 4',
      'flowscope_overflow_bytes_total{iface="eth1",direction="egress"} 400',
      'flowscope_interface_packets_total{iface="eth0",direction="ingress"} 3',
      'flowscope_interface_bytes_total{iface="eth1",direction="egress"} 400',
      'flowscope_datapath_events_total{event="fragment"} 3',
      'flowscope_datapath_events_total{event="flow_map_full"} 4',
      'flowscope_records_exported_total{sink="memory"} 1',
      'flowscope_records_dropped_total{sink="memory"} 0',
      'flowscope_store_lost_records_total 0',
      'flowscope_poll_duration_seconds_count 1',
      'flowscope_ready 1',
    ]) {
      expect(text).toContain(line);
    }
    const names = text.split('\n').filter((l) => l && !l.startsWith('#')).map((l) => l.split(/[{ ]/)[0]);
    expect(names.every((n) => n.startsWith('flowscope_'))).toBe(true);
  });

  it('has no per-address or per-port labels', async () => {
    const text = await scrape();
    expect(text).not.toContain('10.0.0.1');
    const labels = new Set([...text.matchAll(/[{,]([a-z_]+)="/g)].map((m) => m[1]));
    expect([...labels].sort()).toEqual(expect.arrayContaining(['direction', 'event', 'iface']));
    for (const label of labels) expect(['direction', 'event', 'iface', 'reason', 'result', 'sink', 'version', 'le', 'type', 'space', 'kind', 'major', 'minor', 'patch']).toContain(label);
  });

  it('passes promtool check metrics', async () => {
    if (!existsSync(PROMTOOL)) {
      if (process.env.CI) throw new Error(`${PROMTOOL} is missing (Debian package prometheus)`);
      console.log(`skipped: ${PROMTOOL} not installed (apt-get install prometheus)`);
      return;
    }
    const text = await scrape();
    const result = spawnSync(PROMTOOL, ['check', 'metrics'], { input: text, encoding: 'utf8' });
    expect(result.stdout + result.stderr).toBe('');
    expect(result.status).toBe(0);
  });
});
