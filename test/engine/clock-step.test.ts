/**
 * Wall-clock steps (NTP corrections, `date -s`): the top-talkers buckets run
 * on a monotonic clock, wall time only labels them. An agent on a synthetic
 * source with two injected clocks: the wall clock jumps by an hour either
 * way, the monotonic one keeps going; /top keeps answering exactly.
 */
import { describe, expect, it } from 'vitest';
import { parseFlowFilter, type FlowFilterParams } from '../../src/flow/filter.js';
import { TopWindows } from '../../src/engine/top/top-windows.js';
import { packMeta } from '../../src/flow/tuple.js';
import { makeAgent, T0, udp, type TestAgent } from '../helpers/agent-fixture.js';

const HOUR = 3_600_000;

interface Clocks {
  wall: number;
  mono: number;
}

async function agentWithClocks(): Promise<{ t: TestAgent; c: Clocks; poll: (bytes: number) => Promise<void> }> {
  const c: Clocks = { wall: T0, mono: 5_000_000 };
  const t = await makeAgent({ clock: () => c.wall, monoClock: () => c.mono });
  const poll = async (bytes: number): Promise<void> => {
    c.wall += 1000;
    c.mono += 1000;
    t.source.push(bytes > 0 ? [udp('10.0.0.1', '10.0.0.9', 1000, 53, 1, bytes)] : []);
    await t.agent.collector.pollOnce();
  };
  return { t, c, poll };
}

async function top(t: TestAgent, wallNow: number, windowMs: number, params: FlowFilterParams = {}) {
  return t.agent.top({ by: 'src', metric: 'bytes', windowMs, k: 10, filter: parseFlowFilter(params, wallNow) });
}

describe('top talkers across wall-clock steps', () => {
  for (const step of [-HOUR, HOUR]) {
    it(`a step of ${step > 0 ? '+' : '-'}1h: windows keep closing, every byte is in the window, labels follow the new wall time`, async () => {
      const { t, c, poll } = await agentWithClocks();
      for (let i = 0; i < 5; i++) await poll(100);
      c.wall += step;
      const bucketsBefore = t.agent.topWindows.bucketCount;
      for (let i = 0; i < 5; i++) await poll(200);
      await poll(0); // closes the bucket of the last traffic
      expect(t.agent.topWindows.bucketCount).toBeGreaterThan(bucketsBefore + 4);

      // A 1-minute window is the last minute of elapsed time: all 10 s of traffic, before and after the step.
      const minute = await top(t, c.wall, 60_000);
      expect(minute.totalBytes).toBe(5 * 100 + 5 * 200);
      expect(minute.entries).toEqual([{ key: { src: '10.0.0.1' }, bytes: 1500, packets: 10, share: 1, bytesMax: 1500, packetsMax: 10 }]);
      // Labelled in the wall time as it reads now: the window ends at the last closed bucket, ~1 s ago.
      const to = Date.parse(minute.to!);
      expect(to).toBeLessThanOrEqual(c.wall);
      expect(to).toBeGreaterThan(c.wall - 2000);
      expect(Date.parse(minute.from!)).toBe(to - 10_000); // the first bucket with data

      // The last 3 s (a short window, and since= in the new wall time) hold only post-step traffic.
      expect((await top(t, c.wall, 3000)).totalBytes).toBe(3 * 200);
      expect((await top(t, c.wall, 60_000, { since: '4s' })).totalBytes).toBe(4 * 200);
      expect((await top(t, c.wall, 60_000, { until: new Date(c.wall - 7000).toISOString() })).totalBytes).toBe(4 * 100);
      expect(t.agent.topWindows.clockSteps).toBe(1);
    });
  }

  it('expiry measures true ages: a step back does not keep idle flows, a step forward does not expire busy ones', async () => {
    const c: Clocks = { wall: T0, mono: 5_000_000 };
    const t = await makeAgent({ clock: () => c.wall, monoClock: () => c.mono, expiry: { udpIdleMs: 10_000 } });
    const poll = async (flows: ReturnType<typeof udp>[]): Promise<void> => {
      c.wall += 1000;
      c.mono += 1000;
      t.source.push(flows);
      await t.agent.collector.pollOnce();
    };
    const idle = udp('10.0.0.1', '10.0.0.9', 1000, 53, 1, 100);
    const busy = udp('10.0.0.2', '10.0.0.9', 2000, 53, 1, 100);
    await poll([idle, busy]);
    c.wall -= HOUR;
    for (let i = 0; i < 12; i++) await poll([busy]);
    expect(t.agent.collector.wallSteps).toBe(1);
    // `idle` was last seen 12 s ago (of elapsed time): gone, although the wall clock reads an hour earlier.
    expect(t.agent.table.expired.idle).toBe(1);
    expect(t.agent.table.size).toBe(1);
    c.wall += 2 * HOUR;
    for (let i = 0; i < 3; i++) await poll([busy]);
    expect(t.agent.collector.wallSteps).toBe(2);
    // `busy` is seen every second: not idle, although the wall clock jumped an hour ahead.
    expect(t.agent.table.expired.idle).toBe(1);
    const records = t.agent.flows({}, 100).flows.filter((r) => r.src === '10.0.0.2');
    const last = records[0];
    // Labelled in the new wall time, and one flow throughout: firstSeen moved with the steps, start <= end.
    expect(Date.parse(last.end)).toBe(c.wall);
    expect(Date.parse(last.start)).toBe(c.wall - 1000);
    expect(Math.abs(Date.parse(last.firstSeen) - (c.wall - 15_000))).toBeLessThanOrEqual(1); // the source stamps first packets 1 ms early
    for (const r of records) expect(Date.parse(r.start)).toBeLessThanOrEqual(Date.parse(r.end));
  });

  it('without a separate monotonic clock (one injected clock) the windows follow it, as before', async () => {
    const t = await makeAgent();
    for (let i = 0; i < 3; i++) await t.poll([udp('10.0.0.1', '10.0.0.9', 1000, 53, 1, 100)]);
    await t.poll();
    expect((await top(t, t.now(), 60_000)).totalBytes).toBe(300);
    expect(t.agent.topWindows.clockSteps).toBe(0);
  });

  it('a batch that claims a far-future end goes to the open bucket instead of freezing the windows', async () => {
    let wall = T0;
    const tw = new TopWindows({ bucketMs: 1000, horizonMs: HOUR, capacity: 10 }, fakeTuples(), () => 'eth0', () => wall);
    const batch = (endMs: number, bytes: number) => ({ count: 1, endMs, flowId: Uint32Array.of(0), packets: Float64Array.of(1), bytes: Float64Array.of(bytes), cgroup: Float64Array.of(0) });
    await tw.add(batch(Date.UTC(2999, 0, 1), 1000) as never);
    wall += 1000;
    await tw.add(batch(wall, 10) as never);
    wall += 1000;
    await tw.advance(wall);
    const answer = await tw.top({ by: 'src', metric: 'bytes', windowMs: 10_000, k: 10, filter: {} });
    expect(answer.totalBytes).toBe(1010);
    expect(Date.parse(answer.to!)).toBe(Math.floor(wall / 1000) * 1000);
  });
});

function fakeTuples() {
  return {
    ifindex: () => 2,
    meta: () => packMeta('ingress', 4, 17, 0, 0),
    ports: () => 0,
    srcId: () => 0,
    dstId: () => 1,
    srcText: () => '10.0.0.1',
    dstText: () => '10.0.0.2',
  } as never;
}
