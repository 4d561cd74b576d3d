/**
 * /api/v1/top answers now: the open bucket counts up to the last poll, and
 * answers move with every poll.
 */
import { describe, expect, it } from 'vitest';
import { parseFlowFilter, type FlowFilterParams } from '../../../src/flow/filter.js';
import type { TopDimension } from '../../../src/flow/top-dimensions.js';
import { makeAgent, udp, T0 } from '../../helpers/agent-fixture.js';

type T = Awaited<ReturnType<typeof makeAgent>>;
const top = (t: T, by: TopDimension, windowMs: number, params: FlowFilterParams = {}, k = 10) =>
  t.agent.top({ by, metric: 'bytes', windowMs, k, filter: parseFlowFilter(params, t.now()) });

describe('top talkers up to the last poll', () => {
  it('counts the open bucket: traffic of the last poll is in the answer before its bucket closes', async () => {
    const t = await makeAgent({ top: { bucketMs: 10_000, horizonMs: 3_600_000, capacity: 100 } });
    // T0 is bucket-aligned: these polls land at T0+1s..T0+3s, all in the open bucket.
    await t.poll([udp('10.0.0.1', '10.0.0.9', 1000, 53, 2, 300)]);
    const first = await top(t, 'src', 60_000);
    expect(first.entries).toEqual([{ key: { src: '10.0.0.1' }, bytes: 300, packets: 2, share: 1, bytesMax: 300, packetsMax: 2 }]);
    expect(first.exact).toBe(true);
    expect(first.to).toBe(new Date(T0 + 1000).toISOString());
    expect(first.from).toBe(new Date(T0).toISOString()); // the first bucket merged: nothing came before it

    await t.poll([udp('10.0.0.2', '10.0.0.9', 1000, 53, 1, 500)]);
    const second = await top(t, 'src', 60_000);
    expect(second).not.toBe(first); // moved with the poll
    expect(second.entries.map((e) => [e.key.src, e.bytes])).toEqual([['10.0.0.2', 500], ['10.0.0.1', 300]]);
    expect(second.to).toBe(new Date(T0 + 2000).toISOString());
    // Asked again before the next poll: the same (cached) answer.
    expect(await top(t, 'src', 60_000)).toBe(second);

    // A poll with no traffic still moves the window's end.
    await t.poll();
    expect((await top(t, 'src', 60_000)).to).toBe(new Date(T0 + 3000).toISOString());
  });

  it('a window ending in a partial bucket is exact, across the close of the open bucket', async () => {
    const t = await makeAgent({ top: { bucketMs: 10_000, horizonMs: 3_600_000, capacity: 100 } });
    let sent = 0;
    for (let i = 0; i < 25; i++) {
      await t.poll([udp('10.0.0.1', '10.0.0.9', 1000, 53, 1, 100 + i)]);
      sent += 100 + i;
      const answer = await top(t, 'src', 3_600_000);
      expect(answer.totalBytes).toBe(sent);
      expect(answer.entries[0].bytes).toBe(sent);
    }
    expect(t.agent.topWindows.bucketCount).toBe(2);
    // Filtered answers include the open bucket too.
    await t.poll([udp('10.0.0.2', '10.0.0.9', 1000, 80, 1, 7)]);
    expect((await top(t, 'src', 3_600_000, { dport: 80 })).entries).toEqual([{ key: { src: '10.0.0.2' }, bytes: 7, packets: 1, share: 1, bytesMax: 7, packetsMax: 1 }]);
  });

  it('a window covers (last poll - window, last poll]: the bucket holding its start is in, older ones are out', async () => {
    const t = await makeAgent({ top: { bucketMs: 10_000, horizonMs: 3_600_000, capacity: 100 } });
    await t.poll([udp('10.0.0.1', '10.0.0.9', 1, 53, 1, 1)], [], 5000); // T0+5s
    await t.poll([udp('10.0.0.2', '10.0.0.9', 1, 53, 1, 2)], [], 10_000); // T0+15s
    await t.poll([udp('10.0.0.3', '10.0.0.9', 1, 53, 1, 4)], [], 10_000); // T0+25s
    // Window 12 s from T0+25s starts at T0+13s: buckets [T0+10s, T0+20s) and the open one.
    const answer = await top(t, 'src', 12_000);
    expect(answer.totalBytes).toBe(6);
    expect(answer.from).toBe(new Date(T0 + 10_000).toISOString());
    expect(answer.to).toBe(new Date(T0 + 25_000).toISOString());
    // until in the past leaves the open bucket out.
    const until = await top(t, 'src', 60_000, { until: new Date(T0 + 12_000).toISOString() });
    expect(until.totalBytes).toBe(3);
    expect(until.to).toBe(new Date(T0 + 12_000).toISOString());
  });

  it('series: the window\'s top groups bucket by bucket, the open bucket last', async () => {
    const t = await makeAgent({ top: { bucketMs: 1000, horizonMs: 3_600_000, capacity: 100 } });
    await t.poll([udp('10.0.0.1', '10.0.0.9', 1, 53, 1, 100), udp('10.0.0.2', '10.0.0.9', 1, 53, 1, 10), udp('10.0.0.3', '10.0.0.9', 1, 53, 1, 1)]);
    await t.poll([udp('10.0.0.1', '10.0.0.9', 1, 53, 1, 50), udp('10.0.0.2', '10.0.0.9', 1, 53, 1, 200)]);
    await t.poll([udp('10.0.0.3', '10.0.0.9', 1, 53, 1, 5)]);
    const s = await t.agent.topWindows.series({ by: 'src', metric: 'bytes', windowMs: 3000, k: 2, filter: {} });
    // Buckets T0+1s, T0+2s, and the open T0+3s (window 3 s from T0+3s starts at T0+0s: empty, not listed).
    expect(s.times).toEqual([T0 + 1000, T0 + 2000, T0 + 3000]);
    expect(s.entries).toEqual([
      { key: { src: '10.0.0.2' }, values: [10, 200, 0] },
      { key: { src: '10.0.0.1' }, values: [100, 50, 0] },
    ]);
    expect(s.other).toEqual([1, 0, 5]);
    expect(s.exact).toBe(true);
  });
});
