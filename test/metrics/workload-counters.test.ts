import { describe, expect, it } from 'vitest';
import { WorkloadCounters } from '../../src/metrics/workload-counters.js';
import type { CgroupLabeler } from '../../src/flow/record-batch.js';
import { makeAgent, udp } from '../helpers/agent-fixture.js';

/** A batch of records: [cgroupId, bytes, direction 0/1] each. */
function batch(rows: [number, number, 0 | 1][], labels?: CgroupLabeler) {
  return {
    count: rows.length,
    cgroup: Float64Array.from(rows.map((r) => r[0])),
    bytes: Float64Array.from(rows.map((r) => r[1])),
    packets: Float64Array.from(rows.map(() => 1)),
    meta: Uint32Array.from(rows.map((r) => r[2])),
    labels,
  } as never;
}

const labels: CgroupLabeler = (id) => (id >= 1000 ? undefined : { path: `/w${id}`, workload: `w${id % 100}` });
const sum = (c: WorkloadCounters, d: 0 | 1) => c.totals().reduce((a, t) => a + t.bytes[d], 0);

describe('WorkloadCounters', () => {
  it('every byte is in one series: none, unknown, other and named workloads sum to the records', () => {
    const c = new WorkloadCounters(2, 60_000);
    const rows: [number, number, 0 | 1][] = [[0, 10, 0], [1, 100, 0], [101, 50, 1], [2, 30, 0], [3, 7, 1], [1000, 5, 0]];
    c.add(batch(rows, labels), 0);
    const by = Object.fromEntries(c.totals().map((t) => [t.workload, t.bytes]));
    expect(by).toEqual({ w1: [100, 50], w2: [30, 0], other: [0, 7], none: [10, 0], unknown: [5, 0] });
    expect(sum(c, 0) + sum(c, 1)).toBe(rows.reduce((a, r) => a + r[1], 0));
  });

  it('keeps at most maxSeries named series; the busiest of the last interval get them', () => {
    const c = new WorkloadCounters(2, 60_000);
    c.add(batch([[1, 10, 0], [2, 10, 0]], labels), 0); // w1, w2 take the free places
    c.add(batch([[3, 1000, 0], [4, 500, 0], [1, 1, 0]], labels), 1000); // w3, w4 busier, but in "other" until the ranking
    expect(c.totals().map((t) => t.workload).sort()).toEqual(['none', 'other', 'unknown', 'w1', 'w2']);
    const before = { total: sum(c, 0) };
    c.add(batch([[3, 1, 0], [4, 1, 0], [2, 1, 0]], labels), 60_000); // the ranking: w3 and w4 take the places
    const names = c.totals().map((t) => t.workload).sort();
    expect(names).toEqual(['none', 'other', 'unknown', 'w3', 'w4']);
    expect(c.stopped).toBe(2);
    // The new series start at 0: their traffic before the ranking stays in "other"; w2's last byte went to "other" too.
    const by = Object.fromEntries(c.totals().map((t) => [t.workload, t.bytes[0]]));
    expect(by).toMatchObject({ w3: 1, w4: 1, other: 1000 + 500 + 1 });
    expect(before.total).toBe(1521);
  });

  it('forgets quiet workloads without a series, so pod churn does not grow it', () => {
    const c = new WorkloadCounters(1, 1000);
    for (let i = 0; i < 50; i++) c.add(batch([[i + 1, 10, 0]], (id) => ({ path: `/p${id}`, workload: `pod-${id}` })), i * 1000);
    const internal = c as unknown as { workloads: Map<string, unknown>; byCgroup: Map<number, unknown> };
    expect(internal.workloads.size).toBeLessThanOrEqual(3);
    expect(internal.byCgroup.size).toBeLessThanOrEqual(3);
    expect(c.totals().length).toBeLessThanOrEqual(1 + 3);
  });

  it('is exported on /metrics by an agent with attribution', async () => {
    const t = await makeAgent({ labels: (id) => ({ path: `/system.slice/s${id}.service`, workload: `s${id}.service` }), metricsWorkloads: 5 });
    await t.poll([{ ...udp('10.0.0.1', '10.0.0.2', 1, 2, 3, 300), cgroupId: 7 }, udp('10.0.0.3', '10.0.0.2', 1, 2, 1, 40)]);
    const text = await t.agent.metrics.render();
    expect(text).toContain('flowscope_workload_bytes_total{workload="s7.service",direction="ingress"} 300');
    expect(text).toContain('flowscope_workload_packets_total{workload="s7.service",direction="ingress"} 3');
    expect(text).toContain('flowscope_workload_bytes_total{workload="none",direction="ingress"} 40');
    const plain = await makeAgent();
    expect(await plain.agent.metrics.render()).not.toContain('flowscope_workload_bytes_total');
  });
});
