import { describe, expect, it } from 'vitest';
import type { RecordBatch } from '../../src/flow/record-batch.js';
import type { FlowRecord } from '../../src/flow/record.js';
import type { RecordSink, SinkStatus } from '../../src/engine/sink.js';
import type { SyntheticFlow, SyntheticNonFlow } from '../../src/datapath/synthetic-source.js';
import { makeAgent } from '../helpers/agent-fixture.js';

/** A sink that keeps every record it is given. */
class CaptureSink implements RecordSink {
  readonly name = 'capture';
  records: FlowRecord[] = [];
  flushes = 0;
  write(batch: RecordBatch): void {
    for (let i = 0; i < batch.count; i++) this.records.push(batch.toRecord(i));
  }
  async flush(): Promise<void> {
    this.flushes++;
  }
  async close(): Promise<void> {}
  status(): SinkStatus {
    return { name: this.name, exported: this.records.length, dropped: 0 };
  }
}

/** Deterministic pseudo-random numbers. */
function rng(seed: number) {
  return () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
}

function randomTraffic(rand: () => number): { flows: SyntheticFlow[]; nonFlows: SyntheticNonFlow[] } {
  const flows: SyntheticFlow[] = [];
  for (let n = Math.floor(rand() * 40); n > 0; n--) {
    const v6 = rand() < 0.3;
    const proto = [6, 17, 1, 47][Math.floor(rand() * 4)];
    flows.push({
      iface: rand() < 0.5 ? 'eth0' : 'eth1',
      direction: rand() < 0.5 ? 'ingress' : 'egress',
      src: v6 ? `2001:db8::${Math.floor(rand() * 8)}` : `10.0.0.${Math.floor(rand() * 8)}`,
      dst: v6 ? '2001:db8::ff' : '10.0.0.254',
      proto: v6 && proto === 1 ? 58 : proto,
      sport: Math.floor(rand() * 4),
      dport: 80,
      packets: 1 + Math.floor(rand() * 100),
      bytes: 60 + Math.floor(rand() * 100_000),
      tcpFlags: proto === 6 ? Math.floor(rand() * 32) : 0,
    });
  }
  const nonFlows: SyntheticNonFlow[] = [];
  if (rand() < 0.3) nonFlows.push({ iface: 'eth0', direction: 'ingress', kind: 'other', packets: 3, bytes: 180 });
  if (rand() < 0.3) nonFlows.push({ iface: 'eth1', direction: 'egress', kind: 'overflow', packets: 2, bytes: 2000 });
  return { flows, nonFlows };
}

describe('Collector', () => {
  for (const exportEveryPolls of [1, 3]) {
    it(`emits records whose sums equal the kernel counts exactly (export every ${exportEveryPolls} polls)`, async () => {
      const capture = new CaptureSink();
      const t = await makeAgent({ sinks: [capture], storeSize: 100_000, collector: { exportEveryPolls, chunkSize: 7 }, expiry: { udpIdleMs: 3000, tcpIdleMs: 3000, otherIdleMs: 3000, icmpIdleMs: 3000, tcpFinMs: 2000, tcpRstMs: 1000 } });
      const rand = rng(42 + exportEveryPolls);
      const expected = new Map<string, { packets: number; bytes: number }>();
      const add = (k: string, p: number, b: number) => {
        const e = expected.get(k) ?? { packets: 0, bytes: 0 };
        e.packets += p;
        e.bytes += b;
        expected.set(k, e);
      };
      for (let poll = 0; poll < 60; poll++) {
        const { flows, nonFlows } = randomTraffic(rand);
        for (const f of flows) add(`${f.iface}/${f.direction}`, f.packets, f.bytes);
        await t.poll(flows, nonFlows, 1000 + Math.floor(rand() * 2000));
      }
      await t.agent.collector.stop(); // exports what is pending
      const got = new Map<string, { packets: number; bytes: number }>();
      for (const r of capture.records) {
        const k = `${r.iface}/${r.direction}`;
        const e = got.get(k) ?? { packets: 0, bytes: 0 };
        e.packets += r.packets;
        e.bytes += r.bytes;
        got.set(k, e);
      }
      expect(got).toEqual(expected);
      // and against the interface accounting: flows = totals - other - overflow
      for (const i of t.agent.interfaceAccounting.report()) {
        for (const [side, direction] of [[i.rx, 'ingress'], [i.tx, 'egress']] as const) {
          const e = expected.get(`${i.iface}/${direction}`) ?? { packets: 0, bytes: 0 };
          expect(side.packets - side.otherPackets - side.overflowPackets).toBe(e.packets);
          expect(side.bytes - side.otherBytes - side.overflowBytes).toBe(e.bytes);
        }
      }
      // the store saw the same records as the other sink
      expect(t.agent.store.seen).toBe(capture.records.length);
      expect(capture.flushes).toBeGreaterThan(0);
    });
  }

  it('emits one record per flow and export, with the export interval as start/end', async () => {
    const capture = new CaptureSink();
    const t = await makeAgent({ sinks: [capture], collector: { exportEveryPolls: 2 } });
    const f: SyntheticFlow = { iface: 'eth0', direction: 'ingress', src: '10.0.0.1', dst: '10.0.0.2', proto: 17, sport: 1, dport: 2, packets: 1, bytes: 100 };
    const start = t.now();
    await t.poll([f]);
    expect(capture.records).toHaveLength(0);
    await t.poll([{ ...f, packets: 2, bytes: 200 }]);
    expect(capture.records).toHaveLength(1);
    expect(capture.records[0]).toMatchObject({ packets: 3, bytes: 300, start: new Date(start).toISOString(), end: new Date(start + 2000).toISOString() });
  });

  it('counts overflow and other frames per interface, reported in status', async () => {
    const t = await makeAgent();
    await t.poll([], [
      { iface: 'eth0', direction: 'ingress', kind: 'overflow', packets: 5, bytes: 5000 },
      { iface: 'eth1', direction: 'egress', kind: 'other', packets: 2, bytes: 120 },
    ]);
    const s = t.agent.status();
    expect(s).toMatchObject({ overflowPackets: 5, overflowBytes: 5000, otherPackets: 2, otherBytes: 120 });
    expect(s.datapathFailures.flow_map_full).toBe(5);
    const eth0 = t.agent.interfaceAccounting.report().find((i) => i.iface === 'eth0')!;
    expect(eth0.rx).toMatchObject({ packets: 5, bytes: 5000, overflowPackets: 5, overflowBytes: 5000 });
  });

  it('computes rates over the recent polls', async () => {
    const t = await makeAgent({ rateWindowMs: 5000 });
    for (let i = 0; i < 10; i++) await t.poll([{ iface: 'eth0', direction: 'egress', src: '10.0.0.1', dst: '10.0.0.2', packets: 100, bytes: 1000 }]);
    const eth0 = t.agent.interfaceAccounting.report().find((i) => i.iface === 'eth0')!;
    expect(eth0.tx.pps).toBe(100);
    expect(eth0.tx.bps).toBe(8000);
    expect(eth0.rx.pps).toBe(0);
    for (let i = 0; i < 6; i++) await t.poll();
    expect(t.agent.interfaceAccounting.report().find((i) => i.iface === 'eth0')!.tx.pps).toBe(0);
  });

  it('counts failed drains and keeps going', async () => {
    const t = await makeAgent();
    t.source.failNextDrain = new Error('boom');
    await expect(t.poll()).rejects.toThrow('boom');
    expect(t.agent.status()).toMatchObject({ pollErrors: 1, lastError: 'boom', polls: 0, ready: false });
    await t.poll();
    expect(t.agent.status()).toMatchObject({ pollErrors: 1, lastError: null, polls: 1, ready: true });
  });

  it('polls on its own at the interval and never overlaps drains', async () => {
    const t = await makeAgent({ clock: Date.now, collector: { pollIntervalMs: 20 } });
    let inDrain = 0;
    let maxInDrain = 0;
    const drain = t.source.drain.bind(t.source);
    t.source.drain = async () => {
      maxInDrain = Math.max(maxInDrain, ++inDrain);
      await new Promise((r) => setTimeout(r, 30)); // slower than the interval
      try {
        return await drain();
      } finally {
        inDrain--;
      }
    };
    t.agent.start();
    await new Promise((r) => setTimeout(r, 300));
    await t.agent.collector.stop();
    expect(maxInDrain).toBe(1);
    expect(t.agent.collector.polls).toBeGreaterThanOrEqual(4);
  });
});
