/** Attribution in flowscope observe: the workload (or cgroup) by the local end, a WORKLOAD column, --workload/--cgroup filters. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { attribution, compactLine, flowRow } from '../../src/cli/format.js';
import type { FlowRecord } from '../../src/flow/record.js';
import { makeAgent, makeApp, udp, type TestAgent } from '../helpers/agent-fixture.js';
import { cli, listen } from './run-cli.js';

const record = (extra: Partial<FlowRecord>): FlowRecord => ({
  node: 'n1', iface: 'eth0', ifindex: 2, direction: 'egress', family: 4, src: '10.0.0.1', dst: '10.0.0.9', proto: 'udp', sport: 41000, dport: 53,
  packets: 3, bytes: 300, tcpFlags: [], start: '2026-11-29T23:00:00.000Z', end: '2026-11-29T23:00:01.000Z', firstSeen: '2026-11-29T23:00:00.000Z', lastSeen: '2026-11-29T23:00:01.000Z',
  ...extra,
});

describe('attribution text', () => {
  it('is the workload, else the cgroup path, else the id of a cgroup that could not be named', () => {
    expect(attribution(record({ cgroup: '/system.slice/nginx.service', cgroupId: 7, workload: 'nginx.service' }))).toBe('nginx.service');
    expect(attribution(record({ cgroup: '/user.slice/x', cgroupId: 9 }))).toBe('/user.slice/x');
    expect(attribution(record({ cgroup: null, cgroupId: 1234 }))).toBe('cgroup 1234');
    expect(attribution(record({}))).toBeUndefined();
  });

  it('stands by the local end in compact lines: the source of what is sent, the destination of what is received', () => {
    const owned = { cgroup: '/system.slice/nginx.service', cgroupId: 7, workload: 'nginx.service' };
    expect(compactLine(record(owned))).toBe('2026-11-29T23:00:01.000Z eth0 egress  10.0.0.1:41000 (nginx.service) -> 10.0.0.9:53 udp 3 packets 300 bytes');
    expect(compactLine(record({ ...owned, direction: 'ingress' }))).toBe('2026-11-29T23:00:01.000Z eth0 ingress 10.0.0.1:41000 -> 10.0.0.9:53 (nginx.service) udp 3 packets 300 bytes');
    expect(compactLine(record({}))).toBe('2026-11-29T23:00:01.000Z eth0 egress  10.0.0.1:41000 -> 10.0.0.9:53 udp 3 packets 300 bytes');
  });

  it('fills the WORKLOAD column, - without a local socket', () => {
    expect(flowRow(record({ workload: 'shop/cart-7d9f', cgroup: '/kubepods.slice/x', cgroupId: 3 })).at(-1)).toBe('shop/cart-7d9f');
    expect(flowRow(record({})).at(-1)).toBe('-');
  });
});

describe('flowscope observe with attribution', () => {
  let t: TestAgent;
  let app: FastifyInstance;
  let server: string;

  beforeAll(async () => {
    const labels = (id: number) => (id === 7 ? { path: '/system.slice/nginx.service', workload: 'nginx.service' } : undefined);
    t = await makeAgent({ labels });
    await t.poll([
      { ...udp('10.0.0.1', '10.0.0.9', 41000, 53, 3, 300, 'eth0', 'egress'), cgroupId: 7 },
      udp('10.0.0.5', '10.0.0.6', 1000, 2000, 1, 100, 'eth1', 'ingress'),
    ]);
    app = await makeApp(t);
    server = await listen(app);
  });
  afterAll(() => app.close());

  it('filters by workload and shows it by the local end', async () => {
    const r = await cli(['observe', '--server', server, '--workload', 'nginx.service']);
    expect(r.stderr).toBe('');
    expect(r.stdout.trimEnd().split('\n')).toEqual([expect.stringMatching(/ eth0 egress  10\.0\.0\.1:41000 \(nginx\.service\) -> 10\.0\.0\.9:53 udp 3 packets 300 bytes$/)]);
  });

  it('filters by cgroup prefix and prints the WORKLOAD column', async () => {
    const r = await cli(['observe', '--server', server, '--cgroup', '/system.slice', '-o', 'table']);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/\s+WORKLOAD$/);
    expect(lines.slice(1)).toEqual([expect.stringMatching(/10\.0\.0\.1:41000\s+10\.0\.0\.9:53\s+udp\s+3\s+300\s+nginx\.service$/)]);
    const all = await cli(['observe', '--server', server, '-o', 'table']);
    expect(all.stdout).toMatch(/10\.0\.0\.5:1000\s+10\.0\.0\.6:2000\s+udp\s+1\s+100\s+-$/m);
  });
});
