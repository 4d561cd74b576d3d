/**
 * Per-interface traffic history: what each interface counted, per direction,
 * poll by poll for the last hour and minute by minute for the last 24 hours,
 * so that a dashboard opened now can draw the last minutes' rates.
 *
 * Counts, not rates, are kept: each poll's point is the difference of the
 * interface accounting's totals since attach (exact sums of the kernel's
 * deltas), and a minute's point is the exact sum of the polls stamped in that
 * minute (written as they come, never re-derived). Any step of a query is a
 * sum of whole points, so a sum over a query's steps is exact, and a rate is
 * count / step.
 *
 * Memory is bounded: each tracked interface has preallocated typed-array
 * rings (allocated when the interface is first seen), at most maxInterfaces
 * of them; interfacesOmitted counts interfaces that found them all in use.
 * record() allocates nothing.
 */
import type { InterfaceAccounting, InterfaceTotals } from './interface-accounting.js';

export interface InterfaceHistoryConfig {
  /** the poll interval: the resolution of the fine ring */
  pollIntervalMs: number;
  /** span of the fine ring (one point per poll) */
  fineSpanMs: number;
  /** most polls the fine ring spans per interface, whatever the poll interval (a short poll interval shortens its span) */
  maxFinePoints: number;
  /** resolution of the coarse ring */
  coarseStepMs: number;
  /** span of the coarse ring */
  coarseSpanMs: number;
  /** interfaces with a history at most; beyond, counted in interfacesOmitted */
  maxInterfaces: number;
}

export const DEFAULT_INTERFACE_HISTORY: Readonly<Omit<InterfaceHistoryConfig, 'pollIntervalMs'>> = Object.freeze({
  fineSpanMs: 3_600_000,
  maxFinePoints: 7200,
  coarseStepMs: 60_000,
  coarseSpanMs: 86_400_000,
  maxInterfaces: 32,
});

/** Counted values per point: received and sent packets and bytes. */
const COLUMNS = 4;
const RX_PACKETS = 0;
const RX_BYTES = 1;
const TX_PACKETS = 2;
const TX_BYTES = 3;
const BYTES_PER_VALUE = 8;

function fineCapacity(c: Pick<InterfaceHistoryConfig, 'pollIntervalMs' | 'fineSpanMs' | 'maxFinePoints'>): number {
  // one more than the polls spanned: the oldest poll's point may be the tail of a longer interval
  return Math.min(Math.ceil(c.fineSpanMs / c.pollIntervalMs), c.maxFinePoints) + 1;
}

function coarseCapacity(c: Pick<InterfaceHistoryConfig, 'coarseStepMs' | 'coarseSpanMs'>): number {
  // the open minute as well as the span's whole ones
  return Math.ceil(c.coarseSpanMs / c.coarseStepMs) + 1;
}

/** The most memory a history holds: every interface slot in use, and the shared time rings. */
export function interfaceHistoryBytes(pollIntervalMs: number, config: Omit<InterfaceHistoryConfig, 'pollIntervalMs'> = DEFAULT_INTERFACE_HISTORY): number {
  const c = { ...config, pollIntervalMs };
  const fine = fineCapacity(c);
  const coarse = coarseCapacity(c);
  return (fine + coarse) * BYTES_PER_VALUE * (1 + COLUMNS * c.maxInterfaces);
}

/** One interface's history: its rings, where they start, and the accounting totals of the last poll. */
class Slot {
  ifindex = 0;
  iface = '';
  /** the accounting's totals object of this interface: another object is another attachment */
  source: InterfaceTotals | undefined;
  live = false;
  /** polls (sequence numbers) this slot has points for: firstSeq..lastSeq (the last that listed it) */
  firstSeq = 0;
  lastSeq = 0;
  /** minutes (coarse bucket numbers) it has points for */
  firstBucket = 0;
  lastBucket = 0;
  lastPollMs = 0;
  readonly previous = new Float64Array(COLUMNS);
  /** COLUMNS values per point, point-major */
  readonly fine: Float64Array;
  readonly coarse: Float64Array;

  constructor(fineCap: number, coarseCap: number) {
    this.fine = new Float64Array(fineCap * COLUMNS);
    this.coarse = new Float64Array(coarseCap * COLUMNS);
  }
}

/** One interface's counts per step, oldest first; `t` holds each step's start (epoch ms). */
export interface InterfaceSeries {
  iface: string;
  ifindex: number;
  t: number[];
  rxPackets: number[];
  rxBytes: number[];
  txPackets: number[];
  txBytes: number[];
}

export class InterfaceHistory {
  readonly config: InterfaceHistoryConfig;
  readonly fineCapacity: number;
  readonly coarseCapacity: number;
  /** time of each poll in the fine ring, by sequence number modulo the capacity */
  private readonly fineTimes: Float64Array;
  /** the minute each coarse ring position holds (epoch ms / coarseStepMs), NaN before first use */
  private readonly bucketAt: Float64Array;
  private readonly slots: Slot[] = [];
  private readonly liveByIndex = new Map<number, Slot>();
  /** polls recorded */
  private seq = 0;
  private bucket = NaN;
  private atMs = 0;
  /** time of the last poll recorded, epoch ms; undefined before the first */
  lastPollMs: number | undefined;
  /** interfaces listed at the last poll that have no history: every slot holds an interface's history of the last coarseSpanMs */
  interfacesOmitted = 0;
  private omittedNow = 0;
  private readonly visit = (ifindex: number, iface: string, rx: InterfaceTotals, tx: InterfaceTotals) => this.visitInterface(ifindex, iface, rx, tx);

  constructor(config: Partial<InterfaceHistoryConfig> & Pick<InterfaceHistoryConfig, 'pollIntervalMs'>) {
    this.config = { ...DEFAULT_INTERFACE_HISTORY, ...config };
    if (!(this.config.pollIntervalMs > 0)) throw new RangeError(`pollIntervalMs must be positive, got ${this.config.pollIntervalMs}`);
    this.fineCapacity = fineCapacity(this.config);
    this.coarseCapacity = coarseCapacity(this.config);
    this.fineTimes = new Float64Array(this.fineCapacity);
    this.bucketAt = new Float64Array(this.coarseCapacity).fill(NaN);
  }

  /** The span of poll-resolution history this history can hold (shorter than fineSpanMs when maxFinePoints caps it). */
  get fineSpanMs(): number {
    return Math.min(this.config.fineSpanMs, (this.fineCapacity - 1) * this.config.pollIntervalMs);
  }

  /** Interfaces tracked now or still holding history. */
  get interfaceCount(): number {
    return this.slots.length;
  }

  /**
   * Records one poll: every interface the accounting lists gets a point, the
   * difference of its totals since the previous poll. Called after each poll
   * (a poll that failed after its counts were added is in the next point).
   */
  record(atMs: number, accounting: Pick<InterfaceAccounting, 'forEachTotals'>): void {
    // Wall-clock steps back (NTP): points stay in time order, stamped no earlier than the last one.
    const t = this.lastPollMs !== undefined && atMs < this.lastPollMs ? this.lastPollMs : atMs;
    this.atMs = t;
    this.omittedNow = 0;
    this.fineTimes[this.seq % this.fineCapacity] = t;
    const bucket = Math.floor(t / this.config.coarseStepMs);
    if (bucket !== this.bucket) {
      this.bucket = bucket;
      const at = bucket % this.coarseCapacity;
      this.bucketAt[at] = bucket;
      for (let i = 0; i < this.slots.length; i++) {
        const slot = this.slots[i];
        if (slot.live) slot.coarse.fill(0, at * COLUMNS, at * COLUMNS + COLUMNS);
      }
    }
    accounting.forEachTotals(this.visit);
    // An interface the accounting no longer lists has left: its history stays until it ages out.
    for (let i = 0; i < this.slots.length; i++) {
      const slot = this.slots[i];
      if (slot.live && slot.lastSeq !== this.seq) this.end(slot);
    }
    this.interfacesOmitted = this.omittedNow;
    this.lastPollMs = t;
    this.seq++;
  }

  private visitInterface(ifindex: number, iface: string, rx: InterfaceTotals, tx: InterfaceTotals): void {
    let slot = this.liveByIndex.get(ifindex);
    if (slot && (slot.source !== rx || slot.iface !== iface)) {
      // detached and attached again, or renamed: another interface from here on
      this.end(slot);
      slot = undefined;
    }
    slot ??= this.start(ifindex, iface, rx);
    if (!slot) return;
    slot.lastSeq = this.seq;
    slot.lastBucket = this.bucket;
    slot.lastPollMs = this.atMs;
    const f = (this.seq % this.fineCapacity) * COLUMNS;
    const c = (this.bucket % this.coarseCapacity) * COLUMNS;
    this.put(slot, f, c, RX_PACKETS, rx.packets);
    this.put(slot, f, c, RX_BYTES, rx.bytes);
    this.put(slot, f, c, TX_PACKETS, tx.packets);
    this.put(slot, f, c, TX_BYTES, tx.bytes);
  }

  private put(slot: Slot, fineAt: number, coarseAt: number, column: number, total: number): void {
    const delta = total - slot.previous[column];
    slot.previous[column] = total;
    slot.fine[fineAt + column] = delta;
    slot.coarse[coarseAt + column] += delta;
  }

  /** A slot for a newly seen interface: a free one, one whose history has aged out, or a new one while there are fewer than maxInterfaces. */
  private start(ifindex: number, iface: string, source: InterfaceTotals): Slot | undefined {
    let slot = this.agedOut();
    if (!slot) {
      if (this.slots.length >= this.config.maxInterfaces) {
        this.omittedNow++;
        return undefined;
      }
      slot = new Slot(this.fineCapacity, this.coarseCapacity);
      this.slots.push(slot);
    }
    slot.ifindex = ifindex;
    slot.iface = iface;
    slot.source = source;
    slot.live = true;
    slot.firstSeq = this.seq;
    slot.firstBucket = this.bucket;
    // totals since attach: the first point holds all of them
    slot.previous.fill(0);
    const c = (this.bucket % this.coarseCapacity) * COLUMNS;
    slot.coarse.fill(0, c, c + COLUMNS);
    this.liveByIndex.set(ifindex, slot);
    return slot;
  }

  private agedOut(): Slot | undefined {
    for (let i = 0; i < this.slots.length; i++) {
      const s = this.slots[i];
      if (!s.live && this.bucket - s.lastBucket >= this.coarseCapacity) return s;
    }
    return undefined;
  }

  private end(slot: Slot): void {
    slot.live = false;
    slot.source = undefined;
    if (this.liveByIndex.get(slot.ifindex) === slot) this.liveByIndex.delete(slot.ifindex);
  }

  /**
   * Counts per step of stepMs within [fromMs, toMs), per interface, oldest
   * first; steps are aligned to multiples of stepMs (epoch ms). A step counts
   * the polls stamped in it. Only whole steps are listed: not the one in
   * progress (that of the last poll), nor one the history does not hold all
   * of (before the history or the interface began, or older than the ring
   * holds); an interface that has left ends with the step of its last poll.
   * From the coarse ring when stepMs is a multiple of its step, else from the
   * fine ring.
   */
  series(fromMs: number, toMs: number, stepMs: number, iface?: string): InterfaceSeries[] {
    const out: InterfaceSeries[] = [];
    if (this.lastPollMs === undefined) return out;
    fromMs = Math.ceil(fromMs / stepMs) * stepMs;
    toMs = Math.floor(Math.min(toMs, this.lastPollMs) / stepMs) * stepMs;
    if (toMs <= fromMs) return out;
    const coarse = stepMs % this.config.coarseStepMs === 0;
    for (const slot of [...this.slots].sort((a, b) => a.ifindex - b.ifindex || a.firstSeq - b.firstSeq)) {
      if (iface !== undefined && slot.iface !== iface) continue;
      const s = coarse ? this.coarseSeries(slot, fromMs, toMs, stepMs) : this.fineSeries(slot, fromMs, toMs, stepMs);
      if (s && s.t.length > 0) out.push(s);
    }
    return out;
  }

  /** The steps [start, end) within [fromMs, toMs) that a slot holds whole from firstWholeMs on. */
  private steps(slot: Slot, firstWholeMs: number, fromMs: number, toMs: number, stepMs: number): [number, number] {
    const start = Math.max(fromMs, Math.ceil(firstWholeMs / stepMs) * stepMs);
    const end = slot.live ? toMs : Math.min(toMs, Math.floor(slot.lastPollMs / stepMs) * stepMs + stepMs);
    return [start, end];
  }

  private fineSeries(slot: Slot, fromMs: number, toMs: number, stepMs: number): InterfaceSeries | undefined {
    const oldest = Math.max(slot.firstSeq, this.seq - this.fineCapacity);
    if (oldest > slot.lastSeq) return undefined;
    // The oldest poll held (or the slot's first, whose point holds everything since attach) may be the tail of a
    // longer interval: whole steps begin after it.
    const [start, end] = this.steps(slot, this.fineTimes[oldest % this.fineCapacity] + 1, fromMs, toMs, stepMs);
    const n = Math.max(0, Math.round((end - start) / stepMs));
    const sums = new Float64Array(n * COLUMNS);
    for (let seq = slot.lastSeq; seq >= oldest; seq--) {
      const t = this.fineTimes[seq % this.fineCapacity];
      if (t < start) break;
      if (t >= end) continue;
      const i = Math.floor((t - start) / stepMs) * COLUMNS;
      const f = (seq % this.fineCapacity) * COLUMNS;
      for (let c = 0; c < COLUMNS; c++) sums[i + c] += slot.fine[f + c];
    }
    return this.toSeries(slot, start, n, stepMs, sums);
  }

  private coarseSeries(slot: Slot, fromMs: number, toMs: number, stepMs: number): InterfaceSeries | undefined {
    const coarseStep = this.config.coarseStepMs;
    const oldest = Math.max(slot.firstBucket + 1, this.bucket - this.coarseCapacity + 1);
    if (oldest > slot.lastBucket && !slot.live) return undefined;
    const [start, end] = this.steps(slot, oldest * coarseStep, fromMs, toMs, stepMs);
    const n = Math.max(0, Math.round((end - start) / stepMs));
    const sums = new Float64Array(n * COLUMNS);
    const last = Math.min(slot.lastBucket, Math.floor(end / coarseStep) - 1);
    for (let b = Math.max(oldest, Math.floor(start / coarseStep)); b <= last; b++) {
      const at = b % this.coarseCapacity;
      if (this.bucketAt[at] !== b) continue; // no poll in that minute
      const i = Math.floor((b * coarseStep - start) / stepMs) * COLUMNS;
      for (let c = 0; c < COLUMNS; c++) sums[i + c] += slot.coarse[at * COLUMNS + c];
    }
    return this.toSeries(slot, start, n, stepMs, sums);
  }

  private toSeries(slot: Slot, start: number, n: number, stepMs: number, sums: Float64Array): InterfaceSeries {
    const s: InterfaceSeries = { iface: slot.iface, ifindex: slot.ifindex, t: [], rxPackets: [], rxBytes: [], txPackets: [], txBytes: [] };
    for (let i = 0; i < n; i++) {
      s.t.push(start + i * stepMs);
      s.rxPackets.push(sums[i * COLUMNS + RX_PACKETS]);
      s.rxBytes.push(sums[i * COLUMNS + RX_BYTES]);
      s.txPackets.push(sums[i * COLUMNS + TX_PACKETS]);
      s.txBytes.push(sums[i * COLUMNS + TX_BYTES]);
    }
    return s;
  }
}
