/**
 * The flow table: every flow the agent is tracking, with its first/last seen
 * times across polls and the counts not yet exported.
 *
 * Layout (no object and no string per flow):
 * - records: one 128-byte record per slot in a single ArrayBuffer (viewed as
 *   Float64Array and Uint32Array), holding the flow's identity as the
 *   kernel's KEY_WORDS key words, the fields a poll updates (pending
 *   packets/bytes, last/first seen, state bits, pending TCP flags) and the
 *   decoded identity (meta, ports, address ids, ifindex). An update of a known
 *   flow touches the two adjacent cache lines of its record and nothing else.
 * - index: an open-addressing hash table (linear probing, backward-shift
 *   deletion, load factor <= 1/2) of (32-bit hash, slot + 1) pairs, keyed by
 *   the key words (FlowBatch.keyWords): a lookup hashes 12 words and compares
 *   them with the record, no key string, no Map.
 * Addresses are ids in a shared AddressTable, interned only for new flows.
 *
 * Slot lifecycle: a flow that expires leaves the index at once (its next
 * packet starts a new flow) but its slot is only "retired": the slot keeps
 * its identity until releaseRetired(), so consumers that index by slot (the
 * open top-talkers bucket) can still read it. The collector releases retired
 * slots when that consumer no longer needs them.
 */
import { KEY_WORDS, type FlowBatch } from '../datapath/types.js';
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
import { growUint32 } from './typed-arrays.js';

/** Reads the identity of a tracked (or retired, not yet released) flow by slot. */
export interface FlowTupleReader {
  ifindex(slot: number): number;
  meta(slot: number): number;
  ports(slot: number): number;
  srcText(slot: number): string;
  dstText(slot: number): string;
}

/*
 * Record layout, in 32-bit words (W) and 64-bit floats (F) from the record's start:
 *   W 0-11  key words (FlowBatch.keyWords)          first cache line
 *   F 6     pending packets
 *   F 7     pending bytes
 *   F 8     last seen (ms)                          second cache line
 *   F 9     first seen (ms)
 *   W 20    state: bits 0-7 LIVE/RETIRED/PENDING, bits 8-15 TCP end state, bits 16-31 pending TCP flags
 *   W 21    meta (tuple.ts)
 *   W 22    ports (tuple.ts)
 *   W 23    source address id
 *   W 24    destination address id
 *   W 25    ifindex
 *   W 26    hash of the key words (to find the index entry when the flow retires)
 */
const REC_BYTES = 128;
const RW = REC_BYTES / 4; // words per record
const RF = REC_BYTES / 8; // floats per record
const F_PACKETS = 6;
const F_BYTES = 7;
const F_LAST = 8;
const F_FIRST = 9;
const W_STATE = 20;
const W_META = 21;
const W_PORTS = 22;
const W_SRC = 23;
const W_DST = 24;
const W_IFINDEX = 25;
const W_HASH = 26;

const LIVE = 1;
const RETIRED = 2;
const PENDING = 4;
const FLAG_MASK = 0xff;
const TCP_STATE_SHIFT = 8;
const PENDING_FLAGS_SHIFT = 16;

const MIN_SLOTS = 1024;
/** flows looked up together in accumulate() */
const BLOCK = 128;
const MIN_INDEX = 2048;

export type ExpiryCounts = Record<ExpiryReason, number>;

/** Hash of the KEY_WORDS words of `w` at `b` (murmur3-style mixing, 32 bits, unsigned). */
function hashKey(w: Uint32Array, b: number): number {
  let h = 0x9e3779b9;
  h = Math.imul(h ^ w[b], 0x85ebca6b);
  h = Math.imul((h << 13) | (h >>> 19), 5) ^ w[b + 1];
  h = Math.imul(h ^ (h >>> 15), 0xc2b2ae35) ^ w[b + 2];
  h = Math.imul((h << 13) | (h >>> 19), 5) ^ w[b + 3];
  h = Math.imul(h ^ (h >>> 15), 0x85ebca6b) ^ w[b + 4];
  h = Math.imul((h << 13) | (h >>> 19), 5) ^ w[b + 5];
  h = Math.imul(h ^ (h >>> 15), 0xc2b2ae35) ^ w[b + 6];
  h = Math.imul((h << 13) | (h >>> 19), 5) ^ w[b + 7];
  h = Math.imul(h ^ (h >>> 15), 0x85ebca6b) ^ w[b + 8];
  h = Math.imul((h << 13) | (h >>> 19), 5) ^ w[b + 9];
  h = Math.imul(h ^ (h >>> 15), 0xc2b2ae35) ^ w[b + 10];
  h = Math.imul((h << 13) | (h >>> 19), 5) ^ w[b + 11];
  // fmix32
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

export class FlowTable implements FlowTupleReaderWithIds {
  private buf = new ArrayBuffer(MIN_SLOTS * REC_BYTES);
  private f64 = new Float64Array(this.buf);
  private u32 = new Uint32Array(this.buf);
  private capacity = MIN_SLOTS;
  /** (hash, slot + 1) pairs; slot + 1 = 0 marks an empty entry */
  private index = new Uint32Array(MIN_INDEX * 2);
  private indexMask = MIN_INDEX - 1;
  private live = 0;
  /** slots with counts not yet exported, in the order they got them */
  private pendingList = new Uint32Array(1024);
  private pendingCount = 0;
  private exportCursor = 0;
  private highWater = 0;
  private freeSlots = new Uint32Array(64);
  private freeCount = 0;
  private retired: number[] = [];
  private sweepCursor = 0;
  /** scratch of accumulate(): per flow of a block, its hash and its first index entry */
  private readonly blockHashes = new Uint32Array(BLOCK);
  private readonly blockHeads = new Uint32Array(BLOCK);
  private sink = 0;
  readonly expired: ExpiryCounts = { idle: 0, fin: 0, rst: 0, active: 0, evicted: 0 };

  /** the shortest idle timeout: a known flow seen again sooner is certainly the same flow */
  private readonly minIdleMs: number;

  constructor(
    private readonly addresses: AddressTable,
    private readonly expiry: ExpiryConfig = DEFAULT_EXPIRY,
  ) {
    this.minIdleMs = Math.min(expiry.tcpIdleMs, expiry.tcpFinMs, expiry.tcpRstMs, expiry.udpIdleMs, expiry.icmpIdleMs, expiry.otherIdleMs);
  }

  /** Flows being tracked. */
  get size(): number {
    return this.live;
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
   * known ones accumulate. Allocation-free for known flows.
   */
  accumulate(flows: FlowBatch, from: number, to: number): void {
    const kw = flows.keyWords;
    const minIdleMs = this.minIdleMs;
    const activeMs = this.expiry.activeMs;
    const hashes = this.blockHashes;
    const heads = this.blockHeads;
    for (let start = from; start < to; start += BLOCK) {
      const end = Math.min(to, start + BLOCK);
      // Pass 1: hash the keys, then read each one's first index entry, then
      // the record that entry points to. Each of these loops is a few
      // instructions around independent loads, so the CPU keeps many cache
      // misses in flight at once (a lookup-as-you-go loop waits for them one
      // after the other: about 3x slower with a million flows). Pass 2 then
      // finds index entries and records in cache. `heads` keeps the loads alive.
      let mask = this.indexMask;
      let index = this.index;
      const n = end - start;
      for (let j = 0; j < n; j++) hashes[j] = hashKey(kw, (start + j) * KEY_WORDS);
      for (let j = 0; j < n; j++) heads[j] = index[((hashes[j] & mask) << 1) + 1];
      let u32 = this.u32;
      let f64 = this.f64;
      let touch = 0;
      for (let j = 0; j < n; j++) {
        const s1 = heads[j];
        if (s1 !== 0) touch ^= u32[(s1 - 1) * RW] ^ u32[(s1 - 1) * RW + W_STATE];
      }
      this.sink = touch; // keeps the record loads (their value is not needed)
      // Pass 2: finish the lookups and apply the deltas.
      if (this.pendingCount + n > this.pendingList.length) this.pendingList = growUint32(this.pendingList, this.pendingCount + n);
      const pendingList = this.pendingList;
      for (let i = start; i < end; i++) {
        const b = i * KEY_WORDS;
        const h = hashes[i - start];
        let pos = h & mask;
        let slot = -1;
        // Re-read (a cache hit now): an insert earlier in the block may have taken the entry.
        let s1 = index[(pos << 1) + 1];
        while (s1 !== 0) {
          if (index[pos << 1] === h) {
            const r = (s1 - 1) * RW;
            if (
              u32[r] === kw[b] && u32[r + 1] === kw[b + 1] && u32[r + 2] === kw[b + 2] && u32[r + 3] === kw[b + 3] &&
              u32[r + 4] === kw[b + 4] && u32[r + 5] === kw[b + 5] && u32[r + 6] === kw[b + 6] && u32[r + 7] === kw[b + 7] &&
              u32[r + 8] === kw[b + 8] && u32[r + 9] === kw[b + 9] && u32[r + 10] === kw[b + 10] && u32[r + 11] === kw[b + 11]
            ) {
              slot = s1 - 1;
              break;
            }
          }
          pos = (pos + 1) & mask;
          s1 = index[(pos << 1) + 1];
        }
        const tcpFlags = flows.tcpFlags(i);
        if (slot < 0) {
          slot = this.insert(flows, i, kw, b, h, pos);
          // Inserts may grow the index and the records.
          index = this.index;
          mask = this.indexMask;
          u32 = this.u32;
          f64 = this.f64;
        } else {
          // Fast path: not idle or old enough to be a new flow, no TCP end in the state.
          const firstMs = flows.firstSeenMs(i);
          const f = slot * RF;
          if (
            firstMs - f64[f + F_LAST] > minIdleMs ||
            firstMs - f64[f + F_FIRST] > activeMs ||
            (u32[slot * RW + W_STATE] & (0xff << TCP_STATE_SHIFT)) !== 0
          ) {
            this.continueFlow(slot, firstMs, tcpFlags);
          }
        }
        const r = slot * RW;
        const f = slot * RF;
        const last = flows.lastSeenMs(i);
        if (last > f64[f + F_LAST]) f64[f + F_LAST] = last;
        f64[f + F_PACKETS] += flows.packets(i);
        f64[f + F_BYTES] += flows.bytes(i);
        const state = u32[r + W_STATE];
        u32[r + W_STATE] = state | PENDING | (stateFromFlags(tcpFlags) << TCP_STATE_SHIFT) | (tcpFlags << PENDING_FLAGS_SHIFT);
        if ((state & PENDING) === 0) pendingList[this.pendingCount++] = slot;
      }
    }
  }

  /**
   * A known flow got new packets. If it should have expired meanwhile (the
   * sweep had not reached it yet), or a TCP connection restarts after an end,
   * this is a new flow: it gets a new firstSeen.
   */
  private continueFlow(slot: number, firstMs: number, tcpFlags: number): void {
    const r = slot * RW;
    const f = slot * RF;
    const word = this.u32[r + W_STATE];
    const state = (word >>> TCP_STATE_SHIFT) & 0xff;
    let reason: ExpiryReason | undefined;
    if (firstMs - this.f64[f + F_LAST] > idleTimeoutMs(this.expiry, metaProto(this.u32[r + W_META]), state)) {
      reason = idleReason(state);
    } else if (firstMs - this.f64[f + F_FIRST] > this.expiry.activeMs) {
      reason = 'active';
    } else if ((state & (STATE_FIN | STATE_RST)) !== 0 && (tcpFlags & (TCP_SYN | TCP_ACK)) === TCP_SYN) {
      reason = idleReason(state);
    }
    if (reason !== undefined) {
      this.expired[reason]++;
      this.f64[f + F_FIRST] = firstMs;
      this.u32[r + W_STATE] = word & ~(0xff << TCP_STATE_SHIFT);
    }
  }

  /** A new flow: a slot for it, its identity decoded once, an index entry at `pos` (the empty entry its probe ended on). */
  private insert(flows: FlowBatch, i: number, kw: Uint32Array, b: number, h: number, pos: number): number {
    const slot = this.freeCount > 0 ? this.freeSlots[--this.freeCount] : this.newSlot();
    const u32 = this.u32;
    const f64 = this.f64;
    const r = slot * RW;
    const f = slot * RF;
    for (let k = 0; k < KEY_WORDS; k++) u32[r + k] = kw[b + k];
    f64[f + F_PACKETS] = 0;
    f64[f + F_BYTES] = 0;
    f64[f + F_LAST] = 0;
    f64[f + F_FIRST] = flows.firstSeenMs(i);
    u32[r + W_STATE] = LIVE;
    u32[r + W_META] = packMeta(flows.direction(i), flows.family(i), flows.proto(i), flows.icmpType(i), flows.icmpCode(i));
    u32[r + W_PORTS] = packPorts(flows.sport(i), flows.dport(i));
    u32[r + W_SRC] = this.addresses.intern(flows.src(i));
    u32[r + W_DST] = this.addresses.intern(flows.dst(i));
    u32[r + W_IFINDEX] = flows.ifindex(i);
    u32[r + W_HASH] = h;
    this.index[pos << 1] = h;
    this.index[(pos << 1) + 1] = slot + 1;
    this.live++;
    if (this.live * 2 > this.indexMask + 1) this.rehash((this.indexMask + 1) * 2);
    return slot;
  }

  private newSlot(): number {
    const slot = this.highWater++;
    if (slot >= this.capacity) {
      // Grow by 1.5x past a million slots (memory), 2x below.
      const n = this.capacity >= 1 << 20 ? Math.ceil(this.capacity * 1.5) : this.capacity * 2;
      const buf = new ArrayBuffer(n * REC_BYTES);
      new Uint8Array(buf).set(new Uint8Array(this.buf));
      this.buf = buf;
      this.f64 = new Float64Array(buf);
      this.u32 = new Uint32Array(buf);
      this.capacity = n;
    }
    return slot;
  }

  /** Rebuilds the index with `size` entries (a power of two) from the live records. */
  private rehash(size: number): void {
    const index = new Uint32Array(size * 2);
    const mask = size - 1;
    const u32 = this.u32;
    for (let slot = 0; slot < this.highWater; slot++) {
      const r = slot * RW;
      if ((u32[r + W_STATE] & LIVE) === 0) continue;
      const h = u32[r + W_HASH];
      let pos = h & mask;
      while (index[(pos << 1) + 1] !== 0) pos = (pos + 1) & mask;
      index[pos << 1] = h;
      index[(pos << 1) + 1] = slot + 1;
    }
    this.index = index;
    this.indexMask = mask;
  }

  /** Removes a slot's index entry (backward-shift deletion: no tombstones). */
  private unindex(slot: number): void {
    const index = this.index;
    const mask = this.indexMask;
    let i = this.u32[slot * RW + W_HASH] & mask;
    while (index[(i << 1) + 1] !== slot + 1) i = (i + 1) & mask;
    let j = i;
    for (;;) {
      j = (j + 1) & mask;
      const s1 = index[(j << 1) + 1];
      if (s1 === 0) break;
      const home = index[j << 1] & mask;
      // Entry j may move to the hole at i unless its home lies cyclically in (i, j].
      const inRange = i <= j ? i < home && home <= j : i < home || home <= j;
      if (inRange) continue;
      index[i << 1] = index[j << 1];
      index[(i << 1) + 1] = s1;
      i = j;
    }
    index[i << 1] = 0;
    index[(i << 1) + 1] = 0;
  }

  /**
   * Moves up to out.capacity pending flows into `out` (from the start of the
   * pending list) and clears their pending counts. Returns how many were
   * written; call until it returns 0, then finishExport().
   */
  exportPending(out: RecordBatch): number {
    let n = 0;
    const u32 = this.u32;
    const f64 = this.f64;
    const end = Math.min(this.pendingCount, this.exportCursor + out.capacity);
    for (let p = this.exportCursor; p < end; p++) {
      const slot = this.pendingList[p];
      const r = slot * RW;
      const f = slot * RF;
      const state = u32[r + W_STATE];
      out.flowId[n] = slot;
      out.ifindex[n] = u32[r + W_IFINDEX];
      out.meta[n] = u32[r + W_META];
      out.ports[n] = u32[r + W_PORTS];
      out.srcId[n] = u32[r + W_SRC];
      out.dstId[n] = u32[r + W_DST];
      out.packets[n] = f64[f + F_PACKETS];
      out.bytes[n] = f64[f + F_BYTES];
      out.tcpFlags[n] = state >>> PENDING_FLAGS_SHIFT;
      out.firstSeen[n] = f64[f + F_FIRST];
      out.lastSeen[n] = f64[f + F_LAST];
      f64[f + F_PACKETS] = 0;
      f64[f + F_BYTES] = 0;
      u32[r + W_STATE] = state & ((0xff << TCP_STATE_SHIFT) | (FLAG_MASK & ~PENDING));
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
    const u32 = this.u32;
    const f64 = this.f64;
    for (let n = 0; n < limit; n++) {
      if (this.sweepCursor >= this.highWater) this.sweepCursor = 0;
      const slot = this.sweepCursor++;
      const r = slot * RW;
      const f = slot * RF;
      const word = u32[r + W_STATE];
      if ((word & (LIVE | PENDING)) !== LIVE) continue;
      const state = (word >>> TCP_STATE_SHIFT) & 0xff;
      if (nowMs - f64[f + F_LAST] > idleTimeoutMs(this.expiry, metaProto(u32[r + W_META]), state)) {
        this.retire(slot, idleReason(state));
        expiredNow++;
      } else if (nowMs - f64[f + F_FIRST] > this.expiry.activeMs) {
        this.retire(slot, 'active');
        expiredNow++;
      }
    }
    if (this.live > this.expiry.maxFlows) expiredNow += this.evictOldest();
    return expiredNow;
  }

  /** Evicts the least recently seen flows (without pending counts) down to 90% of maxFlows. */
  private evictOldest(): number {
    const target = Math.floor(this.expiry.maxFlows * 0.9);
    const excess = this.live - target;
    const candidates: number[] = [];
    for (let slot = 0; slot < this.highWater; slot++) {
      if ((this.u32[slot * RW + W_STATE] & (LIVE | PENDING)) === LIVE) candidates.push(slot);
    }
    candidates.sort((a, b) => this.f64[a * RF + F_LAST] - this.f64[b * RF + F_LAST]);
    const n = Math.min(excess, candidates.length);
    for (let i = 0; i < n; i++) this.retire(candidates[i], 'evicted');
    return n;
  }

  private retire(slot: number, reason: ExpiryReason): void {
    this.unindex(slot);
    this.u32[slot * RW + W_STATE] = RETIRED;
    this.live--;
    this.retired.push(slot);
    this.expired[reason]++;
  }

  /** Makes retired slots reusable and drops their address references. */
  releaseRetired(): void {
    for (const slot of this.retired) {
      const r = slot * RW;
      this.addresses.release(this.u32[r + W_SRC]);
      this.addresses.release(this.u32[r + W_DST]);
      this.u32[r + W_STATE] = 0;
      if (this.freeCount === this.freeSlots.length) this.freeSlots = growUint32(this.freeSlots, this.freeCount + 1);
      this.freeSlots[this.freeCount++] = slot;
    }
    this.retired = [];
  }

  /** Slots retired and not yet released. */
  get retiredCount(): number {
    return this.retired.length;
  }

  firstSeen(slot: number): number {
    return this.f64[slot * RF + F_FIRST];
  }

  lastSeen(slot: number): number {
    return this.f64[slot * RF + F_LAST];
  }

  ifindex(slot: number): number {
    return this.u32[slot * RW + W_IFINDEX];
  }

  meta(slot: number): number {
    return this.u32[slot * RW + W_META];
  }

  ports(slot: number): number {
    return this.u32[slot * RW + W_PORTS];
  }

  srcId(slot: number): number {
    return this.u32[slot * RW + W_SRC];
  }

  dstId(slot: number): number {
    return this.u32[slot * RW + W_DST];
  }

  srcText(slot: number): string {
    return this.addresses.text(this.u32[slot * RW + W_SRC]);
  }

  dstText(slot: number): string {
    return this.addresses.text(this.u32[slot * RW + W_DST]);
  }
}
