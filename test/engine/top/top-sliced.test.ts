/**
 * Filtered top-talker queries are time-sliced (issue 10): a query that tests
 * every kept flow of a long window yields to the event loop every few ms,
 * and answers exactly what the one-go computation answers.
 */
import { describe, expect, it } from 'vitest';
import { parseFlowFilter } from '../../../src/flow/filter.js';
import type { TopQuery } from '../../../src/engine/top/top-windows.js';
import { makeAgent, udp } from '../../helpers/agent-fixture.js';

describe('TopWindows.topSliced', () => {
  it('answers a filtered query over 120 buckets x 2000 kept flows like top(), never holding the event loop for long', async () => {
    const t = await makeAgent({ storeSize: 1000, top: { bucketMs: 1000, horizonMs: 3_600_000, capacity: 2000 } });
    for (let b = 0; b < 120; b++) {
      await t.poll(Array.from({ length: 2000 }, (_, i) => udp(`10.${b % 7}.${i >> 8}.${i & 255}`, '10.200.0.1', 1000 + i, 53, 1 + (i % 5), 100 + i)));
    }
    t.advance(1000);
    await t.agent.collector.pollOnce();
    const w = t.agent.topWindows;
    const query = (k: number): TopQuery => ({ by: 'src', metric: 'bytes', windowMs: 3_600_000, k, filter: parseFlowFilter({ src: '10.0.0.0/8', dport: 53 }, t.now()) });

    const syncStart = performance.now();
    const whole = await w.top(query(11));
    const syncMs = performance.now() - syncStart;

    // the longest time the event loop waited while the sliced query ran
    let worstGap = 0;
    let last = performance.now();
    let running = true;
    let ticks = 0;
    const tick = (): void => {
      const now = performance.now();
      worstGap = Math.max(worstGap, now - last);
      last = now;
      ticks++;
      if (running) setImmediate(tick);
    };
    setImmediate(tick);
    const slicedStart = performance.now();
    const sliced = await w.topSliced(query(10));
    const slicedMs = performance.now() - slicedStart;
    running = false;

    console.log(`[measure] filtered /top over ${w.bucketCount} buckets: one go ${syncMs.toFixed(0)} ms; sliced ${slicedMs.toFixed(0)} ms, event loop held at most ${worstGap.toFixed(1)} ms`);
    expect(sliced.entries).toEqual(whole.entries.slice(0, 10));
    expect([sliced.totalBytes, sliced.totalPackets, sliced.exact, sliced.from, sliced.to]).toEqual([whole.totalBytes, whole.totalPackets, whole.exact, whole.from, whole.to]);
    expect(sliced.totalBytes).toBeGreaterThan(0);
    // Sliced: the event loop ran other work many times while the query did (times are measured above, not asserted:
    // they depend on the machine's load).
    expect(ticks).toBeGreaterThan(10);
  }, 120_000);
});
