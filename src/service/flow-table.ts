/**
 * The flow table: every flow the agent is tracking, with its first/last seen
 * times across polls and the counts not yet exported.
 *
 * Struct-of-arrays: one Map entry (key string -> slot) per flow plus a few
 * typed-array columns indexed by slot, about 70 bytes of columns per flow and
 * no object per flow. Addresses are ids in a shared AddressTable.
 *
 * Slot lifecycle: a flow that expires leaves the key map at once (its next
 * packet starts a new flow) but its slot is only "retired": the slot keeps
 * its identity columns until releaseRetired(), so consumers that index by
 * slot (the open top-talkers bucket) can still read it. The collector
 * releases retired slots when that consumer no longer needs them.
 */
import type { FlowBatch } from '../datapath/types.js';
import type { AddressTable } from './address-table.js';
import type { RecordBatch } from './record-batch.js';
import type { FlowTupleReaderWithIds } from './tuple-reader.js';
import {
  type ExpiryConfig,
  type ExpiryReason,
  DEFAULT_EXPIRY,
  STATE_FIN,
  STATE_RST,
  idleTimeoutMs,
  idleReason,
  stateFromFlags,
} from './expiry.js';
import { TCP_ACK, TCP_SYN } from './protocols.js';
import { packMeta, packPorts, metaProto } from './tuple.js';
import { growFloat64, growUint16, growUint32, growUint8 } from './typed-arrays.js';

/** Reads the identity of a tracked (or retired, not yet released) flow by slot. */
export interface FlowTupleReader {
  ifindex(slot: number): number;
  meta(slot: number): number;
  ports(slot: number): number;
  srcText(slot: number): string;
  dstText(slot: number): string;
}

const LIVE = 1;
const RETIRED = 2;
const PENDING = 4;

export type ExpiryCounts = Record<ExpiryReason, number>;

export class FlowTable implements FlowTupleReaderWithIds {
  private readonly slotOf = new Map<string, number>();
  private keys: (string | undefined)[] = [];
  private flags = new Uint8Array(0);
  private tcpState = new Uint8Array(0);
  private ifindexCol = new Uint32Array(0);
  private metaCol = new Uint32Array(0);
  private portsCol = new Uint32Array(0);
  private srcCol = new Uint32Array(0);
  private dstCol = new Uint32Array(0);
  private firstSeenCol = new Float64Array(0);
  private lastSeenCol = new Float64Array(0);
  private pendingPackets = new Float64Array(0);
  private pendingBytes = new Float64Array(0);
  private pendingFlags = new Uint16Array(0);
  /** slots with counts not yet exported, in the order they got them */
  private pendingList = new Uint32Array(1024);
  private pendingCount = 0;
  private exportCursor = 0;
  private highWater = 0;
  private readonly freeSlots: number[] = [];
  private retired: number[] = [];
  private sweepCursor = 0;
  readonly expired: ExpiryCounts = { idle: 0, fin: 0, rst: 0, active: 0, evicted: 0 };

  constructor(
    private readonly addresses: AddressTable,
    private readonly expiry: ExpiryConfig = DEFAULT_EXPIRY,
  ) {}

  /** Flows being tracked. */
  get size(): number {
    return this.slotOf.size;
  }

  /** Flows with counts waiting for the next export. */
  get pending(): number {
    return this.pendingCount - this.exportCursor;
  }

  /** Slots handed out so far (live, retired or free): the bound for slot-indexed arrays. */
  get slotLimit(): number {
    return this.highWater;
  }

  /**
   * Adds the deltas of flows[from..to) to the table: new flows get a slot,
   * known ones accumulate. Allocation-free for known flows apart from the key
   * string the batch hands out.
   */
  accumulate(flows: FlowBatch, from: number, to: number): void {
    for (let i = from; i < to; i++) {
      const key = flows.key(i);
      let slot = this.slotOf.get(key);
      if (slot === undefined) slot = this.insert(key, flows, i);
      else this.continueFlow(slot, flows.firstSeenMs(i), flows.tcpFlags(i));
      const last = flows.lastSeenMs(i);
      if (last > this.lastSeenCol[slot]) this.lastSeenCol[slot] = last;
      const tcpFlags = flows.tcpFlags(i);
      this.tcpState[slot] |= stateFromFlags(tcpFlags);
      this.pendingFlags[slot] |= tcpFlags;
      this.pendingPackets[slot] += flows.packets(i);
      this.pendingBytes[slot] += flows.bytes(i);
      if ((this.flags[slot] & PENDING) === 0) {
        this.flags[slot] |= PENDING;
        if (this.pendingCount === this.pendingList.length) this.pendingList = growUint32(this.pendingList, this.pendingCount + 1);
        this.pendingList[this.pendingCount++] = slot;
      }
    }
  }

  /**
   * A known flow got new packets. If it should have expired meanwhile (the
   * sweep had not reached it yet), or a TCP connection restarts after an end,
   * this is a new flow: it gets a new firstSeen.
   */
  private continueFlow(slot: number, firstMs: number, tcpFlags: number): void {
    const state = this.tcpState[slot];
    let reason: ExpiryReason | undefined;
    if (firstMs - this.lastSeenCol[slot] > idleTimeoutMs(this.expiry, metaProto(this.metaCol[slot]), state)) {
      reason = idleReason(state);
    } else if (firstMs - this.firstSeenCol[slot] > this.expiry.activeMs) {
      reason = 'active';
    } else if ((state & (STATE_FIN | STATE_RST)) !== 0 && (tcpFlags & (TCP_SYN | TCP_ACK)) === TCP_SYN) {
      reason = idleReason(state);
    }
    if (reason !== undefined) {
      this.expired[reason]++;
      this.firstSeenCol[slot] = firstMs;
      this.tcpState[slot] = 0;
    }
  }

  private insert(key: string, flows: FlowBatch, i: number): number {
    const slot = this.freeSlots.length > 0 ? this.freeSlots.pop()! : this.newSlot();
    this.slotOf.set(key, slot);
    this.keys[slot] = key;
    this.flags[slot] = LIVE;
    this.tcpState[slot] = 0;
    this.ifindexCol[slot] = flows.ifindex(i);
    this.metaCol[slot] = packMeta(flows.direction(i), flows.family(i), flows.proto(i), flows.icmpType(i), flows.icmpCode(i));
    this.portsCol[slot] = packPorts(flows.sport(i), flows.dport(i));
    this.srcCol[slot] = this.addresses.intern(flows.src(i));
    this.dstCol[slot] = this.addresses.intern(flows.dst(i));
    this.firstSeenCol[slot] = flows.firstSeenMs(i);
    this.lastSeenCol[slot] = 0;
    this.pendingPackets[slot] = 0;
    this.pendingBytes[slot] = 0;
    this.pendingFlags[slot] = 0;
    return slot;
  }

  private newSlot(): number {
    const slot = this.highWater++;
    if (slot >= this.flags.length) {
      const n = slot + 1;
      this.flags = growUint8(this.flags, n);
      this.tcpState = growUint8(this.tcpState, n);
      this.ifindexCol = growUint32(this.ifindexCol, n);
      this.metaCol = growUint32(this.metaCol, n);
      this.portsCol = growUint32(this.portsCol, n);
      this.srcCol = growUint32(this.srcCol, n);
      this.dstCol = growUint32(this.dstCol, n);
      this.firstSeenCol = growFloat64(this.firstSeenCol, n);
      this.lastSeenCol = growFloat64(this.lastSeenCol, n);
      this.pendingPackets = growFloat64(this.pendingPackets, n);
      this.pendingBytes = growFloat64(this.pendingBytes, n);
      this.pendingFlags = growUint16(this.pendingFlags, n);
    }
    return slot;
  }

  /**
   * Moves up to out.capacity pending flows into `out` (from the start of the
   * pending list) and clears their pending counts. Returns how many were
   * written; call until it returns 0, then finishExport().
   */
  exportPending(out: RecordBatch): number {
    let n = 0;
    const end = Math.min(this.pendingCount, this.exportCursor + out.capacity);
    for (let p = this.exportCursor; p < end; p++) {
      const slot = this.pendingList[p];
      out.flowId[n] = slot;
      out.ifindex[n] = this.ifindexCol[slot];
      out.meta[n] = this.metaCol[slot];
      out.ports[n] = this.portsCol[slot];
      out.srcId[n] = this.srcCol[slot];
      out.dstId[n] = this.dstCol[slot];
      out.packets[n] = this.pendingPackets[slot];
      out.bytes[n] = this.pendingBytes[slot];
      out.tcpFlags[n] = this.pendingFlags[slot];
      out.firstSeen[n] = this.firstSeenCol[slot];
      out.lastSeen[n] = this.lastSeenCol[slot];
      this.pendingPackets[slot] = 0;
      this.pendingBytes[slot] = 0;
      this.pendingFlags[slot] = 0;
      this.flags[slot] &= ~PENDING;
      n++;
    }
    this.exportCursor = end;
    out.count = n;
    return n;
  }

  /** Ends an export: the pending list starts over. */
  finishExport(): void {
    // Flows that got deltas while an export was in progress stay listed.
    const remaining = this.pendingCount - this.exportCursor;
    this.pendingList.copyWithin(0, this.exportCursor, this.pendingCount);
    this.pendingCount = remaining;
    this.exportCursor = 0;
  }

  /**
   * Expires flows idle or older than the timeouts as of `nowMs`, looking at
   * up to `budget` slots from where the last sweep stopped (so a big table is
   * swept over several polls). Flows with unexported counts are left for a
   * later sweep: counts are never dropped. Then evicts the least recently
   * seen flows if the table is over maxFlows. Returns how many expired.
   */
  sweep(nowMs: number, budget = Infinity): number {
    let expiredNow = 0;
    const limit = Math.min(budget, this.highWater);
    for (let n = 0; n < limit; n++) {
      if (this.sweepCursor >= this.highWater) this.sweepCursor = 0;
      const slot = this.sweepCursor++;
      if ((this.flags[slot] & (LIVE | PENDING)) !== LIVE) continue;
      const state = this.tcpState[slot];
      if (nowMs - this.lastSeenCol[slot] > idleTimeoutMs(this.expiry, metaProto(this.metaCol[slot]), state)) {
        this.retire(slot, idleReason(state));
        expiredNow++;
      } else if (nowMs - this.firstSeenCol[slot] > this.expiry.activeMs) {
        this.retire(slot, 'active');
        expiredNow++;
      }
    }
    if (this.slotOf.size > this.expiry.maxFlows) expiredNow += this.evictOldest();
    return expiredNow;
  }

  /** Evicts the least recently seen flows (without pending counts) down to 90% of maxFlows. */
  private evictOldest(): number {
    const target = Math.floor(this.expiry.maxFlows * 0.9);
    const excess = this.slotOf.size - target;
    const candidates: number[] = [];
    for (let slot = 0; slot < this.highWater; slot++) {
      if ((this.flags[slot] & (LIVE | PENDING)) === LIVE) candidates.push(slot);
    }
    candidates.sort((a, b) => this.lastSeenCol[a] - this.lastSeenCol[b]);
    const n = Math.min(excess, candidates.length);
    for (let i = 0; i < n; i++) this.retire(candidates[i], 'evicted');
    return n;
  }

  private retire(slot: number, reason: ExpiryReason): void {
    this.slotOf.delete(this.keys[slot]!);
    this.keys[slot] = undefined;
    this.flags[slot] = RETIRED;
    this.retired.push(slot);
    this.expired[reason]++;
  }

  /** Makes retired slots reusable and drops their address references. */
  releaseRetired(): void {
    for (const slot of this.retired) {
      this.addresses.release(this.srcCol[slot]);
      this.addresses.release(this.dstCol[slot]);
      this.flags[slot] = 0;
      this.freeSlots.push(slot);
    }
    this.retired = [];
  }

  /** Slots retired and not yet released. */
  get retiredCount(): number {
    return this.retired.length;
  }

  slotOfKey(key: string): number | undefined {
    return this.slotOf.get(key);
  }

  firstSeen(slot: number): number {
    return this.firstSeenCol[slot];
  }

  lastSeen(slot: number): number {
    return this.lastSeenCol[slot];
  }

  ifindex(slot: number): number {
    return this.ifindexCol[slot];
  }

  meta(slot: number): number {
    return this.metaCol[slot];
  }

  ports(slot: number): number {
    return this.portsCol[slot];
  }

  srcId(slot: number): number {
    return this.srcCol[slot];
  }

  dstId(slot: number): number {
    return this.dstCol[slot];
  }

  srcText(slot: number): string {
    return this.addresses.text(this.srcCol[slot]);
  }

  dstText(slot: number): string {
    return this.addresses.text(this.dstCol[slot]);
  }
}
