/**
 * Per-interface accounting: totals since attach (exact sums of the kernel's
 * per-drain deltas) and current rates, per direction. rx = ingress (received
 * by the interface), tx = egress (sent by it).
 */
import type { Attachment, Direction, InterfaceDelta } from '../datapath/types.js';

export interface DirectionCounters {
  packets: number;
  bytes: number;
  /** packets per second over the rate window */
  pps: number;
  /** bits per second over the rate window */
  bps: number;
  /** frames that are not flows (non-IP, or too short to carry addresses) */
  otherPackets: number;
  otherBytes: number;
  /** IP frames that found the flow map full: counted here, in no flow */
  overflowPackets: number;
  overflowBytes: number;
}

export interface InterfaceReport {
  iface: string;
  ifindex: number;
  hook: string;
  rx: DirectionCounters;
  tx: DirectionCounters;
}

interface Sample {
  atMs: number;
  packets: number;
  bytes: number;
}

/** An interface's totals since attach in one direction. */
export interface InterfaceTotals {
  readonly packets: number;
  readonly bytes: number;
}

class DirectionTotals implements InterfaceTotals {
  packets = 0;
  bytes = 0;
  otherPackets = 0;
  otherBytes = 0;
  overflowPackets = 0;
  overflowBytes = 0;
  /** cumulative totals at recent polls, oldest first, for the rates */
  private samples: Sample[] = [];

  add(d: InterfaceDelta): void {
    this.packets += d.packets;
    this.bytes += d.bytes;
    this.otherPackets += d.otherPackets;
    this.otherBytes += d.otherBytes;
    this.overflowPackets += d.overflowPackets;
    this.overflowBytes += d.overflowBytes;
  }

  sample(atMs: number, windowMs: number): void {
    this.samples.push({ atMs, packets: this.packets, bytes: this.bytes });
    // Keep one sample at or before the window start so the rate spans the whole window.
    while (this.samples.length > 2 && this.samples[1].atMs <= atMs - windowMs) this.samples.shift();
  }

  report(): DirectionCounters {
    const first = this.samples[0];
    const last = this.samples[this.samples.length - 1];
    const seconds = first && last && last.atMs > first.atMs ? (last.atMs - first.atMs) / 1000 : 0;
    return {
      packets: this.packets,
      bytes: this.bytes,
      pps: seconds > 0 ? (last.packets - first.packets) / seconds : 0,
      bps: seconds > 0 ? ((last.bytes - first.bytes) * 8) / seconds : 0,
      otherPackets: this.otherPackets,
      otherBytes: this.otherBytes,
      overflowPackets: this.overflowPackets,
      overflowBytes: this.overflowBytes,
    };
  }
}

interface InterfaceState {
  iface: string;
  ifindex: number;
  hook: string;
  rx: DirectionTotals;
  tx: DirectionTotals;
  /** set once detached: polls until it leaves the accounting */
  pollsLeft?: number;
}

/** Names of interfaces that left the accounting, kept for the records that still name them (pod churn: bounded). */
export const PAST_NAMES_MAX = 16_384;

export class InterfaceAccounting {
  private readonly byIndex = new Map<number, InterfaceState>();
  /**
   * The last name of each interface that left the accounting: records of a
   * detached interface are still named after it (the store answers for them
   * long after, and the Redis sink names a window's flows when it closes).
   */
  private readonly pastNames = new Map<number, string>();

  /** @param rateWindowMs span of the rates: the polls of about this long */
  constructor(private readonly rateWindowMs = 5000) {}

  /** Starts accounting for an attached interface (totals from zero). */
  attach(a: Attachment): void {
    const known = this.byIndex.get(a.ifindex);
    // Attached again (an adopted interface the configuration names): its totals go on.
    if (known && known.iface === a.iface) {
      known.hook = a.mode;
      return;
    }
    if (known) this.forget(known);
    this.pastNames.delete(a.ifindex);
    this.byIndex.set(a.ifindex, { iface: a.iface, ifindex: a.ifindex, hook: a.mode, rx: new DirectionTotals(), tx: new DirectionTotals() });
  }

  detach(ifindex: number): void {
    const state = this.byIndex.get(ifindex);
    if (state) this.forget(state);
  }

  private forget(state: InterfaceState): void {
    this.byIndex.delete(state.ifindex);
    if (state.hook === 'unknown') return;
    this.pastNames.delete(state.ifindex);
    this.pastNames.set(state.ifindex, state.iface);
    if (this.pastNames.size > PAST_NAMES_MAX) this.pastNames.delete(this.pastNames.keys().next().value!);
  }

  /**
   * The interface was detached: its last counts are still in the kernel's
   * active generation and arrive with the next drain, so it stays (as hook
   * "detached") for two more polls before it leaves the accounting.
   */
  retire(ifindex: number): void {
    const state = this.byIndex.get(ifindex);
    if (!state) return;
    state.hook = 'detached';
    state.pollsLeft = 2;
  }

  /** Adds one drain's deltas; samples every interface for the rates. */
  apply(deltas: InterfaceDelta[], atMs: number): void {
    for (const d of deltas) {
      let state = this.byIndex.get(d.ifindex);
      if (!state) {
        // Counted by the kernel for an interface we did not attach (it was renamed, or detached mid-drain).
        state = { iface: this.name(d.ifindex), ifindex: d.ifindex, hook: 'unknown', rx: new DirectionTotals(), tx: new DirectionTotals() };
        this.byIndex.set(d.ifindex, state);
      }
      this.side(state, d.direction).add(d);
    }
    for (const s of this.byIndex.values()) {
      s.rx.sample(atMs, this.rateWindowMs);
      s.tx.sample(atMs, this.rateWindowMs);
      if (s.pollsLeft !== undefined && --s.pollsLeft <= 0) this.forget(s);
    }
  }

  private side(s: InterfaceState, direction: Direction): DirectionTotals {
    return direction === 'ingress' ? s.rx : s.tx;
  }

  /**
   * Visits every interface's totals since attach, without allocating (the
   * rate history reads them after every poll). An interface keeps its totals
   * objects while it stays attached: other objects mean another attachment.
   */
  forEachTotals(visit: (ifindex: number, iface: string, rx: InterfaceTotals, tx: InterfaceTotals) => void): void {
    for (const s of this.byIndex.values()) visit(s.ifindex, s.iface, s.rx, s.tx);
  }

  name(ifindex: number): string {
    return this.byIndex.get(ifindex)?.iface ?? this.pastNames.get(ifindex) ?? `if${ifindex}`;
  }

  report(): InterfaceReport[] {
    return [...this.byIndex.values()]
      .sort((a, b) => a.ifindex - b.ifindex)
      .map((s) => ({ iface: s.iface, ifindex: s.ifindex, hook: s.hook, rx: s.rx.report(), tx: s.tx.report() }));
  }

  /** Sums over all interfaces and directions. */
  totals(): { packets: number; bytes: number; otherPackets: number; otherBytes: number; overflowPackets: number; overflowBytes: number } {
    const t = { packets: 0, bytes: 0, otherPackets: 0, otherBytes: 0, overflowPackets: 0, overflowBytes: 0 };
    for (const s of this.byIndex.values()) {
      for (const d of [s.rx, s.tx]) {
        t.packets += d.packets;
        t.bytes += d.bytes;
        t.otherPackets += d.otherPackets;
        t.otherBytes += d.otherBytes;
        t.overflowPackets += d.overflowPackets;
        t.overflowBytes += d.overflowBytes;
      }
    }
    return t;
  }
}
