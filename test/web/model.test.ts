import { describe, expect, it } from 'vitest';
import { attributed, flowRecordKey, normalizeFlow, normalizeHistory, normalizeInterfaces, normalizeStatus, normalizeTop, normalizeTopSeries } from '../../src/web/client/model.js';

describe('status', () => {
  it('reads an agent status', () => {
    const s = normalizeStatus({
      node: 'n1', version: '0.1.0', uptimeSeconds: 90, flowsTracked: 10, mapCapacity: 100, overflowPackets: 3, overflowBytes: 300,
      lastPollMs: 1.5, interfaces: [{ iface: 'eth0' }, 'eth1'],
      sinks: [{ name: 'memory', exported: 5, dropped: 0 }, { name: 'redis', exported: 4, dropped: 2, lastError: 'ECONNREFUSED' }],
    });
    expect(s.multiNode).toBe(false);
    expect(s.version).toBe('0.1.0');
    expect(s.nodes).toHaveLength(1);
    const n = s.nodes[0];
    expect(n).toMatchObject({ node: 'n1', uptimeSeconds: 90, flowsTracked: 10, mapCapacity: 100, overflowPackets: 3, overflowBytes: 300, lastPollMs: 1.5, up: true });
    expect(n.interfaces).toEqual(['eth0', 'eth1']);
    expect(n.sinks).toEqual([
      { name: 'memory', exported: 5, dropped: 0, error: undefined, healthy: true },
      { name: 'redis', exported: 4, dropped: 2, error: 'ECONNREFUSED', healthy: false },
    ]);
  });
  it('reads nested and alternative field names', () => {
    const n = normalizeStatus({ name: 'x', uptimeMs: 5000, flows: { tracked: 7, capacity: 70 }, overflow: { packets: 1, bytes: 2 }, exporters: { redis: { exported: 1, dropped: 0 } } }).nodes[0];
    expect(n).toMatchObject({ node: 'x', uptimeSeconds: 5, flowsTracked: 7, mapCapacity: 70, overflowPackets: 1, overflowBytes: 2 });
    expect(n.sinks[0].name).toBe('redis');
  });
  it('reads a relay status with several nodes (array or object)', () => {
    const a = normalizeStatus({ version: '0.2.0', nodes: [{ node: 'a', up: true }, { node: 'b', up: false, error: 'timeout' }] });
    expect(a.multiNode).toBe(true);
    expect(a.nodes.map((n) => [n.node, n.up, n.error])).toEqual([['a', true, undefined], ['b', false, 'timeout']]);
    const o = normalizeStatus({ nodes: { a: { version: '1' }, b: {} } });
    expect(o.nodes.map((n) => n.node)).toEqual(['a', 'b']);
    expect(normalizeStatus({ relay: true, nodes: [{ node: 'only' }] }).multiNode).toBe(true);
  });
  it('survives garbage', () => {
    for (const g of [null, 42, 'x', [], { nodes: 'x' }]) {
      const s = normalizeStatus(g);
      expect(s.nodes).toHaveLength(1);
      expect(s.nodes[0].overflowPackets).toBe(0);
    }
  });
});

describe('interfaces', () => {
  it('reads rates and totals; ids are unique per node', () => {
    const l = normalizeInterfaces([
      { node: 'a', iface: 'eth0', ifindex: 2, hook: 'tc', rx: { packets: 1, bytes: 2, pps: 3, bps: 4 }, tx: { packets: 5, bytes: 6, pps: 7, bps: 8 } },
      { node: 'b', iface: 'eth0', ifindex: 2, rx: {}, tx: null },
      { nope: true },
    ]);
    expect(l.map((i) => i.id)).toEqual(['a/eth0', 'b/eth0']);
    expect(l[0].rx).toEqual({ packets: 1, bytes: 2, pps: 3, bps: 4 });
    expect(l[1].tx).toEqual({ packets: 0, bytes: 0, pps: 0, bps: 0 });
    const dup = normalizeInterfaces([{ iface: 'x', ifindex: 1 }, { iface: 'x', ifindex: 9 }]);
    expect(dup.map((i) => i.id)).toEqual(['x', 'x#9']);
    expect(normalizeInterfaces({ interfaces: [{ iface: 'y' }] })[0].iface).toBe('y');
    expect(normalizeInterfaces('garbage')).toEqual([]);
  });
});

describe('top and flows', () => {
  it('reads top entries and clamps share', () => {
    const t = normalizeTop({ by: 'src', metric: 'bytes', window: '1m', entries: [{ key: { src: '1.1.1.1' }, bytes: 10, packets: 1, share: 1.0000001 }, 'x'] });
    expect(t.entries).toEqual([{ key: { src: '1.1.1.1' }, bytes: 10, packets: 1, share: 1 }]);
    expect(normalizeTop(null).entries).toEqual([]);
  });
  it('reads a flow record and keys it', () => {
    const r = normalizeFlow({ node: 'n', iface: 'eth0', direction: 'egress', family: 6, src: 'fd00::1', dst: 'fd00::2', proto: 'udp', sport: 1, dport: 2, packets: 3, bytes: 4, tcpFlags: [], start: 's', end: 'e' })!;
    expect(r).toMatchObject({ direction: 'egress', family: 6, packets: 3 });
    expect(flowRecordKey(r)).toBe('n|eth0|egress|fd00::1|1|fd00::2|2|udp||s|e');
    expect(normalizeFlow({ iface: 'x' })).toBeUndefined();
    expect(normalizeFlow('x')).toBeUndefined();
  });
});

describe('interface history', () => {
  it('turns counts per step into rates at the end of each step', () => {
    const h = normalizeHistory({
      node: 'n1', stepMs: 2000, from: 0, to: 6000,
      interfaces: [{ iface: 'eth0', ifindex: 2, t: [2000, 4000], rxPackets: [10, 4], rxBytes: [1000, 500], txPackets: [2, 0], txBytes: [120, 0] }],
    });
    expect(h.stepMs).toBe(2000);
    expect(h.series).toEqual([{ id: 'eth0', t: [4, 6], rxPps: [5, 2], rxBps: [4000, 2000], txPps: [1, 0], txBps: [480, 0] }]);
  });
  it('names a series by node where the answer has one per series', () => {
    const h = normalizeHistory({ stepMs: 1000, interfaces: [{ node: 'a', iface: 'eth0', t: [0], rxPackets: [1], rxBytes: [1], txPackets: [1], txBytes: [1] }] });
    expect(h.series[0].id).toBe('a/eth0');
  });
  it('leaves out series with columns of other lengths, and survives garbage', () => {
    const h = normalizeHistory({ stepMs: 1000, interfaces: [{ iface: 'eth0', t: [0, 1000], rxPackets: [1], rxBytes: [1, 2], txPackets: [1, 2], txBytes: [1, 2] }, 'x'] });
    expect(h.series).toEqual([]);
    for (const g of [null, 42, { stepMs: 0, interfaces: [] }, { stepMs: 1000, interfaces: 'x' }]) expect(normalizeHistory(g).series).toEqual([]);
  });
});

describe('top talkers over time', () => {
  it('reads bucket starts as epoch ms and the values per bucket', () => {
    const s = normalizeTopSeries({
      by: 'src', metric: 'bytes', window: '1m', bucketMs: 10000, exact: true,
      times: ['2024-05-01T12:00:00.000Z', '2024-05-01T12:00:10.000Z'],
      entries: [{ key: { src: '10.0.0.2' }, values: [1200, 0] }, { key: { src: 'x' }, values: [1] }],
      other: [300, 20],
    });
    expect(s).toEqual({
      by: 'src', metric: 'bytes', bucketMs: 10000, exact: true,
      times: [Date.UTC(2024, 4, 1, 12, 0, 0), Date.UTC(2024, 4, 1, 12, 0, 10)],
      entries: [{ key: { src: '10.0.0.2' }, values: [1200, 0] }], // the entry with one value for two buckets is left out
      other: [300, 20],
    });
  });
  it('survives garbage', () => {
    for (const g of [null, 'x', { times: ['not a time'], entries: [{ values: [1] }] }, { times: 3 }]) {
      const s = normalizeTopSeries(g);
      expect(s.times).toEqual([]);
      expect(s.entries).toEqual([]);
    }
    expect(normalizeTopSeries({ times: ['2024-05-01T12:00:00Z'], entries: [] }).other).toEqual([0]);
  });
});

describe('attribution in flow records', () => {
  const base = { src: '10.0.0.1', dst: '10.0.0.2', iface: 'eth0', direction: 'egress', proto: 'tcp', packets: 1, bytes: 60 };
  it('reads cgroup, workload, pod and container', () => {
    const r = normalizeFlow({ ...base, cgroup: '/kubepods.slice/x', cgroupId: 9, workload: 'shop/cart', pod: { namespace: 'shop', name: 'cart' }, container: 'ab'.repeat(32) })!;
    expect(r).toMatchObject({ cgroup: '/kubepods.slice/x', workload: 'shop/cart', pod: { namespace: 'shop', name: 'cart' }, container: 'ab'.repeat(32) });
    expect(attributed(r)).toBe(true);
  });
  it('tells a flow without a local socket from one whose cgroup is unknown', () => {
    expect(attributed(normalizeFlow(base)!)).toBe(false);
    const unknown = normalizeFlow({ ...base, cgroup: null, workload: null })!;
    expect(unknown.cgroup).toBeNull();
    expect(attributed(unknown)).toBe(true);
    expect(normalizeFlow({ ...base, pod: { namespace: 'x' } })!.pod).toBeUndefined();
  });
});
