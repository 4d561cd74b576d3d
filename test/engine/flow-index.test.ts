/**
 * The flow table's typed hash index (keyed by FlowBatch.keyWords), the
 * grouping index and the sliced top-k of top-talkers closes: checked against
 * plain Map / sort models on many keys, with deletions, growth and slot reuse.
 */
import { describe, expect, it } from 'vitest';
import { AddressTable } from '../../src/flow/address-table.js';
import { DEFAULT_EXPIRY } from '../../src/engine/expiry.js';
import { FlowTable } from '../../src/engine/flow-table.js';
import { NumberIndex } from '../../src/lib/number-index.js';
import { RecordBatch } from '../../src/flow/record-batch.js';
import { Slicer } from '../../src/lib/slicer.js';
import { ColumnarFlowBatch, type SyntheticFlow } from '../../src/datapath/synthetic-source.js';
import { TopKSelector, topK } from '../../src/lib/top-k.js';

const T = 1_700_000_000_000;

function rng(seed: number) {
  return () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
}

function flowOf(id: number, packets: number, at: number): SyntheticFlow {
  const v6 = id % 5 === 0;
  return {
    iface: 'eth0',
    direction: id % 2 === 0 ? 'ingress' : 'egress',
    src: v6 ? `2001:db8::${((id >> 8) + 1).toString(16)}` : `10.${(id >> 16) & 255}.${(id >> 8) & 255}.${id & 255}`,
    dst: v6 ? '2001:db8::ffff' : '192.168.0.1',
    proto: id % 3 === 0 ? 6 : 17,
    sport: 1000 + (id & 255),
    dport: 53,
    packets,
    bytes: packets * 100,
    firstSeenMs: at,
    lastSeenMs: at,
  };
}

describe('FlowTable index', () => {
  it('matches a Map model through inserts, expiries, slot reuse and index growth', () => {
    const addresses = new AddressTable();
    const table = new FlowTable(addresses, { ...DEFAULT_EXPIRY, udpIdleMs: 5000, tcpIdleMs: 5000 });
    const out = new RecordBatch(997, addresses, () => 'eth0', 'n');
    const rand = rng(7);
    const model = new Map<string, { packets: number; lastSeen: number }>();
    const keyOf = (f: SyntheticFlow) => `${f.direction} ${f.src} ${f.dst} ${f.proto} ${f.sport}`;
    let now = T;
    for (let round = 0; round < 40; round++) {
      now += 1000;
      // A batch of distinct flows out of 20,000 possible, as a kernel drain is.
      const ids = new Set<number>();
      const want = Math.floor(rand() * 6000);
      while (ids.size < want) ids.add(Math.floor(rand() * 20_000));
      const b = new ColumnarFlowBatch();
      const expected = new Map<string, number>();
      for (const id of ids) {
        const f = flowOf(id, 1 + (id % 7), now);
        b.add(2, f, now);
        expected.set(keyOf(f), f.packets);
        const m = model.get(keyOf(f));
        model.set(keyOf(f), { packets: (m?.packets ?? 0) + f.packets, lastSeen: now });
      }
      for (let from = 0; from < b.count; from += 1000) table.accumulate(b, from, Math.min(b.count, from + 1000));
      const seen = new Map<string, number>();
      while (table.exportPending(out) > 0) {
        for (let i = 0; i < out.count; i++) {
          const slot = out.flowId[i];
          const direction = (out.meta[i] & 1) === 1 ? 'egress' : 'ingress';
          const key = `${direction} ${addresses.text(out.srcId[i])} ${addresses.text(out.dstId[i])} ${(out.meta[i] >>> 2) & 0xff} ${out.ports[i] >>> 16}`;
          expect(seen.has(key)).toBe(false);
          seen.set(key, out.packets[i]);
          expect(table.srcText(slot)).toBe(addresses.text(out.srcId[i]));
        }
      }
      table.finishExport();
      expect(seen).toEqual(expected);
      // Expire what the model says is idle; release every other round.
      table.sweep(now);
      for (const [k, m] of model) if (now - m.lastSeen > 5000) model.delete(k);
      expect(table.size).toBe(model.size);
      if (round % 2 === 1) table.releaseRetired();
    }
    expect(table.expired.idle).toBeGreaterThan(1000);
    // Slots were reused: far fewer than the flows ever created.
    expect(table.slotLimit).toBeLessThan(20_000);
  });

  it('keeps counts exact when the same flow appears twice in one batch', () => {
    const addresses = new AddressTable();
    const table = new FlowTable(addresses);
    const out = new RecordBatch(16, addresses, () => 'eth0', 'n');
    const b = new ColumnarFlowBatch();
    b.add(2, flowOf(1, 3, T), T);
    b.add(2, flowOf(1, 4, T), T);
    table.accumulate(b, 0, b.count);
    expect(table.size).toBe(1);
    expect(table.exportPending(out)).toBe(1);
    expect(out.packets[0]).toBe(7);
  });
});

describe('NumberIndex', () => {
  it('gives dense ids in order of first sight, across growth and clear', () => {
    const index = new NumberIndex(4);
    const rand = rng(3);
    for (let pass = 0; pass < 2; pass++) {
      const model = new Map<number, number>();
      for (let i = 0; i < 20_000; i++) {
        // keys as the pair dimension builds them: up to 2^52
        const key = Math.floor(rand() * 30_000) * 67_108_864 + Math.floor(rand() * 3);
        if (!model.has(key)) model.set(key, model.size);
        expect(index.idOf(key)).toBe(model.get(key));
      }
      expect(index.size).toBe(model.size);
      for (const [key, id] of model) expect(index.get(key)).toBe(id);
      expect(index.get(2 ** 52 + 1)).toBe(-1);
      index.clear(10);
      expect(index.size).toBe(0);
    }
  });
});

describe('TopKSelector', () => {
  it('gives what a sort gives, fed in ranges, ties included', () => {
    const rand = rng(11);
    for (const [n, k] of [[0, 3], [5, 10], [1000, 10], [20_000, 1000], [20_000, 1]]) {
      const values = new Float64Array(n);
      for (let i = 0; i < n; i++) values[i] = Math.floor(rand() * 50);
      const s = new TopKSelector(k, values);
      for (let from = 0; from < n; from += 777) s.offer(from, Math.min(n, from + 777));
      // the sort model: largest first, ties to the lower index
      const model = Array.from({ length: n }, (_, i) => i).sort((a, b) => values[b] - values[a] || a - b).slice(0, k);
      expect(s.result()).toEqual(model);
      expect(topK(n, k, (i) => values[i])).toEqual(model);
    }
  });
});

describe('Slicer', () => {
  it('says when a slice is used up and lets the event loop run on next()', async () => {
    const slicer = new Slicer(1);
    let ran = false;
    setImmediate(() => (ran = true));
    const until = performance.now() + 2;
    while (performance.now() < until);
    expect(slicer.due).toBe(true);
    await slicer.next();
    expect(ran).toBe(true);
    expect(slicer.due).toBe(false);
    expect(slicer.yields).toBe(1);
  });
});
