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
 * Hostile keys: the hash is HalfSipHash-1-3 with a random per-table key
 * (flow-hash.ts), so traffic cannot choose where its flows land. Probes are
 * bounded: a lookup ends at the first empty entry, and there always is one
 * (load <= 1/2). An insert that lands more than maxProbe entries from its home
 * (bad luck, or a key that leaked) is still made, so nothing is lost, and then
 * the index is rebuilt under a fresh random key (`rekeys`); a rebuild costs
 * O(flows) and happens at most once per flows/2 inserts.
 *
 * Eviction beyond maxFlows costs O(evicted), never a scan or a sort: every
 * live flow is on one of two intrusive lists (prev/next slot in its record),
 * as in 2Q / SLRU. New flows join the tail of the probation list; a flow seen
 * again in a later poll gets a reference bit. Eviction takes from the head of
 * probation (the oldest flows seen in one poll only: what a flood or a scan
 * makes), moving referenced ones to the main list, and only then from the head
 * of the main list with a second chance for referenced flows (CLOCK), with a
 * bounded number of second chances per evicted flow. Only flows whose counts
 * are exported are evicted (the collector exports early when the table is
 * over its limit), and every eviction is counted (expired.evicted).
 *
 * Slot lifecycle: a flow that expires leaves the index at once (its next
 * packet starts a new flow) but its slot is only "retired": the slot keeps
 * its identity until releaseRetired(), so consumers that index by slot (the
 * open top-talkers bucket) can still read it. The collector releases retired
 * slots when that consumer no longer needs them (a top-talkers bucket
 * closed). A flow whose last export no consumer reads any more (its bucket
 * closed) frees its slot at once when it ends: old flows, which are what
 * eviction and expiry take, do not hold memory until the next close. An
 * export counts as read until the second release after it, or, when the
 * consumer confirms that it has taken the export (settleExported(): the
 * top-talkers bucket it went into is the open one), until the next release.
 */
import { KEY_WORDS, type FlowBatch } from '../datapath/types.js';
import type { AddressTable } from '../flow/address-table.js';
import type { RecordBatch } from '../flow/record-batch.js';
import type { FlowTupleReaderWithIds } from '../flow/tuple-reader.js';
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
import { hashFlowKey, randomHashSeed, type HashSeed } from '../flow/flow-hash.js';
import { TCP_ACK, TCP_SYN } from '../flow/protocols.js';
import { packMeta, packPorts, metaProto } from '../flow/tuple.js';
import { growUint32 } from '../lib/typed-arrays.js';

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
 *   W 27    previous slot + 1 on the flow's eviction list (0: none)
 *   W 28    next slot + 1 on the flow's eviction list (0: none)
 *   W 29    releases (releaseRetired() calls) after which no consumer reads the flow's last export
 *   F 15    cgroup id of the flow's local socket, as the kernel last gave it (0: none)
 */
const REC_BYTES = 128;
const RW = REC_BYTES / 4; // words per record
const RF = REC_BYTES / 8; // floats per record
const F_PACKETS = 6;
const F_BYTES = 7;
const F_LAST = 8;
const F_FIRST = 9;
const F_CGROUP = 15;
const W_STATE = 20;
const W_META = 21;
const W_PORTS = 22;
const W_SRC = 23;
const W_DST = 24;
const W_IFINDEX = 25;
const W_HASH = 26;
const W_PREV = 27;
const W_NEXT = 28;
const W_GEN = 29;

const LIVE = 1;
const RETIRED = 2;
const PENDING = 4;
/** seen in a poll after the one that inserted it, since eviction last looked at it */
const REF = 8;
/** on the main eviction list (else on probation) */
const MAIN = 16;
const FLAG_MASK = 0xff;
const TCP_STATE_SHIFT = 8;
const PENDING_FLAGS_SHIFT = 16;
/** TCP end state bits that send a known flow down the slow path (a SYN after them starts a new flow) */
const END_BITS = (STATE_FIN | STATE_RST) << TCP_STATE_SHIFT;
/** stateFromFlags() for every 9-bit TCP flag set, shifted into place */
const STATE_OF_FLAGS = Uint32Array.from({ length: 512 }, (_, f) => stateFromFlags(f) << TCP_STATE_SHIFT);

/** flows one sweep() evicts at most (about 1 us each): callers evict the rest with evict() between slices */
const EVICT_PER_SWEEP = 4096;
/** retired slots releaseRetired() releases at once; beyond, sweeps release them a slice at a time */
const RELEASE_AT_ONCE = 4096;

/** Longest distance of an index entry from its home before the index is rebuilt under a new key. */
export const DEFAULT_MAX_PROBE = 128;

const MIN_SLOTS = 1024;
/** flows looked up together in accumulate() */
const BLOCK = 128;
const MIN_INDEX = 2048;

export type ExpiryCounts = Record<ExpiryReason, number>;

/** The bytes of a little-endian word read as a big-endian (network order) number: a.b.c.d as a*2^24 + ... + d. */
const bswap32 = (w: number): number => (((w & 0xff) << 24) | ((w & 0xff00) << 8) | ((w >>> 8) & 0xff00) | (w >>> 24)) >>> 0;

export interface FlowTableOptions {
  /** the hash key; random by default (tests fix it) */
  seed?: HashSeed;
  /** longest probe distance before the index is rebuilt under a new key */
  maxProbe?: number;
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
  /** retired slots no consumer reads any more, released a slice at a time (sweep(), or when a slot is needed) */
  private releasable: number[] = [];
  private sweepCursor = 0;
  /** scratch of accumulate(): per flow of a block, its hash and its first index entry */
  private readonly blockHashes = new Uint32Array(BLOCK);
  private readonly blockHeads = new Uint32Array(BLOCK);
  private sink = 0;
  readonly expired: ExpiryCounts = { idle: 0, syn: 0, fin: 0, rst: 0, active: 0, evicted: 0 };

  /** the hash key */
  private k0: number;
  private k1: number;
  private readonly maxProbe: number;
  private insertsSinceRekey = 0;
  private rekeyWanted = false;
  /** lookups made by accumulate() and the index entries they examined (at least one each) */
  lookups = 0;
  probes = 0;
  /** longest distance of an inserted entry from its home, since the last rebuild */
  longestProbe = 0;
  /** index rebuilds under a fresh key after a probe longer than maxProbe */
  rekeys = 0;
  /** releaseRetired() calls so far: flows exported before the latest one are in no open bucket */
  private releases = 0;
  /** flows whose slot was free at once when they ended (see retire()) */
  releasedEarly = 0;
  /** eviction lists, as slot + 1 (0: empty): probation (seen in one poll only) and main */
  private probHead = 0;
  private probTail = 0;
  private mainHead = 0;
  private mainTail = 0;

  /** the shortest idle timeout: a known flow seen again sooner is certainly the same flow */
  private readonly minIdleMs: number;

  constructor(
    private readonly addresses: AddressTable,
    private readonly expiry: ExpiryConfig = DEFAULT_EXPIRY,
    options: FlowTableOptions = {},
  ) {
    this.minIdleMs = Math.min(
      expiry.tcpIdleMs,
      expiry.tcpSynMs ?? DEFAULT_EXPIRY.tcpSynMs,
      expiry.tcpFinMs,
      expiry.tcpRstMs,
      expiry.udpIdleMs,
      expiry.icmpIdleMs,
      expiry.otherIdleMs,
    );
    if (expiry.tcpSynMs === undefined) this.expiry = { ...expiry, tcpSynMs: DEFAULT_EXPIRY.tcpSynMs };
    const seed = options.seed ?? randomHashSeed();
    this.k0 = seed.k0 | 0;
    this.k1 = seed.k1 | 0;
    this.maxProbe = options.maxProbe ?? DEFAULT_MAX_PROBE;
  }

  /** Most flows tracked; beyond, evict() makes room. */
  get maxFlows(): number {
    return this.expiry.maxFlows;
  }

  /** More flows tracked than maxFlows (until the next sweep evicts): export before sweeping. */
  get overLimit(): boolean {
    return this.live > this.expiry.maxFlows;
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
    const maxProbe = this.maxProbe;
    // A source without attribution gives no cgroup ids.
    const cgroupOf = flows.cgroupId ? (i: number) => flows.cgroupId!(i) : undefined;
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
      const k0 = this.k0;
      const k1 = this.k1;
      for (let j = 0; j < n; j++) hashes[j] = hashFlowKey(kw, (start + j) * KEY_WORDS, k0, k1);
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
      let probes = 0;
      for (let i = start; i < end; i++) {
        const b = i * KEY_WORDS;
        const h = hashes[i - start];
        let pos = h & mask;
        let slot = -1;
        let steps = 1;
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
          steps++;
        }
        probes += steps;
        const tcpFlags = flows.tcpFlags(i);
        let ref = REF;
        if (slot < 0) {
          ref = 0;
          if (steps > this.longestProbe) this.noteProbe(steps - 1, maxProbe);
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
            (u32[slot * RW + W_STATE] & END_BITS) !== 0
          ) {
            this.continueFlow(slot, firstMs, tcpFlags);
          }
        }
        const r = slot * RW;
        const f = slot * RF;
        if (cgroupOf) {
          const cgroup = cgroupOf(i);
          if (cgroup !== 0) f64[f + F_CGROUP] = cgroup;
        }
        const last = flows.lastSeenMs(i);
        if (last > f64[f + F_LAST]) f64[f + F_LAST] = last;
        f64[f + F_PACKETS] += flows.packets(i);
        f64[f + F_BYTES] += flows.bytes(i);
        const state = u32[r + W_STATE];
        u32[r + W_STATE] = state | PENDING | ref | STATE_OF_FLAGS[tcpFlags & 511] | (tcpFlags << PENDING_FLAGS_SHIFT);
        if ((state & PENDING) === 0) pendingList[this.pendingCount++] = slot;
      }
      this.lookups += n;
      this.probes += probes;
      if (this.rekeyWanted) this.rekey();
    }
  }

  /** An insert `distance` entries from its home: past maxProbe, ask for a rebuild under a new key (amortized). */
  private noteProbe(distance: number, maxProbe: number): void {
    if (distance > this.longestProbe) this.longestProbe = distance;
    if (distance > maxProbe && this.insertsSinceRekey * 2 >= this.live) this.rekeyWanted = true;
  }

  /**
   * Rebuilds the index under a fresh random key. If the longest probe is still
   * over maxProbe (only a tiny maxProbe makes that likely), tries again with a
   * twice larger index while it is at most 1/8 full, three times at most; the
   * index is correct either way (lookups end at an empty entry).
   */
  private rekey(): void {
    this.rekeyWanted = false;
    this.insertsSinceRekey = 0;
    let size = this.indexMask + 1;
    for (let attempt = 0; attempt < 3; attempt++) {
      const seed = randomHashSeed();
      this.k0 = seed.k0 | 0;
      this.k1 = seed.k1 | 0;
      this.rekeys++;
      const u32 = this.u32;
      for (let slot = 0; slot < this.highWater; slot++) {
        const r = slot * RW;
        if ((u32[r + W_STATE] & LIVE) !== 0) u32[r + W_HASH] = hashFlowKey(u32, r, this.k0, this.k1);
      }
      this.rehash(size);
      if (this.longestProbe <= this.maxProbe) return;
      if (this.live * 8 > size) size *= 2;
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
      reason = idleReason(this.expiry, metaProto(this.u32[r + W_META]), state);
    } else if (firstMs - this.f64[f + F_FIRST] > this.expiry.activeMs) {
      reason = 'active';
    } else if ((state & (STATE_FIN | STATE_RST)) !== 0 && (tcpFlags & (TCP_SYN | TCP_ACK)) === TCP_SYN) {
      reason = idleReason(this.expiry, metaProto(this.u32[r + W_META]), state);
    }
    if (reason !== undefined) {
      this.expired[reason]++;
      this.f64[f + F_FIRST] = firstMs;
      this.u32[r + W_STATE] = word & ~(0xff << TCP_STATE_SHIFT);
    }
  }

  /** A new flow: a slot for it, its identity decoded once, an index entry at `pos` (the empty entry its probe ended on). */
  private insert(flows: FlowBatch, i: number, kw: Uint32Array, b: number, h: number, pos: number): number {
    if (this.freeCount === 0 && this.releasable.length > 0) this.release(this.releasable.pop()!);
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
    f64[f + F_CGROUP] = 0;
    u32[r + W_STATE] = LIVE;
    u32[r + W_META] = packMeta(flows.direction(i), flows.family(i), flows.proto(i), flows.icmpType(i), flows.icmpCode(i));
    u32[r + W_PORTS] = packPorts(flows.sport(i), flows.dport(i));
    if (flows.family(i) === 4) {
      // IPv4: straight from the key words (struct flow_key: src at word 2, dst at word 6, network order), no string.
      u32[r + W_SRC] = this.addresses.internV4(bswap32(kw[b + 2]));
      u32[r + W_DST] = this.addresses.internV4(bswap32(kw[b + 6]));
    } else {
      u32[r + W_SRC] = this.addresses.intern(flows.src(i));
      u32[r + W_DST] = this.addresses.intern(flows.dst(i));
    }
    u32[r + W_IFINDEX] = flows.ifindex(i);
    u32[r + W_HASH] = h;
    u32[r + W_GEN] = this.releases + 2;
    // Joins the tail of the probation list.
    u32[r + W_PREV] = this.probTail;
    u32[r + W_NEXT] = 0;
    if (this.probTail !== 0) u32[(this.probTail - 1) * RW + W_NEXT] = slot + 1;
    else this.probHead = slot + 1;
    this.probTail = slot + 1;
    this.index[pos << 1] = h;
    this.index[(pos << 1) + 1] = slot + 1;
    this.live++;
    this.insertsSinceRekey++;
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

  /** Rebuilds the index with `size` entries (a power of two) from the live records; notes the longest probe. */
  private rehash(size: number): void {
    const index = new Uint32Array(size * 2);
    const mask = size - 1;
    const u32 = this.u32;
    let longest = 0;
    for (let slot = 0; slot < this.highWater; slot++) {
      const r = slot * RW;
      if ((u32[r + W_STATE] & LIVE) === 0) continue;
      const h = u32[r + W_HASH];
      let pos = h & mask;
      let distance = 0;
      while (index[(pos << 1) + 1] !== 0) {
        pos = (pos + 1) & mask;
        distance++;
      }
      if (distance > longest) longest = distance;
      index[pos << 1] = h;
      index[(pos << 1) + 1] = slot + 1;
    }
    this.index = index;
    this.indexMask = mask;
    this.longestProbe = longest;
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
      out.cgroup[n] = f64[f + F_CGROUP];
      u32[r + W_GEN] = this.releases + 2;
      f64[f + F_PACKETS] = 0;
      f64[f + F_BYTES] = 0;
      u32[r + W_STATE] = state & ((0xff << TCP_STATE_SHIFT) | (FLAG_MASK & ~PENDING));
      n++;
    }
    this.exportCursor = end;
    out.count = n;
    return n;
  }

  /**
   * The consumer that reads exported slots until the next releaseRetired()
   * (the open top-talkers bucket) has taken `batch`: its flows' slots are
   * needed only until the next release, not the one after.
   */
  settleExported(batch: RecordBatch): void {
    const u32 = this.u32;
    const safeAfter = this.releases + 1;
    const ids = batch.flowId;
    for (let i = 0; i < batch.count; i++) u32[ids[i] * RW + W_GEN] = safeAfter;
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
   * later sweep: counts are never dropped. Then, if the table is over
   * maxFlows, evicts up to EVICT_PER_SWEEP flows (evict()). Returns how many
   * ended.
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
      const proto = metaProto(u32[r + W_META]);
      if (nowMs - f64[f + F_LAST] > idleTimeoutMs(this.expiry, proto, state)) {
        this.retire(slot, idleReason(this.expiry, proto, state));
        expiredNow++;
      } else if (nowMs - f64[f + F_FIRST] > this.expiry.activeMs) {
        this.retire(slot, 'active');
        expiredNow++;
      }
    }
    if (this.live > this.expiry.maxFlows) expiredNow += this.evict(Math.min(EVICT_PER_SWEEP, this.live - this.expiry.maxFlows));
    if (this.releasable.length > 0) this.releaseSome(Math.max(RELEASE_AT_ONCE, limit));
    return expiredNow;
  }

  /**
   * Moves the times of every tracked flow by `deltaMs`: the collector calls
   * it when the wall clock stepped, so that ages (expiry) stay true and
   * firstSeen/lastSeen read in the new wall time, like the new drains' times.
   */
  shiftTimes(deltaMs: number): void {
    const u32 = this.u32;
    const f64 = this.f64;
    for (let slot = 0; slot < this.highWater; slot++) {
      if ((u32[slot * RW + W_STATE] & LIVE) === 0) continue;
      const f = slot * RF;
      if (f64[f + F_LAST] !== 0) f64[f + F_LAST] += deltaMs;
      f64[f + F_FIRST] += deltaMs;
    }
  }

  /**
   * Evicts up to `n` flows whose counts are exported, in O(n): from the head
   * of probation (oldest first), then of the main list. A flow at a head that
   * was seen again (REF) gets a second chance instead (to the main list's
   * tail), and so does a flow with pending counts (to its list's tail, it
   * cannot go yet); at most 2n + 64 second chances per call, after which
   * referenced flows go too. Stops early only at a pending flow once the
   * second chances are used up (the caller exports first to avoid that).
   */
  evict(n: number): number {
    const u32 = this.u32;
    let evicted = 0;
    let chances = 2 * n + 64;
    while (evicted < n) {
      const s1 = this.probHead !== 0 ? this.probHead : this.mainHead;
      if (s1 === 0) break;
      const slot = s1 - 1;
      const r = slot * RW;
      const state = u32[r + W_STATE];
      if ((state & (REF | PENDING)) !== 0) {
        if (chances > 0) {
          chances--;
          this.unlink(slot);
          if ((state & PENDING) !== 0 && (state & MAIN) === 0) {
            this.append(slot, false);
          } else {
            u32[r + W_STATE] = (state | MAIN) & ~((state & PENDING) !== 0 ? 0 : REF);
            this.append(slot, true);
          }
          continue;
        }
        if ((state & PENDING) !== 0) break;
      }
      this.retire(slot, 'evicted');
      evicted++;
    }
    return evicted;
  }

  /** Appends a live slot to the tail of the main list or of probation. */
  private append(slot: number, main: boolean): void {
    const u32 = this.u32;
    const r = slot * RW;
    const tail = main ? this.mainTail : this.probTail;
    u32[r + W_PREV] = tail;
    u32[r + W_NEXT] = 0;
    if (tail !== 0) u32[(tail - 1) * RW + W_NEXT] = slot + 1;
    else if (main) this.mainHead = slot + 1;
    else this.probHead = slot + 1;
    if (main) this.mainTail = slot + 1;
    else this.probTail = slot + 1;
  }

  /** Takes a live slot off its eviction list. */
  private unlink(slot: number): void {
    const u32 = this.u32;
    const r = slot * RW;
    const main = (u32[r + W_STATE] & MAIN) !== 0;
    const prev = u32[r + W_PREV];
    const next = u32[r + W_NEXT];
    if (prev !== 0) u32[(prev - 1) * RW + W_NEXT] = next;
    else if (main) this.mainHead = next;
    else this.probHead = next;
    if (next !== 0) u32[(next - 1) * RW + W_PREV] = prev;
    else if (main) this.mainTail = prev;
    else this.probTail = prev;
    u32[r + W_PREV] = 0;
    u32[r + W_NEXT] = 0;
  }

  private retire(slot: number, reason: ExpiryReason): void {
    this.unindex(slot);
    this.unlink(slot);
    this.live--;
    this.expired[reason]++;
    if (this.releases >= this.u32[slot * RW + W_GEN]) {
      // No consumer reads its last export any more.
      this.release(slot);
      this.releasedEarly++;
    } else {
      this.u32[slot * RW + W_STATE] = RETIRED;
      this.retired.push(slot);
    }
  }

  private release(slot: number): void {
    const r = slot * RW;
    this.addresses.release(this.u32[r + W_SRC]);
    this.addresses.release(this.u32[r + W_DST]);
    this.u32[r + W_STATE] = 0;
    if (this.freeCount === this.freeSlots.length) this.freeSlots = growUint32(this.freeSlots, this.freeCount + 1);
    this.freeSlots[this.freeCount++] = slot;
  }

  /**
   * Makes retired slots reusable and drops their address references. Call it
   * when no consumer reads slots exported so far (after a top-talkers bucket
   * closed). Up to RELEASE_AT_ONCE slots are released now; more (a flood's
   * worth: about a microsecond each) are released a slice at a time by the
   * next sweeps, or one by one when a new flow needs a slot.
   */
  releaseRetired(): void {
    const retired = this.retired;
    this.retired = [];
    this.releases++;
    if (this.releasable.length === 0 && retired.length > RELEASE_AT_ONCE) {
      this.releasable = retired;
      return;
    }
    for (const slot of retired) {
      if (this.releasable.length > 0 || retired.length > RELEASE_AT_ONCE) this.releasable.push(slot);
      else this.release(slot);
    }
  }

  /** Releases up to `n` slots of earlier releaseRetired() calls; returns how many. */
  private releaseSome(n: number): number {
    const list = this.releasable;
    const k = Math.min(n, list.length);
    for (let i = 0; i < k; i++) this.release(list.pop()!);
    return k;
  }

  /** Slots retired and not yet released (including those released a slice at a time). */
  get retiredCount(): number {
    return this.retired.length + this.releasable.length;
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
