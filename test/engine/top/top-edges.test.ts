/**
 * Top-talker edge cases a review found: one key in two groups of a bucket
 * (a flow's two slots, two cgroup ids of one path), queries that run at the
 * same time, and a flow whose cgroup changes between buckets.
 */
import { describe, expect, it } from 'vitest';
import { TopWindows, type TopQuery } from '../../../src/engine/top/top-windows.js';
import { Slicer } from '../../../src/lib/slicer.js';
import { packMeta, packPorts } from '../../../src/flow/tuple.js';
import { parseFlowFilter, type FlowFilterParams } from '../../../src/flow/filter.js';
import type { CgroupLabeler, RecordBatch } from '../../../src/flow/record-batch.js';
import type { TopDimension } from '../../../src/flow/top-dimensions.js';

interface Flow { src: number; dst: number; sport: number; dport: number }

/** TopWindows over a hand-made flow table: slot i is flows[i]; rows are [slot, bytes, cgroupId?]. */
function windows(flows: Flow[], capacity: number, labels?: CgroupLabeler) {
  const meta = packMeta('egress', 4, 17, 0, 0);
  const tuples = {
    ifindex: () => 2, meta: () => meta,
    ports: (s: number) => packPorts(flows[s].sport, flows[s].dport),
    srcText: (s: number) => `10.0.0.${flows[s].src}`, dstText: (s: number) => `10.0.1.${flows[s].dst}`,
    srcId: (s: number) => flows[s].src, dstId: (s: number) => flows[s].dst,
  };
  let now = 1_000_000;
  const tw = new TopWindows({ bucketMs: 1000, horizonMs: 60_000, capacity }, tuples, () => 'eth0', () => now);
  const add = (rows: [number, number, number?][]) => tw.add({
    count: rows.length, endMs: now, flowId: Uint32Array.from(rows.map((r) => r[0])),
    packets: Float64Array.from(rows.map(() => 1)), bytes: Float64Array.from(rows.map((r) => r[1])),
    cgroup: Float64Array.from(rows.map((r) => r[2] ?? 0)), labels,
  } as unknown as RecordBatch);
  const close = async () => {
    now += 1000;
    await tw.advance(now);
  };
  return { tw, add, close };
}
const query = (by: TopDimension, params: FlowFilterParams = {}, k = 10): TopQuery => ({ by, metric: 'bytes', windowMs: 60_000, k, filter: parseFlowFilter(params, 0) });

describe('top talkers: one key, several groups in a bucket', () => {
  it('a flow in two slots of one bucket (it ended and came back): its bound covers the dropped slot', async () => {
    const { tw, add, close } = windows([{ src: 1, dst: 1, sport: 5, dport: 53 }, { src: 1, dst: 1, sport: 5, dport: 53 }, { src: 2, dst: 1, sport: 6, dport: 53 }], 1);
    await add([[0, 100], [1, 50], [2, 80]]);
    await close();
    const answer = await tw.top(query('flow'));
    const flow5 = answer.entries.find((e) => e.key.sport === 5)!;
    expect(flow5.bytes).toBeLessThanOrEqual(150);
    expect(flow5.bytesMax).toBeGreaterThanOrEqual(150);
  });

  it('two slots of one flow both kept: one entry with their sum', async () => {
    const { tw, add, close } = windows([{ src: 1, dst: 1, sport: 5, dport: 53 }, { src: 1, dst: 1, sport: 5, dport: 53 }], 10);
    await add([[0, 100], [1, 50]]);
    await close();
    expect((await tw.top(query('flow'))).entries.map((e) => [e.key.sport, e.bytes, e.bytesMax])).toEqual([[5, 150, 150]]);
  });

  it('two cgroup ids with one path are one group', async () => {
    const L: Record<number, { path: string; workload: string }> = { 11: { path: '/a', workload: 'a' }, 12: { path: '/a', workload: 'a' }, 13: { path: '/b', workload: 'b' } };
    const { tw, add, close } = windows([{ src: 1, dst: 1, sport: 5, dport: 53 }, { src: 2, dst: 1, sport: 6, dport: 53 }, { src: 3, dst: 1, sport: 7, dport: 53 }], 1, (id) => L[id]);
    await add([[0, 100, 11], [1, 50, 12], [2, 80, 13]]);
    await close();
    const answer = await tw.top(query('cgroup'));
    expect(answer.entries[0]).toMatchObject({ key: { cgroup: '/a' }, bytes: 150, bytesMax: 150 });
  });
});

describe('top talkers: queries at the same time', () => {
  it('two sliced queries of one dimension on the open bucket count it once, and so does the cached summary', async () => {
    const n = 5000;
    const flows = Array.from({ length: n }, (_, i) => ({ src: i % 3000, dst: 1, sport: i, dport: 53 }));
    const { tw, add } = windows(flows, 100_000);
    await add(flows.map((_, i) => [i, 1] as [number, number]));
    const [a, b] = await Promise.all([tw.topSliced(query('src', {}, 3), new Slicer(0)), tw.topSliced(query('src', {}, 5), new Slicer(0))]);
    expect(a.entries.map((e) => e.bytes)).toEqual([2, 2, 2]);
    expect(b.entries.map((e) => e.bytes)).toEqual([2, 2, 2, 2, 2]);
    expect(a.totalBytes).toBe(n);
    expect((await tw.top(query('src', {}, 5))).entries.map((e) => e.bytes)).toEqual([2, 2, 2, 2, 2]);
  });
});

describe('top talkers: attribution per bucket', () => {
  it('a flow whose cgroup changed is filtered by the cgroup it had in each bucket', async () => {
    const L: Record<number, { path: string; workload: string }> = { 11: { path: '/a', workload: 'a' } };
    const { tw, add, close } = windows([{ src: 1, dst: 1, sport: 5, dport: 53 }], 10, (id) => L[id]);
    await add([[0, 100, 0]]);
    await close();
    await add([[0, 70, 11]]);
    await close();
    expect((await tw.top(query('src', { cgroup: '/a' }))).entries.map((e) => [e.key, e.bytes])).toEqual([[{ src: '10.0.0.1' }, 70]]);
    expect((await tw.top(query('cgroup', { src: '10.0.0.1' }))).entries.map((e) => [e.key, e.bytes])).toEqual([[{ cgroup: null }, 100], [{ cgroup: '/a' }, 70]]);
    expect((await tw.top(query('cgroup'))).entries.map((e) => [e.key, e.bytes])).toEqual([[{ cgroup: null }, 100], [{ cgroup: '/a' }, 70]]);
  });
});
