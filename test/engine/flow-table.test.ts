import { describe, expect, it } from 'vitest';
import { AddressTable } from '../../src/flow/address-table.js';
import { DEFAULT_EXPIRY, type ExpiryConfig } from '../../src/engine/expiry.js';
import { FlowTable } from '../../src/engine/flow-table.js';
import { RecordBatch } from '../../src/flow/record-batch.js';
import { ColumnarFlowBatch, type SyntheticFlow } from '../../src/datapath/synthetic-source.js';

const T = 1_700_000_000_000;
const FIN = 1, SYN = 2, RST = 4, PSH = 8, ACK = 16;

function batchOf(flows: SyntheticFlow[], now: number): ColumnarFlowBatch {
  const b = new ColumnarFlowBatch();
  for (const f of flows) b.add(f.iface === 'eth1' ? 3 : 2, f, now);
  return b;
}

function flow(over: Partial<SyntheticFlow> = {}): SyntheticFlow {
  return { iface: 'eth0', direction: 'ingress', src: '10.0.0.1', dst: '10.0.0.2', proto: 17, sport: 1000, dport: 53, packets: 1, bytes: 100, ...over };
}

function setup(expiry: Partial<ExpiryConfig> = {}) {
  const addresses = new AddressTable();
  const table = new FlowTable(addresses, { ...DEFAULT_EXPIRY, ...expiry });
  const out = new RecordBatch(4, addresses, () => 'eth0', 'n');
  const feed = (flows: SyntheticFlow[], now: number) => {
    const b = batchOf(flows, now);
    table.accumulate(b, 0, b.count);
  };
  const exportAll = () => {
    const records: { packets: number; bytes: number; first: number; last: number; flags: number; src: string }[] = [];
    while (table.exportPending(out) > 0) {
      for (let i = 0; i < out.count; i++) {
        records.push({ packets: out.packets[i], bytes: out.bytes[i], first: out.firstSeen[i], last: out.lastSeen[i], flags: out.tcpFlags[i], src: addresses.text(out.srcId[i]) });
      }
    }
    table.finishExport();
    return records;
  };
  return { addresses, table, feed, exportAll };
}

describe('FlowTable', () => {
  it('accumulates deltas until exported, then starts from zero', () => {
    const { table, feed, exportAll } = setup();
    feed([flow({ packets: 2, bytes: 200, firstSeenMs: T, lastSeenMs: T + 10 })], T + 10);
    feed([flow({ packets: 3, bytes: 300, firstSeenMs: T + 500, lastSeenMs: T + 900 })], T + 900);
    expect(table.size).toBe(1);
    expect(exportAll()).toEqual([{ packets: 5, bytes: 500, first: T, last: T + 900, flags: 0, src: '10.0.0.1' }]);
    expect(exportAll()).toEqual([]);
    feed([flow({ packets: 1, bytes: 60, firstSeenMs: T + 1500, lastSeenMs: T + 1500 })], T + 1500);
    // firstSeen is the flow's, across exports
    expect(exportAll()).toEqual([{ packets: 1, bytes: 60, first: T, last: T + 1500, flags: 0, src: '10.0.0.1' }]);
  });

  it('keeps flows apart by every identity field', () => {
    const { table, feed, exportAll } = setup();
    feed([
      flow(),
      flow({ direction: 'egress' }),
      flow({ iface: 'eth1' }),
      flow({ sport: 1001 }),
      flow({ dport: 54 }),
      flow({ proto: 6 }),
      flow({ src: '10.0.0.3' }),
      flow({ dst: '10.0.0.4' }),
      flow({ proto: 1, icmpType: 8 }),
      flow({ proto: 1, icmpType: 0 }),
    ], T);
    expect(table.size).toBe(10);
    expect(exportAll()).toHaveLength(10);
  });

  it('exports more flows than one batch holds, each exactly once', () => {
    const { table, feed, exportAll } = setup();
    const flows = Array.from({ length: 11 }, (_, i) => flow({ sport: 2000 + i, packets: i + 1, bytes: 10 * (i + 1) }));
    feed(flows, T);
    const records = exportAll();
    expect(records).toHaveLength(11);
    expect(records.reduce((s, r) => s + r.packets, 0)).toBe(66);
    expect(table.pending).toBe(0);
  });

  it('expires idle flows by protocol timeout, and a later packet starts a new flow', () => {
    const { table, feed, exportAll } = setup({ udpIdleMs: 10_000, tcpIdleMs: 60_000 });
    feed([flow({ firstSeenMs: T, lastSeenMs: T }), flow({ proto: 6, firstSeenMs: T, lastSeenMs: T })], T);
    exportAll();
    expect(table.sweep(T + 10_000)).toBe(0);
    expect(table.sweep(T + 10_001)).toBe(1);
    expect(table.size).toBe(1);
    expect(table.expired.idle).toBe(1);
    feed([flow({ firstSeenMs: T + 20_000, lastSeenMs: T + 20_000 })], T + 20_000);
    expect(exportAll()[0].first).toBe(T + 20_000);
    expect(table.sweep(T + 60_001)).toBe(2); // the TCP flow and the new UDP one
  });

  it('shortens the TCP timeout after FIN and RST', () => {
    const { table, feed, exportAll } = setup({ tcpIdleMs: 3_600_000, tcpFinMs: 300_000, tcpRstMs: 120_000 });
    feed([
      flow({ proto: 6, sport: 1, tcpFlags: ACK | FIN }),
      flow({ proto: 6, sport: 2, tcpFlags: ACK | PSH | RST }),
      flow({ proto: 6, sport: 3, tcpFlags: ACK }),
    ].map((f) => ({ ...f, firstSeenMs: T, lastSeenMs: T })), T);
    exportAll();
    expect(table.sweep(T + 120_001)).toBe(1);
    expect(table.expired.rst).toBe(1);
    expect(table.sweep(T + 300_001)).toBe(1);
    expect(table.expired.fin).toBe(1);
    expect(table.size).toBe(1);
  });

  it('starts a new flow when a SYN follows a FIN on the same tuple', () => {
    const { feed, exportAll, table } = setup();
    feed([flow({ proto: 6, tcpFlags: FIN | ACK, firstSeenMs: T, lastSeenMs: T })], T);
    exportAll();
    feed([flow({ proto: 6, tcpFlags: SYN, firstSeenMs: T + 5000, lastSeenMs: T + 5000 })], T + 5000);
    const [r] = exportAll();
    expect(r.first).toBe(T + 5000);
    expect(r.flags).toBe(SYN);
    expect(table.expired.fin).toBe(1);
  });

  it('ends flows older than the active timeout even when busy', () => {
    const { table, feed, exportAll } = setup({ activeMs: 30_000 });
    for (let t = 0; t <= 40_000; t += 10_000) {
      feed([flow({ firstSeenMs: T + t, lastSeenMs: T + t })], T + t);
      exportAll();
      table.sweep(T + t);
    }
    expect(table.expired.active).toBe(1);
  });

  it('never expires a flow whose counts are not exported yet', () => {
    const { table, feed, exportAll } = setup({ udpIdleMs: 1000 });
    feed([flow({ firstSeenMs: T, lastSeenMs: T, packets: 7 })], T);
    expect(table.sweep(T + 5000)).toBe(0);
    expect(exportAll()[0].packets).toBe(7);
    expect(table.sweep(T + 5000)).toBe(1);
  });

  it('evicts the oldest flows beyond maxFlows, down to maxFlows', () => {
    const { table, feed, exportAll } = setup({ maxFlows: 10 });
    for (let i = 0; i < 12; i++) feed([flow({ sport: i, firstSeenMs: T + i, lastSeenMs: T + i })], T + i);
    exportAll();
    table.sweep(T + 20, 0);
    expect(table.size).toBe(10);
    expect(table.expired.evicted).toBe(2);
    // The two oldest went: their next packets start new flows, the others keep their firstSeen.
    feed(Array.from({ length: 12 }, (_, i) => flow({ sport: i, firstSeenMs: T + 100, lastSeenMs: T + 100 })), T + 100);
    const first = exportAll().map((r) => r.first).sort((a, b) => a - b);
    expect(first.filter((t) => t === T + 100)).toHaveLength(2);
    expect(first.slice(0, 10)).toEqual(Array.from({ length: 10 }, (_, i) => T + 2 + i));
  });

  it('evicts flows seen in one poll only (a flood) before flows seen again, whatever their age', () => {
    const { table, feed, exportAll } = setup({ maxFlows: 50 });
    const regular = Array.from({ length: 5 }, (_, i) => flow({ proto: 6, sport: 40_000 + i, dport: 443, tcpFlags: ACK }));
    feed(regular.map((f) => ({ ...f, firstSeenMs: T, lastSeenMs: T })), T);
    exportAll();
    feed(regular.map((f) => ({ ...f, firstSeenMs: T + 1000, lastSeenMs: T + 1000 })), T + 1000);
    exportAll();
    for (let poll = 0; poll < 10; poll++) {
      const at = T + 2000 + poll * 1000;
      feed(Array.from({ length: 100 }, (_, i) => flow({ proto: 6, src: `10.1.${poll}.${i}`, sport: 1024 + i, dport: 80, tcpFlags: SYN, firstSeenMs: at, lastSeenMs: at })), at);
      exportAll();
      table.sweep(at, 0);
      expect(table.size).toBe(50);
    }
    expect(table.expired.evicted).toBe(5 + 1000 - 50);
    feed(regular.map((f) => ({ ...f, firstSeenMs: T + 20_000, lastSeenMs: T + 20_000 })), T + 20_000);
    expect(exportAll().map((r) => r.first)).toEqual(regular.map(() => T)); // all five kept
  });

  it('never evicts a flow with unexported counts; evicts it once exported, counts exact', () => {
    const { table, feed, exportAll } = setup({ maxFlows: 5 });
    feed(Array.from({ length: 10 }, (_, i) => flow({ sport: i, packets: i + 1, firstSeenMs: T, lastSeenMs: T })), T);
    expect(table.overLimit).toBe(true);
    expect(table.sweep(T, 0)).toBe(0);
    expect(table.size).toBe(10);
    const records = exportAll();
    expect(records.reduce((s, r) => s + r.packets, 0)).toBe(55);
    expect(table.sweep(T, 0)).toBe(5);
    expect(table.size).toBe(5);
    expect(table.overLimit).toBe(false);
    expect(table.expired.evicted).toBe(5);
    expect(exportAll()).toEqual([]);
  });

  it('evicts in time proportional to the evicted flows, not to the table', () => {
    const timeToEvict = (flows: number) => {
      const { table, feed, exportAll } = setup({ maxFlows: 1 << 30 });
      const batch: SyntheticFlow[] = [];
      for (let i = 0; i < flows; i++) batch.push(flow({ src: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, sport: 1000 + (i % 7), firstSeenMs: T, lastSeenMs: T }));
      feed(batch, T);
      exportAll();
      let best = Infinity;
      for (let round = 0; round < 5; round++) {
        const t0 = performance.now();
        expect(table.evict(200)).toBe(200);
        best = Math.min(best, performance.now() - t0);
      }
      return best;
    };
    timeToEvict(2000); // warm-up
    const small = timeToEvict(2000);
    const large = timeToEvict(100_000);
    // A scan or a sort of the table would make this 100 times slower.
    expect(large).toBeLessThan(Math.max(10 * small, 2));
  });

  it('ends TCP flows that never got past the handshake after tcpSynMs, as reason syn', () => {
    const { table, feed, exportAll } = setup({ tcpSynMs: 20_000, tcpIdleMs: 3_600_000, tcpRstMs: 120_000 });
    const at = { firstSeenMs: T, lastSeenMs: T };
    feed([
      flow({ proto: 6, sport: 1, tcpFlags: SYN, ...at }), // SYN_SENT
      flow({ proto: 6, sport: 2, tcpFlags: SYN | ACK, ...at }), // SYN_RECV: the answer, never acknowledged
      flow({ proto: 6, sport: 3, tcpFlags: RST | ACK, ...at }), // a refused SYN
      flow({ proto: 6, sport: 4, tcpFlags: FIN | PSH, ...at }), // a scan without ACK
      flow({ proto: 6, sport: 5, tcpFlags: SYN | ACK | PSH, ...at }), // a whole exchange within one poll
      flow({ proto: 6, sport: 6, tcpFlags: ACK, ...at }), // an established connection
    ], T);
    exportAll();
    expect(table.sweep(T + 20_000)).toBe(0);
    expect(table.sweep(T + 20_001)).toBe(4);
    expect(table.expired.syn).toBe(4);
    expect(table.size).toBe(2);
    // A handshake that completes in a later poll makes the flow established.
    feed([flow({ proto: 6, sport: 7, tcpFlags: SYN, firstSeenMs: T + 30_000, lastSeenMs: T + 30_000 })], T + 30_000);
    feed([flow({ proto: 6, sport: 7, tcpFlags: ACK, firstSeenMs: T + 31_000, lastSeenMs: T + 31_000 })], T + 31_000);
    exportAll();
    expect(table.sweep(T + 60_000)).toBe(0);
    expect(table.size).toBe(3);
  });

  it('releases addresses only when retired slots are released', () => {
    const { table, feed, exportAll, addresses } = setup({ udpIdleMs: 1000 });
    feed([flow({ firstSeenMs: T, lastSeenMs: T })], T);
    exportAll();
    table.sweep(T + 2000);
    expect(addresses.size).toBe(2);
    expect(table.srcText(0)).toBe('10.0.0.1'); // still readable while retired
    table.releaseRetired();
    expect(addresses.size).toBe(0);
    feed([flow({ src: '10.9.9.9', firstSeenMs: T + 3000, lastSeenMs: T + 3000 })], T + 3000);
    expect(table.slotLimit).toBe(1); // the slot was reused
    expect(exportAll()[0].src).toBe('10.9.9.9');
  });

  it('rebuilds the index under a new key when a probe is too long, losing no count and no flow', () => {
    const addresses = new AddressTable();
    // maxProbe 0: every collision asks for a rebuild (a real table uses 128).
    const table = new FlowTable(addresses, { ...DEFAULT_EXPIRY }, { seed: { k0: 1, k1: 2 }, maxProbe: 0 });
    const out = new RecordBatch(1000, addresses, () => 'eth0', 'n');
    let exported = 0;
    let expected = 0;
    for (let poll = 0; poll < 6; poll++) {
      const b = new ColumnarFlowBatch();
      // 3000 flows, half of them seen in the previous poll
      for (let i = poll * 1500; i < poll * 1500 + 3000; i++) {
        b.add(2, flow({ src: `10.0.${i >> 8}.${i & 255}`, packets: 1 + (i % 3), firstSeenMs: T + poll * 1000, lastSeenMs: T + poll * 1000 }), T + poll * 1000);
        expected += 1 + (i % 3);
      }
      table.accumulate(b, 0, b.count);
      while (table.exportPending(out) > 0) for (let i = 0; i < out.count; i++) exported += out.packets[i];
      table.finishExport();
      expect(table.size).toBe(poll * 1500 + 3000); // no flow inserted twice
    }
    expect(exported).toBe(expected);
    expect(table.rekeys).toBeGreaterThan(0);
    expect(table.rekeys).toBeLessThan(100); // amortized: not one rebuild per insert
    // Known flows are still found: a poll of old flows inserts nothing.
    const again = new ColumnarFlowBatch();
    for (let i = 0; i < 3000; i++) again.add(2, flow({ src: `10.0.${i >> 8}.${i & 255}`, firstSeenMs: T + 9000, lastSeenMs: T + 9000 }), T + 9000);
    table.accumulate(again, 0, again.count);
    expect(table.size).toBe(10_500);
  });

  it('releases a flood of retired slots a slice at a time, never in one go', () => {
    const { table, feed, exportAll, addresses } = setup({ udpIdleMs: 1000 });
    feed(Array.from({ length: 10_000 }, (_, i) => flow({ src: `10.9.${i >> 8}.${i & 255}`, firstSeenMs: T, lastSeenMs: T })), T);
    exportAll();
    expect(table.sweep(T + 2000)).toBe(10_000);
    expect(table.retiredCount).toBe(10_000);
    table.releaseRetired();
    expect(table.retiredCount).toBe(10_000); // more than 4096: left for the sweeps
    table.sweep(T + 2000, 2048);
    expect(table.retiredCount).toBe(10_000 - 4096);
    // A new flow takes a slot of them at once.
    feed([flow({ src: '10.8.0.1', firstSeenMs: T + 3000, lastSeenMs: T + 3000 })], T + 3000);
    expect(table.slotLimit).toBe(10_000);
    table.sweep(T + 3000, 2048);
    table.sweep(T + 3000, 2048);
    expect(table.retiredCount).toBe(0);
    expect(addresses.size).toBe(2); // the new flow's
  });
});
