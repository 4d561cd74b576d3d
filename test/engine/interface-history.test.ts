/**
 * The per-interface history: points are exact differences of the interface
 * accounting's totals, minutes are exact sums of their polls, rings wrap and
 * keep only what they hold whole, interfaces come, leave and come back.
 * Driven through the real InterfaceAccounting with known deltas, checked
 * against sums computed here from the same deltas.
 */
import { describe, expect, it } from 'vitest';
import type { InterfaceDelta } from '../../src/datapath/types.js';
import { InterfaceAccounting } from '../../src/engine/interface-accounting.js';
import { InterfaceHistory, interfaceHistoryBytes, type InterfaceSeries } from '../../src/engine/interface-history.js';

const MIN = 60_000;
/** a whole minute, so that minute and step boundaries are easy to see */
const T0 = 1_700_000_000_000 - (1_700_000_000_000 % MIN);

interface Poll {
  t: number;
  /** per ifindex: [rxPackets, rxBytes, txPackets, txBytes] */
  counts: Map<number, number[]>;
}

/** Drives an accounting and a history with pseudo-random traffic, remembering every poll's deltas. */
class Rig {
  readonly accounting = new InterfaceAccounting();
  readonly polls: Poll[] = [];
  private seed = 12345;
  constructor(readonly history: InterfaceHistory) {}

  attach(ifindex: number, iface = `eth${ifindex}`): void {
    this.accounting.attach({ ifindex, iface, mode: 'tc', tcMechanism: 'tcx' });
  }

  private random(n: number): number {
    this.seed = (this.seed * 1103515245 + 12345) % 2 ** 31;
    return this.seed % n;
  }

  /** One poll at t: every listed interface gets traffic (some polls none). */
  poll(t: number, ifindexes: number[]): void {
    const deltas: InterfaceDelta[] = [];
    const counts = new Map<number, number[]>();
    for (const ifindex of ifindexes) {
      const c = [this.random(50), 0, this.random(30), 0];
      c[1] = c[0] * (60 + this.random(1400));
      c[3] = c[2] * (60 + this.random(1400));
      counts.set(ifindex, c);
      for (const [direction, packets, bytes] of [['ingress', c[0], c[1]], ['egress', c[2], c[3]]] as const) {
        if (packets > 0) deltas.push({ ifindex, direction, packets, bytes, otherPackets: 0, otherBytes: 0, overflowPackets: 0, overflowBytes: 0 });
      }
    }
    this.accounting.apply(deltas, t);
    this.history.record(t, this.accounting);
    this.polls.push({ t, counts });
  }

  /** What a step [start, start + step) holds for an interface: the sum of the polls stamped in it. */
  expected(ifindex: number, start: number, stepMs: number): number[] {
    const sum = [0, 0, 0, 0];
    for (const p of this.polls) {
      if (p.t < start || p.t >= start + stepMs) continue;
      const c = p.counts.get(ifindex);
      if (c) for (let i = 0; i < 4; i++) sum[i] += c[i];
    }
    return sum;
  }
}

function columns(s: InterfaceSeries, i: number): number[] {
  return [s.rxPackets[i], s.rxBytes[i], s.txPackets[i], s.txBytes[i]];
}

/** Every listed step is contiguous, on the grid, and holds exactly the polls stamped in it. */
function checkSeries(rig: Rig, s: InterfaceSeries, fromMs: number, toMs: number, stepMs: number): void {
  expect(s.t.length).toBeGreaterThan(0);
  for (const col of [s.rxPackets, s.rxBytes, s.txPackets, s.txBytes]) expect(col).toHaveLength(s.t.length);
  for (let i = 0; i < s.t.length; i++) {
    expect(s.t[i] % stepMs).toBe(0);
    expect(s.t[i]).toBeGreaterThanOrEqual(fromMs);
    expect(s.t[i] + stepMs).toBeLessThanOrEqual(toMs);
    if (i > 0) expect(s.t[i] - s.t[i - 1]).toBe(stepMs);
    expect(columns(s, i)).toEqual(rig.expected(s.ifindex, s.t[i], stepMs));
  }
}

describe('interface history', () => {
  it('keeps each poll exactly: one-second steps are the polls, their sum is the accounting total', () => {
    const rig = new Rig(new InterfaceHistory({ pollIntervalMs: 1000 }));
    rig.attach(2);
    for (let i = 0; i < 120; i++) rig.poll(T0 + 500 + i * 1000, [2]);
    const last = rig.history.lastPollMs!;
    const to = Math.floor(last / 1000) * 1000;
    const [s] = rig.history.series(to - 300_000, to, 1000);
    expect(s.iface).toBe('eth2');
    // the first poll holds everything since attach and may be the tail of a longer interval: its step is left out
    expect(s.t[0]).toBe(T0 + 1000);
    // the step in progress (to and after) is not listed
    expect(s.t.at(-1)).toBe(to - 1000);
    checkSeries(rig, s, to - 300_000, to, 1000);
    for (let i = 0; i < s.t.length; i++) expect(columns(s, i)).toEqual(rig.polls[i + 1].counts.get(2));
    // every poll but the first and the open one is listed: with those two, the accounting's totals
    const [report] = rig.accounting.report();
    const sum = (col: number[]) => col.reduce((a, b) => a + b, 0);
    const first = rig.polls[0].counts.get(2)!;
    const open = rig.polls.at(-1)!.counts.get(2)!;
    expect(sum(s.rxPackets) + first[0] + open[0]).toBe(report.rx.packets);
    expect(sum(s.rxBytes) + first[1] + open[1]).toBe(report.rx.bytes);
    expect(sum(s.txPackets) + first[2] + open[2]).toBe(report.tx.packets);
    expect(sum(s.txBytes) + first[3] + open[3]).toBe(report.tx.bytes);
  });

  it('a minute is the exact sum of its polls, also with jittered poll times over hours', () => {
    const rig = new Rig(new InterfaceHistory({ pollIntervalMs: 1000 }));
    rig.attach(2);
    rig.attach(3);
    let t = T0 + 137;
    for (let i = 0; i < 3 * 3600; i++) {
      // a cadence that drifts a little and jitters by a few ms
      t += 1000 + ((i * 7) % 5) - 1;
      rig.poll(t, i % 17 === 0 ? [3] : [2, 3]);
    }
    const to = Math.floor(t / MIN) * MIN;
    const from = to - 50 * MIN; // within the fine ring (one hour)
    const coarse = rig.history.series(from, to, MIN);
    // the same minutes from the polls: 60 s is a multiple of the poll interval but served by the coarse ring
    expect(coarse.map((s) => s.iface)).toEqual(['eth2', 'eth3']);
    for (const s of coarse) {
      expect(s.t).toHaveLength(50);
      checkSeries(rig, s, from, to, MIN);
    }
    // fine steps that add up to the minute: 12 steps of 5 s
    const fine = rig.history.series(from, to, 5000);
    for (const [k, s] of fine.entries()) {
      checkSeries(rig, s, from, to, 5000);
      for (let m = 0; m < 50; m++) {
        const minute = [0, 0, 0, 0];
        for (let j = 0; j < 12; j++) columns(s, m * 12 + j).forEach((v, c) => (minute[c] += v));
        expect(minute).toEqual(columns(coarse[k], m));
      }
    }
    // longer than the fine ring: minutes from the coarse ring, all of them exact, 5-minute steps too
    const long = rig.history.series(to - 3 * 3600_000, to, 5 * MIN);
    for (const s of long) checkSeries(rig, s, to - 3 * 3600_000, to, 5 * MIN);
    // the first minute is partial (it has the first poll): the first 5 minutes on the grid that start after it
    expect(long[0].t[0]).toBe(Math.ceil((T0 + MIN) / (5 * MIN)) * 5 * MIN);
  });

  it('leaves out the step of the first poll also when that poll is stamped on the step boundary', () => {
    const rig = new Rig(new InterfaceHistory({ pollIntervalMs: 1000 }));
    rig.attach(2);
    for (let i = 0; i < 10; i++) rig.poll(T0 + i * 1000, [2]);
    const [s] = rig.history.series(T0 - 60_000, T0 + 60_000, 1000);
    expect(s.t).toEqual([1, 2, 3, 4, 5, 6, 7, 8].map((k) => T0 + k * 1000));
    checkSeries(rig, s, T0, T0 + 9000, 1000);
  });

  it('wraps the fine ring and lists only the steps it still holds whole', () => {
    const rig = new Rig(new InterfaceHistory({ pollIntervalMs: 1000, maxFinePoints: 9 }));
    rig.attach(2);
    for (let i = 0; i < 25; i++) rig.poll(T0 + 250 + i * 1000, [2]);
    expect(rig.history.fineSpanMs).toBe(9000);
    const to = T0 + 24_000;
    const [s] = rig.history.series(to - 60_000, to, 1000);
    // the ring holds polls 15..24 (t = T0+15.25 s .. T0+24.25 s): the step of poll 15 may miss its start, 24 is open
    expect(s.t).toEqual([16, 17, 18, 19, 20, 21, 22, 23].map((k) => T0 + k * 1000));
    checkSeries(rig, s, to - 60_000, to, 1000);
    const [two] = rig.history.series(to - 60_000, to, 2000);
    expect(two.t).toEqual([16, 18, 20, 22].map((k) => T0 + k * 1000));
    checkSeries(rig, two, to - 60_000, to, 2000);
  });

  it('wraps the coarse ring: 24 h of minutes at most, each exact', () => {
    const rig = new Rig(new InterfaceHistory({ pollIntervalMs: 10_000, coarseSpanMs: 5 * MIN, maxFinePoints: 5 }));
    rig.attach(2);
    for (let i = 0; i < 20 * 6; i++) rig.poll(T0 + 3000 + i * 10_000, [2]);
    const to = T0 + 20 * MIN;
    const [s] = rig.history.series(to - 15 * MIN, to, MIN);
    // the ring holds six minutes, the open one (T0 + 19 min) among them: five whole ones
    expect(s.t).toEqual([14, 15, 16, 17, 18].map((k) => T0 + k * MIN));
    checkSeries(rig, s, to - 15 * MIN, to, MIN);
  });

  it('an interface that comes later starts at its first whole step; one that leaves ends at its last poll', () => {
    const rig = new Rig(new InterfaceHistory({ pollIntervalMs: 1000 }));
    rig.attach(2);
    for (let i = 0; i < 30; i++) rig.poll(T0 + 100 + i * 1000, [2]);
    rig.attach(5, 'veth9');
    for (let i = 30; i < 60; i++) rig.poll(T0 + 100 + i * 1000, [2, 5]);
    rig.accounting.retire(2); // detached: its last counts come with the next poll, the one after removes it
    for (let i = 60; i < 90; i++) rig.poll(T0 + 100 + i * 1000, i < 62 ? [2, 5] : [5]);
    const to = T0 + 89_000;
    const [eth2, veth9] = rig.history.series(T0, to, 1000);
    expect(eth2.iface).toBe('eth2');
    expect(eth2.t[0]).toBe(T0 + 1000);
    expect(eth2.t.at(-1)).toBe(T0 + 60_000); // its last poll in the accounting, at T0 + 60.1 s
    checkSeries(rig, eth2, T0, to, 1000);
    expect(veth9.iface).toBe('veth9');
    expect(veth9.ifindex).toBe(5);
    expect(veth9.t[0]).toBe(T0 + 31_000);
    expect(veth9.t.at(-1)).toBe(to - 1000);
    checkSeries(rig, veth9, T0, to, 1000);
    expect(rig.history.series(T0, to, 1000, 'veth9').map((s) => s.iface)).toEqual(['veth9']);
    expect(rig.history.series(T0, to, 1000, 'nope')).toEqual([]);
  });

  it('an interface attached again is a new series, never a negative count', () => {
    const rig = new Rig(new InterfaceHistory({ pollIntervalMs: 1000 }));
    rig.attach(2);
    for (let i = 0; i < 10; i++) rig.poll(T0 + 100 + i * 1000, [2]);
    rig.accounting.detach(2);
    rig.attach(2); // totals from zero again
    for (let i = 10; i < 20; i++) rig.poll(T0 + 100 + i * 1000, [2]);
    const series = rig.history.series(T0, T0 + 19_000, 1000);
    expect(series).toHaveLength(2);
    for (const s of series) {
      for (const col of [s.rxPackets, s.rxBytes, s.txPackets, s.txBytes]) for (const v of col) expect(v).toBeGreaterThanOrEqual(0);
    }
    expect(series[0].t.at(-1)).toBe(T0 + 9000);
    expect(series[1].t[0]).toBe(T0 + 11_000);
    // the poll that saw the new attachment first is left out (everything since its attach); the rest is exact
    for (const s of series) checkSeries(rig, s, T0, T0 + 19_000, 1000);
  });

  it('keeps at most maxInterfaces, counts the others, and reuses a slot once its history aged out', () => {
    const rig = new Rig(new InterfaceHistory({ pollIntervalMs: 10_000, maxInterfaces: 2, coarseSpanMs: 3 * MIN, maxFinePoints: 3 }));
    rig.attach(2);
    rig.attach(3);
    rig.attach(4);
    for (let i = 0; i < 6; i++) rig.poll(T0 + 1000 + i * 10_000, [2, 3, 4]);
    expect(rig.history.interfaceCount).toBe(2);
    expect(rig.history.interfacesOmitted).toBe(1);
    rig.accounting.detach(3);
    rig.accounting.detach(4);
    for (let i = 6; i < 60; i++) rig.poll(T0 + 1000 + i * 10_000, [2]);
    rig.attach(7);
    rig.poll(T0 + 1000 + 60 * 10_000, [2, 7]);
    // eth3's history is older than the coarse ring: its slot went to eth7 (eth4, detached, is not listed any more)
    expect(rig.history.interfaceCount).toBe(2);
    expect(rig.history.interfacesOmitted).toBe(0);
    rig.poll(T0 + 1000 + 61 * 10_000, [2, 7]);
    rig.poll(T0 + 1000 + 62 * 10_000, [2, 7]);
    expect(rig.history.series(T0, T0 + 10 * MIN + 20_000, 10_000).map((s) => s.iface)).toEqual(['eth2', 'eth7']);
  });

  it('keeps time order when the wall clock steps back', () => {
    const rig = new Rig(new InterfaceHistory({ pollIntervalMs: 1000 }));
    rig.attach(2);
    for (let i = 0; i < 10; i++) rig.poll(T0 + 100 + i * 1000, [2]);
    rig.history.record(T0 - 3_600_000, rig.accounting); // a step back: stamped at the last poll's time
    expect(rig.history.lastPollMs).toBe(T0 + 9100);
    const [s] = rig.history.series(T0, T0 + 9000, 1000);
    for (let i = 1; i < s.t.length; i++) expect(s.t[i]).toBeGreaterThan(s.t[i - 1]);
  });

  it('sizes its memory from the poll interval, the spans and the interface bound', () => {
    // defaults at a 1 s poll: 3601 polls + 1441 minutes, 4 values each for 32 interfaces, plus the time rings
    expect(interfaceHistoryBytes(1000)).toBe((3601 + 1441) * 8 * (1 + 4 * 32));
    // a fast poll is capped at 7200 polls (12 min at 100 ms)
    expect(interfaceHistoryBytes(100)).toBe((7201 + 1441) * 8 * (1 + 4 * 32));
    const h = new InterfaceHistory({ pollIntervalMs: 100 });
    expect(h.fineCapacity).toBe(7201);
    expect(h.fineSpanMs).toBe(720_000);
  });
});
