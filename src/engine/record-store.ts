/**
 * Bounded store of recent flow records: a ring of columns (about 90 bytes per
 * record, no object per record). When the ring wraps, the oldest records are
 * overwritten and counted as lost, like Hubble's ring buffer.
 *
 * Records are appended in export order, so their `end` (and `start`) times
 * never decrease along the ring: time-bounded queries only walk their range.
 */
import type { AddressTable } from '../flow/address-table.js';
import type { FlowFilter } from '../flow/filter.js';
import { prefixContains, type IpPrefix } from '../lib/ip.js';
import type { FlowRecord } from '../flow/record.js';
import { buildRecord, type CgroupLabeler, type IfaceNamer, type RecordBatch } from '../flow/record-batch.js';
import { cgroupUnder } from '../flow/filter.js';
import type { RecordSink, SinkStatus } from './sink.js';
import { metaDirectionCode, metaProto, portsDport, portsSport } from '../flow/tuple.js';

export interface FlowPage {
  flows: FlowRecord[];
  /** records in the store that match the filter */
  total: number;
  /** true when total > flows.length (the limit cut the answer) */
  truncated: boolean;
}

/** Called after records with sequence numbers [from, to) were appended. */
export type AppendListener = (from: number, to: number) => void;

type Predicate = (index: number) => boolean;

export class RecordStore implements RecordSink {
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
  /** names what a cgroup id stands for (attribution); the agent sets it */
  labels?: CgroupLabeler;
  /** sequence number of the next record; record s lives at index s % capacity */
  private nextSeq = 0;
  private readonly listeners = new Set<AppendListener>();

  constructor(
    readonly capacity: number,
    private readonly addresses: AddressTable,
    private readonly ifaceName: IfaceNamer,
    private readonly node: string,
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
  }

  /**
   * Makes room for `rows` rows (at most capacity). Before the ring first
   * wraps, record s is at index s, so the rows keep their places.
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
    for (let i = 0; i < batch.count; i++) {
      const seq = this.nextSeq++;
      const at = seq % cap;
      if (seq >= cap) {
        addresses.release(this.srcId[at]);
        addresses.release(this.dstId[at]);
      }
      const src = batch.srcId[i];
      const dst = batch.dstId[i];
      addresses.retain(src);
      addresses.retain(dst);
      this.srcId[at] = src;
      this.dstId[at] = dst;
      this.ifindex[at] = batch.ifindex[i];
      this.meta[at] = batch.meta[i];
      this.ports[at] = batch.ports[i];
      this.packets[at] = batch.packets[i];
      this.bytes[at] = batch.bytes[i];
      this.tcpFlags[at] = batch.tcpFlags[i];
      this.start[at] = batch.startMs;
      this.end[at] = batch.endMs;
      this.firstSeen[at] = batch.firstSeen[i];
      this.lastSeen[at] = batch.lastSeen[i];
      this.cgroup[at] = batch.cgroup[i];
    }
    if (this.nextSeq > from) for (const listener of this.listeners) listener(Math.max(from, this.oldestSeq), this.nextSeq);
  }

  async flush(): Promise<void> {}

  async close(): Promise<void> {
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

  /** Recent records matching `filter`, newest first, at most `limit`. */
  query(filter: FlowFilter, limit: number): FlowPage {
    const matches = this.compile(filter);
    const [from, to] = this.timeRange(filter);
    const flows: FlowRecord[] = [];
    let total = 0;
    for (let seq = to - 1; seq >= from; seq--) {
      if (!matches(seq % this.capacity)) continue;
      total++;
      if (flows.length < limit) flows.push(this.recordAt(seq));
    }
    return { flows, total, truncated: total > flows.length };
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
   * Compiles the key conditions of a filter into a predicate over ring
   * indexes. Address conditions are decided once per address id and
   * remembered for the rest of the query.
   */
  compile(filter: FlowFilter): Predicate {
    // Every record of a store is of one node.
    if (filter.node !== undefined && filter.node !== this.node) return () => false;
    const tests: Predicate[] = [];
    // the columns are read through `this`: a growing store replaces them (grow())
    if (filter.direction !== undefined) {
      const d = filter.direction;
      tests.push((at) => metaDirectionCode(this.meta[at]) === d);
    }
    if (filter.proto !== undefined) {
      const p = filter.proto;
      tests.push((at) => metaProto(this.meta[at]) === p);
    }
    if (filter.sport !== undefined) {
      const p = filter.sport;
      tests.push((at) => portsSport(this.ports[at]) === p);
    }
    if (filter.dport !== undefined) {
      const p = filter.dport;
      tests.push((at) => portsDport(this.ports[at]) === p);
    }
    if (filter.port !== undefined) {
      const p = filter.port;
      tests.push((at) => portsSport(this.ports[at]) === p || portsDport(this.ports[at]) === p);
    }
    if (filter.iface !== undefined) {
      const name = filter.iface;
      const known = new Map<number, boolean>();
      tests.push((at) => {
        const idx = this.ifindex[at];
        let ok = known.get(idx);
        if (ok === undefined) known.set(idx, (ok = this.ifaceName(idx) === name));
        return ok;
      });
    }
    if (filter.src) {
      const test = this.addressTest(filter.src);
      tests.push((at) => test(this.srcId[at]));
    }
    if (filter.dst) {
      const test = this.addressTest(filter.dst);
      tests.push((at) => test(this.dstId[at]));
    }
    if (filter.ip) {
      const test = this.addressTest(filter.ip);
      tests.push((at) => test(this.srcId[at]) || test(this.dstId[at]));
    }
    if (filter.cgroup !== undefined || filter.workload !== undefined) {
      // Decided once per cgroup id and remembered for the rest of the query.
      const known = new Map<number, boolean>();
      const { cgroup, workload } = filter;
      tests.push((at) => {
        const id = this.cgroup[at];
        let ok = known.get(id);
        if (ok === undefined) {
          const label = id ? this.labels?.(id) : undefined;
          ok = label !== undefined && (cgroup === undefined || cgroupUnder(label.path, cgroup)) && (workload === undefined || label.workload === workload);
          known.set(id, ok);
        }
        return ok;
      });
    }
    if (tests.length === 0) return () => true;
    if (tests.length === 1) return tests[0];
    return (at) => {
      for (const t of tests) if (!t(at)) return false;
      return true;
    };
  }

  /**
   * Prefix test by address id: arithmetic on the interned IPv4 value, or for
   * IPv6 a per-id memo (0 unknown, 1 in, 2 out) of the text comparison.
   */
  private addressTest(prefix: IpPrefix): (id: number) => boolean {
    const addresses = this.addresses;
    if (prefix.family === 4) {
      const net = ((prefix.bytes[0] << 24) | (prefix.bytes[1] << 16) | (prefix.bytes[2] << 8) | prefix.bytes[3]) >>> 0;
      const size = 2 ** (32 - prefix.bits);
      return (id) => {
        const v = addresses.ipv4(id);
        return v >= net && v < net + size;
      };
    }
    let memo = new Uint8Array(this.addresses.idLimit + 64);
    return (id) => {
      if (id >= memo.length) {
        const bigger = new Uint8Array(this.addresses.idLimit + 64);
        bigger.set(memo);
        memo = bigger;
      }
      let v = memo[id];
      if (v === 0) memo[id] = v = prefixContains(prefix, this.addresses.text(id)) ? 1 : 2;
      return v === 1;
    };
  }
}
