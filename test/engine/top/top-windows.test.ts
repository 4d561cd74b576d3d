import { describe, expect, it } from 'vitest';
import { parseFlowFilter, type FlowFilterParams } from '../../../src/flow/filter.js';
import type { TopDimension, TopMetric } from '../../../src/flow/top-dimensions.js';
import { topK } from '../../../src/lib/top-k.js';
import { makeAgent, udp, T0 } from '../../helpers/agent-fixture.js';

async function topOf(t: Awaited<ReturnType<typeof makeAgent>>, by: TopDimension, windowMs: number, params: FlowFilterParams = {}, metric: TopMetric = 'bytes', k = 10) {
  return t.agent.top({ by, metric, windowMs, k, filter: parseFlowFilter(params, t.now()) });
}

describe('topK', () => {
  it('returns the k largest, largest first, ties by index', () => {
    const v = [5, 1, 9, 9, 3, 7];
    expect(topK(v.length, 3, (i) => v[i])).toEqual([2, 3, 5]);
    expect(topK(v.length, 10, (i) => v[i])).toEqual([2, 3, 5, 0, 4, 1]);
    expect(topK(0, 3, () => 0)).toEqual([]);
  });

  it('agrees with a full sort on random data', () => {
    const v = Array.from({ length: 5000 }, (_, i) => (i * 7919) % 1013);
    const expected = [...v.keys()].sort((a, b) => v[b] - v[a] || a - b).slice(0, 50);
    expect(topK(v.length, 50, (i) => v[i])).toEqual(expected);
  });
});

describe('TopWindows', () => {
  it('ranks by bytes or packets with shares of the window total', async () => {
    const t = await makeAgent();
    await t.poll([udp('10.0.0.1', '10.0.0.9', 1, 53, 10, 1000), udp('10.0.0.2', '10.0.0.9', 2, 53, 1, 3000), udp('10.0.0.3', '10.0.0.9', 3, 53, 5, 500)]);
    t.advance(1000);
    await t.agent.collector.pollOnce();
    const bytes = await topOf(t, 'src', 60_000);
    expect(bytes.entries.map((e) => [e.key.src, e.bytes, e.share])).toEqual([['10.0.0.2', 3000, 3000 / 4500], ['10.0.0.1', 1000, 1000 / 4500], ['10.0.0.3', 500, 500 / 4500]]);
    expect(bytes.exact).toBe(true);
    const packets = await topOf(t, 'src', 60_000, {}, 'packets', 2);
    expect(packets.entries.map((e) => [e.key.src, e.packets])).toEqual([['10.0.0.1', 10], ['10.0.0.3', 5]]);
    expect(packets.entries[0].share).toBeCloseTo(10 / 16);
  });

  it('groups by every dimension', async () => {
    const t = await makeAgent();
    await t.poll([
      udp('10.0.0.1', '10.0.0.9', 1000, 53, 1, 100),
      udp('10.0.0.1', '10.0.0.9', 1001, 53, 1, 200),
      udp('10.0.0.2', '10.0.0.8', 1000, 80, 1, 400, 'eth1', 'egress'),
      { iface: 'eth0', direction: 'ingress', src: '10.0.0.2', dst: '10.0.0.9', proto: 1, icmpType: 8, packets: 1, bytes: 800 },
    ]);
    t.advance(1000);
    await t.agent.collector.pollOnce();
    const keys = async (by: TopDimension) => (await topOf(t, by, 60_000)).entries.map((e) => [e.key, e.bytes]);
    expect(await keys('src')).toEqual([[{ src: '10.0.0.2' }, 1200], [{ src: '10.0.0.1' }, 300]]);
    expect(await keys('dst')).toEqual([[{ dst: '10.0.0.9' }, 1100], [{ dst: '10.0.0.8' }, 400]]);
    expect(await keys('pair')).toEqual([[{ src: '10.0.0.2', dst: '10.0.0.9' }, 800], [{ src: '10.0.0.2', dst: '10.0.0.8' }, 400], [{ src: '10.0.0.1', dst: '10.0.0.9' }, 300]]);
    expect(await keys('sport')).toEqual([[{ sport: 0 }, 800], [{ sport: 1000 }, 500], [{ sport: 1001 }, 200]]);
    expect(await keys('dport')).toEqual([[{ dport: 0 }, 800], [{ dport: 80 }, 400], [{ dport: 53 }, 300]]);
    expect(await keys('proto')).toEqual([[{ proto: 'icmp' }, 800], [{ proto: 'udp' }, 700]]);
    expect(await keys('iface')).toEqual([[{ iface: 'eth0' }, 1100], [{ iface: 'eth1' }, 400]]);
    const flows = await keys('flow');
    expect(flows[0]).toEqual([{ iface: 'eth0', direction: 'ingress', family: 4, src: '10.0.0.2', dst: '10.0.0.9', proto: 'icmp', sport: 0, dport: 0, icmpType: 8, icmpCode: 0 }, 800]);
    expect(flows[1][0]).toEqual({ iface: 'eth1', direction: 'egress', family: 4, src: '10.0.0.2', dst: '10.0.0.8', proto: 'udp', sport: 1000, dport: 80 });
  });

  it('slides: buckets older than the window drop out, the horizon bounds memory', async () => {
    const t = await makeAgent({ top: { bucketMs: 1000, horizonMs: 10_000, capacity: 100 } });
    await t.poll([udp('10.0.0.1', '10.0.0.9', 1, 53, 1, 100)]); // bucket T0+1s
    for (let i = 0; i < 4; i++) await t.poll([udp('10.0.0.2', '10.0.0.9', 1, 53, 1, 10)]); // T0+2s..T0+5s
    t.advance(1000);
    await t.agent.collector.pollOnce(); // now T0+6s: buckets 1..5 are closed
    expect((await topOf(t, 'src', 5000)).entries.map((e) => e.key.src)).toEqual(['10.0.0.1', '10.0.0.2']);
    const last3 = await topOf(t, 'src', 3000);
    expect(last3.entries.map((e) => [e.key.src, e.bytes])).toEqual([['10.0.0.2', 30]]);
    expect(last3.from).toBe(new Date(T0 + 3000).toISOString());
    expect(last3.to).toBe(new Date(T0 + 6000).toISOString());
    // until moves the window's end back
    expect((await topOf(t, 'src', 1000, { until: new Date(T0 + 1500).toISOString() })).entries.map((e) => e.key.src)).toEqual(['10.0.0.1']);
    for (let i = 0; i < 15; i++) await t.poll();
    expect(t.agent.topWindows.bucketCount).toBeLessThanOrEqual(10);
    expect((await topOf(t, 'src', 10_000)).entries).toEqual([]);
    expect(t.agent.topWindows.keyCount).toBe(0);
  });

  it('applies filters through the flow dimension', async () => {
    const t = await makeAgent();
    await t.poll([
      udp('10.0.0.1', '10.0.0.9', 1000, 53, 1, 100),
      udp('10.0.0.1', '10.0.0.8', 1000, 443, 1, 900),
      udp('10.0.0.2', '10.0.0.9', 1000, 53, 1, 300, 'eth1', 'egress'),
    ]);
    t.advance(1000);
    await t.agent.collector.pollOnce();
    const r = await topOf(t, 'src', 60_000, { dport: 53 });
    expect(r.entries.map((e) => [e.key, e.bytes, e.share])).toEqual([[{ src: '10.0.0.2' }, 300, 0.75], [{ src: '10.0.0.1' }, 100, 0.25]]);
    expect((await topOf(t, 'dst', 60_000, { iface: 'eth0' })).entries.map((e) => e.key.dst)).toEqual(['10.0.0.8', '10.0.0.9']);
    expect((await topOf(t, 'pair', 60_000, { direction: 'egress' })).entries.map((e) => e.key)).toEqual([{ src: '10.0.0.2', dst: '10.0.0.9' }]);
    expect((await topOf(t, 'src', 60_000, { ip: '10.0.0.8' })).entries.map((e) => e.bytes)).toEqual([900]);
  });

  it('keeps the largest groups per bucket and says when an answer is not exact', async () => {
    const t = await makeAgent({ top: { bucketMs: 1000, horizonMs: 60_000, capacity: 10 } });
    const flows = Array.from({ length: 50 }, (_, i) => udp(`10.0.1.${i}`, '10.0.0.9', 1000 + i, 53, 1, 100 + i));
    await t.poll(flows);
    t.advance(1000);
    await t.agent.collector.pollOnce();
    const r = await topOf(t, 'src', 60_000, {}, 'bytes', 5);
    expect(r.exact).toBe(false);
    expect(r.entries.map((e) => e.bytes)).toEqual([149, 148, 147, 146, 145]);
    expect(r.totalBytes).toBe(flows.reduce((s, f) => s + f.bytes, 0));
    expect((await topOf(t, 'proto', 60_000)).exact).toBe(true);
  });

  it('caches answers until the next bucket closes', async () => {
    const t = await makeAgent();
    await t.poll([udp('10.0.0.1', '10.0.0.9', 1, 53, 1, 100)]);
    t.advance(1000);
    await t.agent.collector.pollOnce();
    const a = await topOf(t, 'src', 60_000);
    expect(await topOf(t, 'src', 60_000)).toBe(a);
    await t.poll([udp('10.0.0.1', '10.0.0.9', 1, 53, 1, 100)]);
    t.advance(1000);
    await t.agent.collector.pollOnce();
    expect((await topOf(t, 'src', 60_000)).entries[0].bytes).toBe(200);
  });
});
