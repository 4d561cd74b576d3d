import { describe, expect, it } from 'vitest';
import { AddressTable } from '../../src/service/address-table.js';
import { DEFAULT_EXPIRY, type ExpiryConfig } from '../../src/service/expiry.js';
import { FlowTable } from '../../src/service/flow-table.js';
import { RecordBatch } from '../../src/service/record-batch.js';
import { ColumnarFlowBatch, type SyntheticFlow } from '../../src/service/synthetic-source.js';

const T = 1_700_000_000_000;
const FIN = 1, SYN = 2, RST = 4, ACK = 16;

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
      flow({ proto: 6, sport: 2, tcpFlags: RST }),
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

  it('evicts the least recently seen flows beyond maxFlows', () => {
    const { table, feed, exportAll } = setup({ maxFlows: 10 });
    feed(Array.from({ length: 12 }, (_, i) => flow({ sport: i, firstSeenMs: T + i, lastSeenMs: T + i })), T + 20);
    exportAll();
    table.sweep(T + 20, 0);
    expect(table.size).toBe(9);
    expect(table.expired.evicted).toBe(3);
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
});
