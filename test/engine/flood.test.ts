/**
 * Floods of new flows through a whole agent (synthetic source): the table
 * stays within max-flows after every poll, evicted flows are exported first
 * and counted, slots of old flows are reused at once while the open
 * top-talkers bucket keeps the ones it reads, and top talkers stay exact.
 */
import { describe, expect, it } from 'vitest';
import { parseFlowFilter } from '../../src/flow/filter.js';
import type { RecordBatch } from '../../src/flow/record-batch.js';
import type { RecordSink, SinkStatus } from '../../src/engine/sink.js';
import type { SyntheticFlow } from '../../src/datapath/synthetic-source.js';
import { makeAgent } from '../helpers/agent-fixture.js';

const SYN = 2;
const ACK = 16;

/** Sums exported packets per source address. */
class SumSink implements RecordSink {
  readonly name = 'sum';
  bySrc = new Map<string, number>();
  packets = 0;
  write(batch: RecordBatch): void {
    for (let i = 0; i < batch.count; i++) {
      const r = batch.toRecord(i);
      this.bySrc.set(r.src, (this.bySrc.get(r.src) ?? 0) + r.packets);
      this.packets += r.packets;
    }
  }
  async flush(): Promise<void> {}
  async close(): Promise<void> {}
  status(): SinkStatus {
    return { name: this.name, exported: 0, dropped: 0 };
  }
}

/** `n` SYNs from new sources (as hping3 --rand-source sends), `packets` distinct per flow. */
function synFlood(poll: number, n: number): SyntheticFlow[] {
  return Array.from({ length: n }, (_, i) => ({
    iface: 'eth0',
    direction: 'ingress' as const,
    src: `10.${100 + (poll >> 8)}.${poll & 255}.${i}`,
    dst: '10.0.0.1',
    proto: 6,
    sport: 1024 + i,
    dport: 80,
    packets: 1 + ((poll * 7 + i) % 5),
    bytes: 60,
    tcpFlags: SYN,
  }));
}

describe('a flood of new flows', () => {
  for (const [maxFlows, label] of [
    [150, 'fewer than a top-talkers bucket brings: victims are held until it closes'],
    [800, 'more than a bucket brings: victims are old and their slots reused at once'],
  ] as const) {
    it(`keeps the table within max-flows ${maxFlows}, exports and counts every evicted flow, top talkers exact (${label})`, async () => {
      const sum = new SumSink();
      const t = await makeAgent({
        sinks: [sum],
        storeSize: 100,
        expiry: { maxFlows },
        top: { bucketMs: 5000, horizonMs: 3_600_000, capacity: 10_000 },
        collector: { exportEveryPolls: 3 },
      });
      const regular: SyntheticFlow = { iface: 'eth0', direction: 'ingress', src: '192.0.2.9', dst: '10.0.0.1', proto: 6, sport: 40_000, dport: 22, packets: 3, bytes: 300, tcpFlags: ACK };
      let sent = 0;
      let slotsMax = 0;
      for (let poll = 0; poll < 40; poll++) {
        const flows = [...synFlood(poll, 100), regular];
        sent += flows.reduce((s, f) => s + f.packets, 0);
        await t.poll(flows);
        expect(t.agent.table.size).toBeLessThanOrEqual(maxFlows);
        slotsMax = Math.max(slotsMax, t.agent.table.slotLimit);
      }
      await t.agent.collector.pollOnce(true);
      expect(sum.packets).toBe(sent); // nothing lost
      const evicted = t.agent.table.expired.evicted;
      expect(evicted).toBeGreaterThan(0);
      expect(t.agent.table.size + evicted).toBe(40 * 100 + 1); // every flood flow either tracked or evicted, counted
      // The regular flow, seen every poll, was never evicted.
      expect(t.agent.table.expired.evicted).toBeLessThanOrEqual(40 * 100);
      // Slots: max-flows plus one export's worth of new flows, plus (only with a small max-flows) the ones a bucket holds.
      if (maxFlows > 5 * 100) {
        expect(t.agent.table.releasedEarly).toBeGreaterThan(0);
        expect(slotsMax).toBeLessThanOrEqual(maxFlows + 3 * 101 + 1);
      } else {
        expect(slotsMax).toBeLessThanOrEqual(maxFlows + 3 * 101 + 5 * 101);
      }
      // Top talkers by source over every closed bucket: exactly what the records say (a reused slot would mix sources).
      t.advance(10_000);
      await t.agent.collector.pollOnce(true);
      const top = await t.agent.top({ by: 'src', metric: 'packets', windowMs: 3_600_000, k: 10_000, filter: parseFlowFilter({}, t.now()) });
      expect(top.exact).toBe(true);
      const fromTop = new Map(top.entries.map((e) => [e.key.src as string, e.packets]));
      expect(fromTop).toEqual(sum.bySrc);
      await t.agent.close();
    });
  }

  it('ends flood flows after the SYN timeout even without max-flows pressure', async () => {
    const t = await makeAgent({ expiry: { tcpSynMs: 5000 }, top: { bucketMs: 1000, horizonMs: 60_000, capacity: 100 } });
    for (let poll = 0; poll < 20; poll++) await t.poll(synFlood(poll, 50));
    // 20 s of SYNs, 5 s of them still tracked (plus the sweep's lag of one poll).
    expect(t.agent.table.size).toBeLessThanOrEqual(6 * 50);
    expect(t.agent.table.expired.syn).toBeGreaterThanOrEqual(14 * 50);
    expect(t.agent.status().flowsExpired.syn).toBe(t.agent.table.expired.syn);
    await t.agent.close();
  });
});
