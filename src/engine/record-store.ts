/**
 * Bounded store of recent flow records: a ring of columns (about 90 bytes per
 * record, no object per record) and an index over it (record-index.ts, up to
 * 40 bytes per record), filled in the background after each burst of
 * writes. When the ring wraps, the oldest records are overwritten and
 * counted as lost, like Hubble's ring buffer.
 *
 * Records are appended in export order, so their `end` (and `start`) times
 * never decrease along the ring: time-bounded queries only walk their range.
 * Queries are planned on the index (record-query.ts).
 */
import type { AddressTable } from '../flow/address-table.js';
import type { FlowFilter } from '../flow/filter.js';
import { formatIPv6, type IpPrefix } from '../lib/ip.js';
import type { FlowRecord } from '../flow/record.js';
import { buildRecord, type CgroupLabeler, type IfaceNamer, type RecordBatch } from '../flow/record-batch.js';
import { hasKeyConditions } from '../flow/filter.js';
import { AddressMatch, CgroupMatch, IfaceMatch } from './record-match.js';
import { ChunkScanner, type RingColumns } from './record-scan.js';
import type { RecordSink, SinkStatus } from './sink.js';
import { portsDport, portsSport } from '../flow/tuple.js';
import { classKey, RecordIndex } from './record-index.js';
import { COUNT_WORK_LIMIT, FlowQueryRun, type QueryableRing } from './record-query.js';
import { Slicer } from '../lib/slicer.js';

export interface FlowPage {
  flows: FlowRecord[];
  /** records in the store that match the filter (a lower bound when totalExact is false) */
  total: number;
  /** true when total > flows.length (the limit cut the answer), or the count stopped at its bound with the page full */
  truncated: boolean;
  /**
   * false when the count stopped before the end (record-query.ts, bounded
   * count), or records the query had not reached were overwritten while it
   * paused: then `total` is a lower bound. Absent: exact.
   */
  totalExact?: boolean;
}

/** Called after records with sequence numbers [from, to) were appended. */
export type AppendListener = (from: number, to: number) => void;

type Predicate = (index: number) => boolean;

/** Records a time-sliced query examines between two looks at the clock. */
const STEP_UNITS = 4096;
/** Records indexed between two looks at the clock. */
const CATCH_UP_STEP = 4096;
/**
 * The index catches up once writes have paused this long (the end of a
 * poll's export), so that records the same burst overwrites are never
 * indexed; and at the latest this long after the first write it has not
 * indexed, for stores that are written without pause.
 */
const CATCH_UP_QUIET_MS = 50;
const CATCH_UP_MAX_DELAY_MS = 2000;
/**
 * While /flows is being asked (a query in the last QUERIED_MS), the index
 * keeps up during a burst too, once this many records wait: queries then
 * scan at most about that many (a store turning over every poll would
 * otherwise be scanned whole during polls). The cost, indexing records the
 * burst overwrites soon after, is paid only while someone asks.
 */
const QUERIED_MS = 5000;
const QUERIED_TAIL = 16_384;

export class RecordStore implements RecordSink, QueryableRing {
  readonly name = 'memory';
  private ifindex: Uint32Array;
  private meta: Uint32Array;
  private ports: Uint32Array;
  private srcId: Uint32Array;
  private dstId: Uint32Array;
  private packets: Float64Array;
  private bytes: Float64Array;
  private start: Float64Array;
  private end: Float64Array;
  private firstSeen: Float64Array;
  private lastSeen: Float64Array;
  private tcpFlags: Uint16Array;
  private cgroup: Float64Array;
  /** replaced when the columns grow (its buckets follow the rows) */
  index: RecordIndex;
  /** records a query examines only to count, once its page is full, before it reports the total as a lower bound */
  countWorkLimit = COUNT_WORK_LIMIT;
  /** records below this sequence number (and in the ring) are in the index; the newer ones wait for catchUp() */
  indexedTo = 0;
  private catchUpTimer: NodeJS.Timeout | undefined;
  private catchUpDeferredSince = 0;
  private catchingUp = false;
  private lastQueryMs = -Infinity;
  private closed = false;
  /** names what a cgroup id stands for (attribution); the agent sets it */
  labels?: CgroupLabeler;
  /** sequence number of the next record; record s lives at index s % capacity */
  private nextSeq = 0;
  private readonly listeners = new Set<AppendListener>();

  constructor(
    readonly capacity: number,
    readonly addresses: AddressTable,
    readonly ifaceName: IfaceNamer,
    readonly node: string,
    /**
     * rows allocated at first (default: capacity); the columns then grow as
     * records come, up to capacity (the relay: memory follows each node's data)
     */
    initialRows = capacity,
  ) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`store capacity must be a positive integer, got ${capacity}`);
    const rows = Math.max(1, Math.min(capacity, Math.floor(initialRows)));
    this.ifindex = new Uint32Array(rows);
    this.meta = new Uint32Array(rows);
    this.ports = new Uint32Array(rows);
    this.srcId = new Uint32Array(rows);
    this.dstId = new Uint32Array(rows);
    this.packets = new Float64Array(rows);
    this.bytes = new Float64Array(rows);
    this.start = new Float64Array(rows);
    this.end = new Float64Array(rows);
    this.firstSeen = new Float64Array(rows);
    this.lastSeen = new Float64Array(rows);
    this.tcpFlags = new Uint16Array(rows);
    this.cgroup = new Float64Array(rows);
    this.index = new RecordIndex(rows);
  }

  /**
   * Makes room for `rows` rows (at most capacity). Before the ring first
   * wraps, record s is at index s, so the rows keep their places; the index
   * starts again for the new size (catchUp() fills it).
   */
  private grow(rows: number): void {
    const n = Math.min(this.capacity, Math.max(rows, this.ifindex.length * 2));
    const more = <T extends Uint32Array | Float64Array | Uint16Array>(a: T): T => {
      const b = new (a.constructor as new (n: number) => T)(n);
      b.set(a);
      return b;
    };
    this.ifindex = more(this.ifindex);
    this.meta = more(this.meta);
    this.ports = more(this.ports);
    this.srcId = more(this.srcId);
    this.dstId = more(this.dstId);
    this.packets = more(this.packets);
    this.bytes = more(this.bytes);
    this.start = more(this.start);
    this.end = more(this.end);
    this.firstSeen = more(this.firstSeen);
    this.lastSeen = more(this.lastSeen);
    this.tcpFlags = more(this.tcpFlags);
    this.cgroup = more(this.cgroup);
    this.index = new RecordIndex(n);
    this.indexedTo = this.oldestSeq;
  }

  /** Records ever appended. */
  get seen(): number {
    return this.nextSeq;
  }

  /** Records currently held. */
  get size(): number {
    return Math.min(this.nextSeq, this.capacity);
  }

  /** Records overwritten before anyone could be sure to read them. */
  get lost(): number {
    return Math.max(0, this.nextSeq - this.capacity);
  }

  get oldestSeq(): number {
    return this.nextSeq - this.size;
  }

  get endSeq(): number {
    return this.nextSeq;
  }

  write(batch: RecordBatch): void {
    if (this.ifindex.length < this.capacity && this.nextSeq + batch.count > this.ifindex.length) this.grow(this.nextSeq + batch.count);
    const from = this.nextSeq;
    const cap = this.capacity;
    const addresses = this.addresses;
    const index = this.index;
    for (let i = 0; i < batch.count; i++) {
      const seq = this.nextSeq++;
      const at = seq % cap;
      const evicted = seq >= cap;
      const src = batch.srcId[i];
      const dst = batch.dstId[i];
      const ifindex = batch.ifindex[i];
      const meta = batch.meta[i];
      const ports = batch.ports[i];
      const cgroup = batch.cgroup[i];
      if (evicted) {
        if (seq - cap < this.indexedTo) index.leave(this.srcId[at], this.dstId[at], this.ports[at], classKey(this.ifindex[at], this.meta[at]), this.cgroup[at]);
        addresses.release(this.srcId[at]);
        addresses.release(this.dstId[at]);
      }
      addresses.retain(src);
      addresses.retain(dst);
      this.srcId[at] = src;
      this.dstId[at] = dst;
      this.ifindex[at] = ifindex;
      this.meta[at] = meta;
      this.ports[at] = ports;
      this.packets[at] = batch.packets[i];
      this.bytes[at] = batch.bytes[i];
      this.tcpFlags[at] = batch.tcpFlags[i];
      this.start[at] = batch.startMs;
      this.end[at] = batch.endMs;
      this.firstSeen[at] = batch.firstSeen[i];
      this.lastSeen[at] = batch.lastSeen[i];
      this.cgroup[at] = cgroup;
    }
    if (this.indexedTo < this.oldestSeq) this.indexedTo = this.oldestSeq; // the rest went unindexed
    if (this.nextSeq > from) {
      this.deferCatchUp();
      for (const listener of this.listeners) listener(Math.max(from, this.oldestSeq), this.nextSeq);
    }
  }

  /**
   * Indexes the records written since the index last caught up, oldest
   * first, at most `most` of them; returns how many are left. Queries are
   * exact without it (they scan what is not indexed): it only makes them
   * faster.
   */
  catchUp(most = Infinity): number {
    if (this.indexedTo < this.oldestSeq) this.indexedTo = this.oldestSeq;
    const end = Math.min(this.nextSeq, this.indexedTo + most);
    const index = this.index;
    const cap = this.capacity;
    for (let seq = this.indexedTo; seq < end; seq++) {
      const at = seq % cap;
      index.enter(seq, at, this.srcId[at], this.dstId[at], this.ports[at], classKey(this.ifindex[at], this.meta[at]), this.cgroup[at]);
    }
    this.indexedTo = end;
    return this.nextSeq - end;
  }

  /**
   * (Re)arms the background catch-up: after writes pause, or at the latest
   * CATCH_UP_MAX_DELAY_MS after they started; at once while queries come
   * and QUERIED_TAIL records wait.
   */
  private deferCatchUp(): void {
    if (this.closed || this.catchingUp) return;
    const now = performance.now();
    if (now - this.lastQueryMs < QUERIED_MS && this.nextSeq - this.indexedTo >= QUERIED_TAIL) {
      clearTimeout(this.catchUpTimer);
      this.catchUpTimer = undefined;
      void this.catchUpSliced();
      return;
    }
    if (this.catchUpTimer === undefined) {
      this.catchUpDeferredSince = now;
      this.catchUpTimer = setTimeout(() => void this.catchUpSliced(), CATCH_UP_QUIET_MS);
      this.catchUpTimer.unref();
    } else if (now - this.catchUpDeferredSince < CATCH_UP_MAX_DELAY_MS) {
      this.catchUpTimer.refresh();
    }
  }

  /** catchUp() in slices, yielding to the event loop between them. */
  private async catchUpSliced(): Promise<void> {
    this.catchUpTimer = undefined;
    this.catchingUp = true;
    try {
      const slicer = new Slicer();
      while (!this.closed && this.catchUp(CATCH_UP_STEP) > 0) if (slicer.due) await slicer.next();
    } finally {
      this.catchingUp = false;
    }
  }

  async flush(): Promise<void> {}

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.catchUpTimer);
    this.catchUpTimer = undefined;
    this.listeners.clear();
  }

  status(): SinkStatus {
    return { name: this.name, exported: this.nextSeq, dropped: 0 };
  }

  /** Subscribes to appends; returns the unsubscribe function. */
  onAppend(listener: AppendListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  get subscribers(): number {
    return this.listeners.size;
  }

  /** The record with sequence number seq (must be in [oldestSeq, endSeq)). */
  recordAt(seq: number): FlowRecord {
    const at = seq % this.capacity;
    const ifindex = this.ifindex[at];
    return buildRecord({
      node: this.node,
      iface: this.ifaceName(ifindex),
      ifindex,
      meta: this.meta[at],
      ports: this.ports[at],
      src: this.addresses.text(this.srcId[at]),
      dst: this.addresses.text(this.dstId[at]),
      packets: this.packets[at],
      bytes: this.bytes[at],
      tcpFlags: this.tcpFlags[at],
      startMs: this.start[at],
      endMs: this.end[at],
      firstSeenMs: this.firstSeen[at],
      lastSeenMs: this.lastSeen[at],
      cgroupId: this.cgroup[at],
      labels: this.labels,
    });
  }

  /**
   * Recent records matching `filter`, newest first, at most `limit`, at once
   * (the SSE replay needs its answer in the same tick; the relay's views).
   */
  query(filter: FlowFilter, limit: number): FlowPage {
    this.lastQueryMs = performance.now();
    const flows: FlowRecord[] = [];
    const run = new FlowQueryRun(this, filter, limit, (seq) => flows.push(this.recordAt(seq)), this.countWorkLimit);
    run.step(Infinity);
    return page(flows, run);
  }

  /**
   * The same answer, time-sliced: a query that walks many records yields to
   * the event loop between slices, so polls and other requests go on. Records
   * the ring overwrites meanwhile, before the query reached them, are not
   * counted (the total then says it is a lower bound).
   */
  async querySliced(filter: FlowFilter, limit: number, slicer = new Slicer()): Promise<FlowPage> {
    this.lastQueryMs = performance.now();
    const flows: FlowRecord[] = [];
    const run = new FlowQueryRun(this, filter, limit, (seq) => flows.push(this.recordAt(seq)), this.countWorkLimit);
    while (!run.step(STEP_UNITS)) if (slicer.due) await slicer.next();
    return page(flows, run);
  }

  /**
   * Sequence numbers of the records matching `filter` in [from, to), oldest
   * first; for the follow stream.
   */
  matching(filter: FlowFilter, from: number, to: number, matcher = this.compile(filter)): number[] {
    const out: number[] = [];
    const lo = Math.max(from, this.oldestSeq);
    const hi = Math.min(to, this.nextSeq);
    for (let seq = lo; seq < hi; seq++) if (matcher(seq % this.capacity)) out.push(seq);
    return out;
  }

  /**
   * The sequence range [from, to) of the records whose interval (start, end]
   * overlaps (since, until): end > since and start < until. Intervals are
   * half-open so that consecutive exports never both match a boundary.
   */
  timeRange(filter: FlowFilter): [number, number] {
    let from = this.oldestSeq;
    let to = this.nextSeq;
    if (filter.sinceMs !== undefined) from = this.firstSeqAbove(this.end, filter.sinceMs, from, to, false);
    if (filter.untilMs !== undefined) to = this.firstSeqAbove(this.start, filter.untilMs, from, to, true);
    return [from, to];
  }

  /**
   * First seq in [lo, hi) whose column value is > bound (>= bound if
   * `inclusive`); the column never decreases along seq.
   */
  private firstSeqAbove(column: Float64Array, bound: number, lo: number, hi: number, inclusive: boolean): number {
    while (lo < hi) {
      const mid = Math.floor((lo + hi) / 2);
      const v = column[mid % this.capacity];
      if (inclusive ? v < bound : v <= bound) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /**
   * Compiles the key conditions of a filter into one test on ring rows.
   * Direction and protocol are one masked compare of the meta word; address,
   * interface and cgroup conditions are decided once per id and remembered
   * for the rest of the query (record-match.ts).
   */
  compile(filter: FlowFilter): Predicate {
    // Every record of a store is of one node.
    if (filter.node !== undefined && filter.node !== this.node) return () => false;
    if (!hasKeyConditions(filter)) return () => true;
    // meta: bit 0 direction, bits 2-9 protocol (flow/tuple.ts)
    let metaMask = 0;
    let metaWant = 0;
    if (filter.direction !== undefined) {
      metaMask |= 1;
      metaWant |= filter.direction;
    }
    if (filter.proto !== undefined) {
      metaMask |= 0xff << 2;
      metaWant |= filter.proto << 2;
    }
    const sport = filter.sport ?? -1;
    const dport = filter.dport ?? -1;
    const port = filter.port ?? -1;
    const iface = filter.iface === undefined ? undefined : new IfaceMatch(filter.iface, this.ifaceName);
    const src = filter.src ? new AddressMatch(filter.src, this.addresses) : undefined;
    const dst = filter.dst ? new AddressMatch(filter.dst, this.addresses) : undefined;
    const ip = filter.ip ? new AddressMatch(filter.ip, this.addresses) : undefined;
    const cgroup = filter.cgroup !== undefined || filter.workload !== undefined ? new CgroupMatch(filter.cgroup, filter.workload, this.labels) : undefined;
    // the columns are read through `this`: a growing store replaces them (grow())
    return (at) => {
      if ((this.meta[at] & metaMask) !== metaWant) return false;
      const ports = this.ports[at];
      if (sport >= 0 && portsSport(ports) !== sport) return false;
      if (dport >= 0 && portsDport(ports) !== dport) return false;
      if (port >= 0 && portsSport(ports) !== port && portsDport(ports) !== port) return false;
      if (iface !== undefined && !iface.has(this.ifindex[at])) return false;
      if (src !== undefined && !src.has(this.srcId[at])) return false;
      if (dst !== undefined && !dst.has(this.dstId[at])) return false;
      if (ip !== undefined && !ip.has(this.srcId[at]) && !ip.has(this.dstId[at])) return false;
      if (cgroup !== undefined && !cgroup.has(this.cgroup[at])) return false;
      return true;
    };
  }

  scanner(filter: FlowFilter): ChunkScanner {
    return new ChunkScanner(this, filter);
  }

  /** The columns as they are now (a growing store replaces them). */
  columns(): RingColumns {
    return { ifindex: this.ifindex, meta: this.meta, ports: this.ports, srcId: this.srcId, dstId: this.dstId, cgroup: this.cgroup };
  }

  /** Whether a cgroup id meets the filter's cgroup and workload conditions (decided once per id and query). */
  cgroupTest(filter: FlowFilter): (cgroupId: number) => boolean {
    const match = new CgroupMatch(filter.cgroup, filter.workload, this.labels);
    return (id) => match.has(id);
  }

  /**
   * The addresses held now (by flows or records) that lie in a prefix: an
   * IPv4 prefix of at most `lookups` addresses, or one IPv6 address, looked
   * up one by one; else found by going through the address table. `each`
   * visits their ids and returns whether every address held lies in the
   * prefix (then so do all stored records').
   */
  addressesIn(prefix: IpPrefix, lookups: number): { cost: number; each: (visit: (id: number) => void) => boolean } {
    const addresses = this.addresses;
    if (prefix.family === 6 && prefix.bits === 128) {
      const text = formatIPv6(prefix.bytes, 0);
      return {
        cost: 1,
        each: (visit) => {
          const id = addresses.find(text);
          if (id >= 0) visit(id);
          return false;
        },
      };
    }
    if (prefix.family === 4 && 2 ** (32 - prefix.bits) <= lookups) {
      const first = ((prefix.bytes[0] << 24) | (prefix.bytes[1] << 16) | (prefix.bytes[2] << 8) | prefix.bytes[3]) >>> 0;
      const last = first + 2 ** (32 - prefix.bits);
      return {
        cost: last - first,
        each: (visit) => {
          for (let n = first; n < last; n++) {
            const id = addresses.findV4(n);
            if (id >= 0) visit(id);
          }
          return false;
        },
      };
    }
    return {
      cost: addresses.idLimit,
      each: (visit) => {
        const match = new AddressMatch(prefix, addresses);
        let every = true;
        for (let id = 0, n = addresses.idLimit; id < n; id++) {
          if (addresses.refCount(id) === 0) continue;
          if (match.has(id)) visit(id);
          else every = false;
        }
        return every;
      },
    };
  }
}

function page(flows: FlowRecord[], run: FlowQueryRun): FlowPage {
  const total = run.total;
  // Stopped counting with the page full: more may match than were counted.
  return { flows, total, truncated: run.bounded || total > flows.length, totalExact: run.totalExact };
}
